"""The truth the fits are judged against: mass, SFR, ages, metallicity, A_V and SPS
parameter maps on the common grid (with and without the target PSF), the dust mass and
the DL07 parameters where the bands see the dust, the noiseless flux cube
``FLUX_TRUE``, and the ``truth.fits`` file that holds them."""

import numpy as np
from scipy.ndimage import gaussian_filter

from ..constants import AV_PER_TAU_V, FWHM_TO_SIGMA
from ..images.grid import target_grid
from ..images.psf import reprojected_fwhm
from ..io.fits_utils import DEFAULT_FSCALE, flux_bunit, image_hdu, primary_hdu, table_hdu
from ..io.fluxcube import Filters, filters_hdu
from .geometry import _block_sum, _fine_coords, _psf_convolve, _sub_factor
from .writing import _write_hdul


def _smooth_truth(mass, sfr, mass_formed, quantities, fwhm_pix):
    """Truth maps at a Gaussian PSF of ``fwhm_pix`` pixels: mass, SFR and mass formed
    convolved; mass-weighted quantities as (mass x q) convolved over mass convolved,
    but ``AGE_MW`` weighted by the mass formed (as the fits define the age)."""
    sig = fwhm_pix * FWHM_TO_SIGMA

    def conv(a):
        return gaussian_filter(np.nan_to_num(a), sig, mode="constant", truncate=5.0)

    ms = conv(mass)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = {k: np.where(ms > 0, conv(mass * np.nan_to_num(v)) / ms, np.nan)
             for k, v in quantities.items() if k != "AGE_MW"}
        mf = conv(mass_formed)
        q["AGE_MW"] = np.where(mf > 0, conv(mass_formed * np.nan_to_num(quantities["AGE_MW"]))
                               / mf, np.nan)
    return ms, conv(sfr), q, mf


def _truth_maps(galaxy, wcs, shape, pix, k):
    """Truth maps on a grid (no PSF): surviving mass, SFR, mass-weighted quantities
    (``AGE_MW`` weighted by the mass formed, the others by the surviving mass), the
    mean parameters and the mass formed."""
    sub = pix / k
    xi, eta = _fine_coords(wcs, shape, k, galaxy.cfg["ra"], galaxy.cfg["dec"])
    rbin, m_main, m_clumps = galaxy.sample(xi, eta, sub * sub)
    del xi, eta
    pops = [(m_main, rbin)] + [(m, galaxy.nbin + i) for i, m in enumerate(m_clumps)]
    mass = _block_sum(sum(m for m, _ in pops), k)
    sfr = _block_sum(sum(m * galaxy.sfr[i] for m, i in pops), k)

    def mean(values):
        return _block_sum(sum(m * values[i] for m, i in pops), k) / mass

    # the fits' age is weighted by the mass formed: so is the truth's (populations
    # of different ages keep different fractions of the mass they formed)
    formed = _block_sum(sum(m / galaxy.surv[i] for m, i in pops), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        age = _block_sum(sum(m / galaxy.surv[i] * galaxy.age_mw[i] for m, i in pops), k) / formed
    av = AV_PER_TAU_V * galaxy.params["dust2"]
    quantities = {"AGE_MW": age, "LOGZ": mean(galaxy.params["logzsol"]), "AV": mean(av)}
    params = np.stack([mean(galaxy.params[p]) for p in galaxy.param_names])
    return mass, sfr, quantities, params, formed


#: Rest-frame wavelength (AA) redward of which dust emission outshines the stars: the
#: truth holds its dust maps (``LOG_MDUST``, the DL07 parameters) when the model emits
#: dust and a band lies there, i.e. when the fits can see the dust (the 12-band demo's
#: bands end at WISE W2, 4.6 um: its truth file has none).
DUST_TRUTH_MIN_REST_AA = 5.0e4
#: the DL07 parameters whose dust-mass-weighted truth maps are written
DUST_PARAMS = ("log_umin", "log_gamma", "log_qpah")


def _has_dust_truth(galaxy, pivots):
    return bool(galaxy.model.dust_emission) and \
        bool(np.any(np.asarray(pivots) / (1.0 + galaxy.z) >= DUST_TRUTH_MIN_REST_AA))


def _dust_maps(galaxy, wcs, shape, pix, k, fwhm_pix):
    """Dust mass (Msun) per pixel and the dust-mass-weighted DL07 parameters
    (:data:`DUST_PARAMS` the model has), at a Gaussian PSF of ``fwhm_pix`` pixels
    (the mass convolved; the parameters as ratios of convolved maps) and without it.

    Returns ``{name: (map at the PSF, map without it)}`` with names ``LOG_MDUST``
    (log10 Msun) and ``LOG_UMIN``, ``LOG_GAMMA``, ``LOG_QPAH`` (dex)."""
    sub = pix / k
    xi, eta = _fine_coords(wcs, shape, k, galaxy.cfg["ra"], galaxy.cfg["dec"])
    rbin, m_main, m_clumps = galaxy.sample(xi, eta, sub * sub)
    del xi, eta
    pops = [(m_main, rbin)] + [(m, galaxy.nbin + i) for i, m in enumerate(m_clumps)]
    dust = _block_sum(sum(m * galaxy.mdust[i] for m, i in pops), k)
    sig = fwhm_pix * FWHM_TO_SIGMA

    def conv(a):
        return gaussian_filter(np.nan_to_num(a), sig, mode="constant", truncate=5.0)

    dust_psf = conv(dust)
    out = {"LOG_MDUST": (_safe_log(dust_psf), _safe_log(dust))}
    for name in (p for p in DUST_PARAMS if p in galaxy.param_names):
        weighted = _block_sum(sum(m * galaxy.mdust[i] * galaxy.params[name][i]
                                  for m, i in pops), k)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name.upper()] = (np.where(dust_psf > 0, conv(weighted) / dust_psf, np.nan),
                                 np.where(dust > 0, weighted / dust, np.nan))
    return out


