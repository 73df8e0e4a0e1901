"""The mock's IFS cube: a MaNGA LOGCUBE-like spectral cube of the same galaxy, with
Milky-Way extinction, noise and a hexagonal fibre-bundle footprint."""

import copy

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..io.fits_utils import DEFAULT_FSCALE
from ..io.provenance import provenance_header
from ..models import model_from_config
from ..progress import progress as progress_bar
from ..sps.wavelength import resample
from .galaxy import MockGalaxy
from .geometry import _block_sum, _fine_coords, _inverse_gnomonic, _psf_convolve, _tan_wcs
from .units import milky_way_transmission
from .writing import _write_hdul


def _ifs_cube(cfg, models_config, confhash, path, rng, progress):
    """Write a MaNGA-like cube; returns the path."""
    ic = cfg["ifs_cube"]
    mc = copy.deepcopy(models_config)
    wl = mc.setdefault("wavelength", {})
    wl.update(spec_min_aa=min(3500.0, ic["wave_min"] / (1 + cfg["z"]) - 50.0),
              spec_max_aa=max(10500.0, ic["wave_max"] / (1 + cfg["z"]) + 50.0),
              spec_R=float(ic["R"]))
    model = model_from_config(mc)
    gal = MockGalaxy(cfg, model, models_config)
    z = cfg["z"]

    n_wave = int(np.floor(ic["R"] * np.log(ic["wave_max"] / ic["wave_min"]))) + 1
    wave = ic["wave_min"] * np.exp(np.arange(n_wave) / ic["R"])
    pix = ic["spaxel_arcsec"]
    n = int(np.ceil((ic["diameter_arcsec"] + 6.0) / pix))
    n += 1 - n % 2
    off = np.asarray(ic["offset_arcsec"], dtype=float)
    ra_c, dec_c = _inverse_gnomonic(off[0], off[1], cfg["ra"], cfg["dec"])
    wcs = _tan_wcs(float(ra_c), float(dec_c), pix, (n, n))
    k = int(ic["oversample"])
    sub = pix / k
    xi, eta = _fine_coords(wcs, (n, n), k, cfg["ra"], cfg["dec"])
    rbin, m_main, m_clumps = gal.sample(xi, eta, sub * sub)
    # populations used, and their observed spectra per Msun surviving on `wave`
    used = np.unique(rbin)
    rows = np.concatenate([used, gal.nbin + np.arange(len(m_clumps))])
    spec = model.spectra({p: gal.params[p][rows] for p in gal.param_names})
    wobs, flam = model.observed(spec, z)
    flam = resample(wobs, flam, wave) / gal.surv[rows, None]
    flam *= milky_way_transmission(wave, cfg["ebv"])[None, :] / DEFAULT_FSCALE
    lookup = np.searchsorted(used, rbin)
    # weights (n_fine, n_rows) are sparse: main population + clumps
    cube = np.empty((n_wave, n, n), dtype=np.float32)
    chunk = 128
    for s in progress_bar(range(0, n_wave, chunk), desc="ifs cube", unit="chunk",
                          disable=not progress):
        sl = slice(s, min(s + chunk, n_wave))
        f = flam[:, sl]
        fine = (m_main[..., None] * f[lookup]).transpose(2, 0, 1)
        for i, m in enumerate(m_clumps):
            fine += m[None] * f[len(used) + i][:, None, None]
        cube[sl] = _block_sum(_psf_convolve(fine, ic["psf_fwhm"], sub), k)
    # hexagonal footprint (flat sides east-west), corner-to-corner diameter
    xx, yy = np.meshgrid((np.arange(n) - (n - 1) / 2) * pix, (np.arange(n) - (n - 1) / 2) * pix)
    rad = ic["diameter_arcsec"] / 2.0
    inside = np.ones((n, n), dtype=bool)
    for ang in (0.0, 60.0, 120.0):
        a = np.radians(ang)
        inside &= np.abs(xx * np.cos(a) + yy * np.sin(a)) <= rad * np.sqrt(3) / 2
    var = ic["sky_sigma"] ** 2 + np.maximum(cube, 0.0) * ic["poisson"]
    noisy = cube + rng.standard_normal(cube.shape) * np.sqrt(var)
    flux = np.where(inside[None], noisy, 0.0).astype(np.float32)
    ivar = np.where(inside[None], 1.0 / var, 0.0).astype(np.float32)
    mask = np.where(inside[None], 0, 1 + 1024).astype(np.int32) * np.ones((n_wave, 1, 1),
                                                                          dtype=np.int32)

    w3 = WCS(naxis=3)
    w3.wcs.ctype = ["RA---TAN", "DEC--TAN", "WAVE-LOG"]
    w3.wcs.crval = [float(ra_c), float(dec_c), float(wave[0])]
    w3.wcs.crpix = [(n + 1) / 2.0, (n + 1) / 2.0, 1.0]
    w3.wcs.cdelt = [-pix / 3600.0, pix / 3600.0, float(wave[0] / ic["R"])]
    w3.wcs.cunit = ["deg", "deg", "Angstrom"]
    w3.wcs.radesys = "ICRS"
    head = w3.to_header()
    for key in ("DATEREF", "MJDREFI", "MJDREFF", "MJDREF"):
        head.remove(key, ignore_missing=True, remove_all=True)
    head["BUNIT"] = "1E-17 erg/s/cm^2/Ang/spaxel"
    provenance_header(head, confhash)
    ph = fits.Header()
    ph["ORIGIN"] = "sedmap mock"
    ph["OBJRA"], ph["OBJDEC"] = float(cfg["ra"]), float(cfg["dec"])
    ph["IFURA"], ph["IFUDEC"] = float(ra_c), float(dec_c)
    ph["EBVGAL"] = (float(cfg["ebv"]), "Milky-Way E(B-V) (not corrected)")
    for key in ("GFWHM", "RFWHM", "IFWHM", "ZFWHM"):
        ph[key] = (float(ic["psf_fwhm"]), "[arcsec] PSF FWHM")
    ph["MASKBITS"] = "1 = NOCOV, 1024 = DONOTUSE"
    provenance_header(ph, confhash)
    ihead = head.copy()
    ihead["BUNIT"] = "1E+34 (erg/s/cm^2/Ang/spaxel)^-2"
    mhead = head.copy()
    del mhead["BUNIT"]
    whead = fits.Header()
    whead["BUNIT"] = "Angstrom"
    provenance_header(whead, confhash)
    hdus = [fits.PrimaryHDU(header=ph), fits.ImageHDU(flux, head, name="FLUX"),
            fits.ImageHDU(ivar, ihead, name="IVAR"), fits.ImageHDU(mask, mhead, name="MASK"),
            fits.ImageHDU(wave, whead, name="WAVE")]
    return _write_hdul(hdus, path)