def _safe_log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log10(np.where(x > 0, x, 1.0)), np.nan)


def _dust_hdus(galaxy, pivots, wcs, shape, pix, k, psf_t, confhash, card):
    """The dust truth HDUs (:func:`_dust_maps`; none unless :func:`_has_dust_truth`):
    ``LOG_MDUST`` and ``LOG_MDUST_NOPSF`` dex(solMass), the dust-mass-weighted
    ``LOG_UMIN``, ``LOG_GAMMA``, ``LOG_QPAH`` (dex) at the target PSF."""
    if not _has_dust_truth(galaxy, pivots):
        return []
    maps = _dust_maps(galaxy, wcs, shape, pix, k, psf_t / pix)
    hdus = [image_hdu("LOG_MDUST", maps["LOG_MDUST"][0].astype(np.float32), confhash, wcs,
                      "dex(solMass)", card),
            image_hdu("LOG_MDUST_NOPSF", maps["LOG_MDUST"][1].astype(np.float32), confhash,
                      wcs, "dex(solMass)", card)]
    hdus += [image_hdu(name, maps[name][0].astype(np.float32), confhash, wcs, "dex", card)
             for name in maps if name != "LOG_MDUST"]
    return hdus


def truth_grid(bands, pixel_scale=None, target_psf_fwhm=None):
    """The common grid's pixel and target PSF FWHM (arcsec) that the imaging stage
    gives the mock's ``bands``, and the truth maps are brought to: ``pixel_scale``
    and ``target_psf_fwhm`` (``images.pixel_scale``, ``images.target_psf_fwhm``)
    where set, else the coarsest native pixel and the widest band PSF as reprojected
    onto the grid (:func:`sedmap.images.psf.reprojected_fwhm`), as
    :func:`sedmap.images.pipeline.common_grid` chooses them."""
    pix = float(pixel_scale or max(b["pixscale"] for b in bands))
    psf_t = float(target_psf_fwhm or max(reprojected_fwhm(b["psf_fwhm"], b["pixscale"])
                                         for b in bands))
    return pix, psf_t


def _write_truth(cfg, galaxy, setup, band_rows, confhash, path, grid):
    """Write ``truth.fits`` (layout in :func:`sedmap.mock.make_mock`); returns its path.

    ``grid``: the imaging stage's ``pixel_scale`` and ``target_psf_fwhm`` settings
    (:func:`truth_grid`).

    ``setup`` is the mock's :class:`~sedmap.mock.render._BandSetup` (filters, pivots,
    photometry, stars), ``band_rows`` the rows of the ``BANDS`` table.
    """
    bands = cfg["bands"]
    model = galaxy.model
    filters, pivots, phot = setup.filters, setup.pivots, setup.phot
    stars = setup.stars
    pix, psf_t = truth_grid(bands, **grid)
    gwcs, gshape = target_grid(cfg["ra"], cfg["dec"], pix, cfg["stamp_arcsec"])
    k = _sub_factor(pix, cfg["fine_pixscale"])
    mass0, sfr0, quant0, params, formed0 = _truth_maps(galaxy, gwcs, gshape, pix, k)
    # the data have the target PSF, so the truth the fits are judged against has it too:
    # extensive maps convolved with it, mass-weighted ones as ratios of convolved maps
    pmaps = {f"P{i}": params[i] for i in range(params.shape[0])}
    mass, sfr, quantities, formed = _smooth_truth(mass0, sfr0, formed0, {**quant0, **pmaps},
                                                  psf_t / pix)
    params = np.stack([quantities.pop(f"P{i}") for i in range(params.shape[0])])
    # FLUX_TRUE on the grid plus a margin, convolved with the target PSF, then cropped
    m = int(np.ceil(3 * psf_t / pix))
    big = (gshape[0] + 2 * m, gshape[1] + 2 * m)
    bwcs = gwcs.deepcopy()
    bwcs.wcs.crpix = [gwcs.wcs.crpix[0] + m, gwcs.wcs.crpix[1] + m]
    sub = pix / k
    xi, eta = _fine_coords(bwcs, big, k, cfg["ra"], cfg["dec"])
    sample = galaxy.sample(xi, eta, sub * sub)
    del xi, eta
    flux_true = np.empty((len(bands),) + gshape)
    for ib in range(len(bands)):
        img = _block_sum(_psf_convolve(galaxy.flux(sample, phot[:, ib]), psf_t, sub), k)
        flux_true[ib] = img[m:m + gshape[0], m:m + gshape[1]] / DEFAULT_FSCALE
    del sample

    h = confhash
    prim = primary_hdu("MOCKTRUTH", h, {
        "RA": (float(cfg["ra"]), "[deg] galaxy centre"),
        "DEC": (float(cfg["dec"]), "[deg] galaxy centre"),
        "Z": (float(cfg["z"]), "redshift"),
        "EBV": (float(cfg["ebv"]), "[mag] Milky-Way E(B-V) applied to the images"),
        "PIXSIZE": (float(pix), "[arcsec] pixel size of the common grid"),
        "PSFFWHM": (float(psf_t), "[arcsec] target PSF of FLUX_TRUE"),
        "LOGMSTAR": (float(cfg["galaxy"]["log_mstar"]), "log10 total surviving mass, Msun"),
        "SEED": (int(cfg["seed"]), "random seed"),
        "SFH": (model.sfh.name, "SFH form of the SPS model"),
        "DUSTLAW": (model.dust_law, "dust law of the SPS model"),
    })
    card = {"MAPSPACE": "PIXEL"}
    hdus = [prim,
            image_hdu("LOG_MASS", _safe_log(mass).astype(np.float32), h, gwcs,
                      "dex(solMass)", card),
            image_hdu("LOG_SFR", _safe_log(sfr).astype(np.float32), h, gwcs,
                      "dex(solMass / yr)", card),
            image_hdu("LOG_MASS_FORMED", _safe_log(formed).astype(np.float32), h, gwcs,
                      "dex(solMass)", card),
            image_hdu("AGE_MW", quantities["AGE_MW"].astype(np.float32), h, gwcs, "Gyr", card),
            image_hdu("LOGZ", quantities["LOGZ"].astype(np.float32), h, gwcs, "dex", card),
            image_hdu("AV", quantities["AV"].astype(np.float32), h, gwcs, "mag", card),
            image_hdu("LOG_MASS_NOPSF", _safe_log(mass0).astype(np.float32), h, gwcs,
                      "dex(solMass)", card),
            image_hdu("LOG_SFR_NOPSF", _safe_log(sfr0).astype(np.float32), h, gwcs,
                      "dex(solMass / yr)", card),
            image_hdu("AGE_MW_NOPSF", quant0["AGE_MW"].astype(np.float32), h, gwcs, "Gyr",
                      card),
            image_hdu("PARAMS", params.astype(np.float32), h, gwcs, "",
                      {f"PARAM{i + 1}": p for i, p in enumerate(galaxy.param_names)}),
            *_dust_hdus(galaxy, pivots, gwcs, gshape, pix, k, psf_t, h, card),
            image_hdu("FLUX_TRUE", flux_true.astype(np.float32), h, gwcs,
                      flux_bunit(DEFAULT_FSCALE),
                      {"FSCALE": (DEFAULT_FSCALE, "data * FSCALE = erg/s/cm2/AA")}),
            filters_hdu(Filters(filters, pivots, [b["psf_fwhm"] for b in bands]), h)]
    width = max(len(f) for f in filters)
    cols = list(zip(*band_rows))
    hdus.append(table_hdu("BANDS", [
        ("filter", f"{width}A", np.array(cols[0]), None),
        ("survey", "8A", np.array(cols[1]), None),
        ("pixscale", "D", np.array(cols[2], dtype=float), "arcsec"),
        ("rotation_deg", "D", np.array(cols[3], dtype=float), "deg"),
        ("offset_east", "D", np.array(cols[4], dtype=float), "arcsec"),
        ("offset_north", "D", np.array(cols[5], dtype=float), "arcsec"),
        ("a_lambda", "D", np.array(cols[6], dtype=float), "mag"),
        ("flam_per_unit", "D", np.array(cols[7], dtype=float), "erg s-1 cm-2 AA-1"),
        ("nx", "J", np.array(cols[8], dtype=np.int32), None),
        ("ny", "J", np.array(cols[9], dtype=np.int32), None),
    ], h))
    nb = len(filters)
    star_cols = [np.array([s[i] for s in stars], dtype=float) for i in range(4)]
    mags = np.array([s[4] for s in stars], dtype=float).reshape(len(stars), nb)
    hdus.append(table_hdu("STARS", [
        ("ra", "D", star_cols[0], "deg"), ("dec", "D", star_cols[1], "deg"),
        ("teff", "D", star_cols[2], "K"), ("ref_mag", "D", star_cols[3], "mag"),
        ("mag", f"{nb}D", mags, "mag"),
    ], h, {"REFFILT": cfg["star_ref_filter"]}))
    return _write_hdul(hdus, path)
