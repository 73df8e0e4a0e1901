"""The ifs stage (sedmap.ifs): cube readers, spatial matching, spectro-photometric correction.

Science checks on the mock galaxy (its MaNGA-like cube against its own flux
map, built by the imaging stage in-process) and on synthetic cubes with a
known answer: flux conservation, PSF matching, variance propagation with K**2
(Monte Carlo), recovery of a known smooth calibration error; the MUSE reader
on a real cube; every bad input -> InputError naming the file, nothing written.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.wcs import WCS

from sedmap.config import load_config
from sedmap.errors import InputError
from sedmap.filters import filter_matrix, get_filter
from sedmap.ifs import build_spec_photo, read_cube, spec_photo_from_cube
from sedmap.ifs.correct import legendre_x
from sedmap.ifs.match import match_cube
from sedmap.ifs.readers import IFSCube, air_to_vacuum, muse_fsf_fwhm, noise_reading
from sedmap.images import pipeline as P
from sedmap.images.extinction import galactic_transmission
from sedmap.images.psf import gaussian_psf
from sedmap.io import Filters, FluxCube, read_flux_cube, read_spec_photo
from sedmap.mock import make_mock

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
MUSE_CUBE = REAL / "hdfs_muse_hst" / "subcub_mosaic.fits"
NGC3081 = REAL / "ifs_nearby" / "ngc3081_cube.fits"

# a small mock: one band per needed role (GALEX NUV sets the 5.4" target PSF; SDSS g, r, i
# lie inside the cube's 3600-9000 AA range), no stars or clumps, a short log-spaced cube
BANDS = [
    {"filter": "galex_nuv", "survey": "galex", "pixscale": 1.5, "psf_fwhm": 5.3,
     "rotation_deg": 11.0, "offset_arcsec": [4.0, -3.0], "exptime": 1500.0, "sky": 5.0e-3},
    {"filter": "sdss_g", "survey": "sdss", "pixscale": 0.396, "psf_fwhm": 1.3,
     "rotation_deg": -3.0, "offset_arcsec": [-2.0, 1.0], "nmgy": 0.0038, "sky": 72.0,
     "gain": 4.71, "darkvar": 1.8225},
    {"filter": "sdss_r", "survey": "sdss", "pixscale": 0.396, "psf_fwhm": 1.2,
     "rotation_deg": 4.5, "offset_arcsec": [-3.0, 2.0], "nmgy": 0.005, "sky": 125.0,
     "gain": 4.71, "darkvar": 1.8225},
    {"filter": "sdss_i", "survey": "sdss", "pixscale": 0.396, "psf_fwhm": 1.2,
     "rotation_deg": -1.5, "offset_arcsec": [1.0, -2.0], "nmgy": 0.0066, "sky": 180.0,
     "gain": 4.71, "darkvar": 1.8225},
]
STAMP = 60.0
MOCK = {"stamp_arcsec": STAMP, "fine_pixscale": 0.5, "clumps": [], "stars": [], "bands": BANDS,
        "galaxy": {"log_mstar": 10.0, "disk_scale_arcsec": 4.5, "bulge_re_arcsec": 1.5},
        "ifs": True, "ifs_cube": {"diameter_arcsec": 24.0, "wave_min": 3600.0,
                                  "wave_max": 9000.0, "R": 300.0}}
COVERED = ["sdss_g", "sdss_r", "sdss_i"]


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    """The mock's cube and its flux map from the imaging stage (as sedmap.cli images does)."""
    tmp = tmp_path_factory.mktemp("ifs")
    man = make_mock(MOCK, tmp / "mock", models_config=load_config()["models"], progress=False)
    cfg = load_config("config/galaxies/demo.yaml")
    with open(man["bands"]) as fh:
        bands = yaml.safe_load(fh)["bands"]
    fluxmap = P.run_all(bands, cfg["galaxy"], dict(cfg["images"], stamp_arcsec=STAMP), tmp)
    out = build_spec_photo(man["ifs"], fluxmap, tmp / "specphoto.fits", survey="manga",
                           config_hash="abc123", progress=False)
    return {"tmp": tmp, "cube": man["ifs"], "fluxmap": fluxmap, "specphoto": out}


def _synthetic_photometry(wave, spec, spec_err, names):
    """Band averages of spectra (n_wave, n) with NaN gaps: weights renormalised over good pixels."""
    W = filter_matrix(names, wave)
    good = np.isfinite(spec)
    wsum = good.T.astype(float) @ W.T
    syn = np.where(good, spec, 0.0).T @ W.T / wsum
    var = np.where(good, spec_err, 0.0).T ** 2 @ (W**2).T / wsum**2
    return syn, var


# ------------------------------------------------------------------ the mock, end to end

def test_product_reads_back_with_provenance(mock):
    sp = read_spec_photo(mock["specphoto"])
    phot = read_flux_cube(mock["fluxmap"])
    assert sp.photometry.config_hash == "abc123"
    assert sp.photometry.filters == phot.filters
    assert sp.spec.shape[1:] == phot.shape
    assert sp.spec_mask.sum() >= 40
    assert np.all(phot.region[sp.spec_mask])
    assert np.all(np.isnan(sp.spec[:, ~sp.spec_mask]))
    assert sp.wave[0] == pytest.approx(3600.0) and np.all(np.diff(np.log(sp.wave)) > 0)
    assert fits.getheader(mock["specphoto"])["PRODUCT"] == "SPECPHOTO"


def test_uncorrected_spectra_already_agree_with_the_photometry(mock):
    """Units, spaxel->pixel areas, Milky-Way dereddening and PSF matching, checked before any
    correction: the matched mock spectra's synthetic g, r, i photometry equals the flux map's
    (same galaxy model) to < 1% in the median, within the errors pixel by pixel; without the
    PSF matching the centre would be ~35% too bright (many sigma)."""
    phot = read_flux_cube(mock["fluxmap"])
    cube = read_cube(mock["cube"], "manga")
    bands = [phot.filters.name.index(n) for n in COVERED]
    for kw, ok in (({}, True), ({"psf_fwhm": phot.psf_fwhm}, False)):
        f, v, m = match_cube(cube, phot, progress=False, **kw)
        trans = galactic_transmission(cube.wave, phot.ebv)[:, None]
        m &= phot.region
        syn, svar = _synthetic_photometry(cube.wave, f[:, m] / trans, np.sqrt(v[:, m]) / trans,
                                          COVERED)
        p, e = phot.flux[bands][:, m].T, phot.flux_err[bands][:, m].T
        chi = (p - syn) / np.sqrt(e**2 + svar)
        if ok:
            assert np.all(np.abs(np.median(p / syn, axis=0) - 1) < 0.01)
            assert np.all(np.abs(chi.mean(axis=0)) < 1.0) and np.all(chi.std(axis=0) < 1.6)
        else:
            assert np.max(np.abs(chi)) > 10


def test_corrected_spectra_reproduce_the_photometry(mock):
    """Synthetic photometry of the product's spectra = flux-map photometry within the errors
    (order 2: three bands, exact; order 1: one degree of freedom left)."""
    sp = read_spec_photo(mock["specphoto"])
    phot = sp.photometry
    m = sp.spec_mask
    bands = [phot.filters.name.index(n) for n in COVERED]
    syn, _ = _synthetic_photometry(sp.wave, sp.spec[:, m], sp.spec_err[:, m], COVERED)
    p, e = phot.flux[bands][:, m].T, phot.flux_err[bands][:, m].T
    assert np.max(np.abs(p - syn) / e) < 0.05

    cube = read_cube(mock["cube"], "manga")
    lin, diag = spec_photo_from_cube(cube, phot, order=1, progress=False)
    m = lin.spec_mask
    syn, _ = _synthetic_photometry(lin.wave, lin.spec[:, m], lin.spec_err[:, m], COVERED)
    chi = (phot.flux[bands][:, m].T - syn) / phot.flux_err[bands][:, m].T
    assert np.all(np.abs(chi) < 3.0)
    assert np.nanmax(np.abs(diag.residual)) < 3.0 and diag.bands == COVERED
    # the pipeline's own spectra needed < 1% of correction (Milky-Way dereddening, units, PSF)
    assert np.all(np.abs(np.nanmedian(diag.ratio[:, m], axis=1) - 1) < 0.01)
    assert np.all(diag.flag[m] == 0) and np.all(diag.n_bands[m] == 3)


@pytest.mark.parametrize("tilt", ["quadratic", "exp"])
def test_known_calibration_error_is_corrected_back(mock, tilt):
    """Multiply the cube by a smooth function t of wavelength (flux and error): the corrected
    spectra come back to those of the untouched cube, pixel by pixel (both share the noise,
    so got / ref = t P_got / P_ref exactly): within 1% between the extreme band pivots for a
    t whose inverse is an order-2 Legendre series and for an exponential that is not; over
    the whole range (extrapolated beyond the pivots) within 3% for the first."""
    phot = read_flux_cube(mock["fluxmap"])
    cube = read_cube(mock["cube"], "manga")
    ref, _ = spec_photo_from_cube(cube, phot, progress=False)
    x = legendre_x(cube.wave)
    t = 1 / (0.6 * (1 + 0.3 * x - 0.15 * x**2)) if tilt == "quadratic" else 1.7 * np.exp(0.4 * x)
    bad = IFSCube(**{**cube.__dict__, "flux": cube.flux * t[:, None, None].astype(np.float32),
                     "var": cube.var * (t**2)[:, None, None].astype(np.float32)})
    got, _ = spec_photo_from_cube(bad, phot, progress=False)
    assert np.array_equal(got.spec_mask, ref.spec_mask)
    m = ref.spec_mask
    piv = [get_filter(n).pivot_wavelength for n in COVERED]
    inside = (cube.wave >= min(piv)) & (cube.wave <= max(piv))
    ratio = got.spec[:, m] / ref.spec[:, m]
    assert np.nanmax(np.abs(ratio[inside] - 1)) < 0.01
    if tilt == "quadratic":
        assert np.nanmax(np.abs(ratio - 1)) < 0.03
    assert np.max(np.abs(t[inside] / np.mean(t[inside]) - 1)) > 0.1  # the error was large
    # the error spectrum is scaled with the flux
    np.testing.assert_allclose(got.spec_err[:, m] / ref.spec_err[:, m], ratio, rtol=1e-5)


# ------------------------------------------------------------------ synthetic cubes

def _tan(pix, n, rot=0.0, ra=150.0, dec=2.0):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(n + 1) / 2.0, (n + 1) / 2.0]
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * pix / 3600.0
    w.wcs.cunit = ["deg", "deg"]
    return w


def _fluxmap(pix=1.5, n=31, target=5.0):
    """A flux map that only provides the grid (its photometry is not used here)."""
    shape = (n, n)
    return FluxCube(galaxy="t", flux=np.ones((1,) + shape, np.float32),
                    flux_err=np.ones((1,) + shape, np.float32), region=np.ones(shape, bool),
                    wcs=_tan(pix, n), filters=Filters(["sdss_r"], [6166.0], [1.0]), ra=150.0,
                    dec=2.0, z=0.0, pixsize=pix, psf_fwhm=target, ebv=0.0)


def _cube(flux, var, pix, rot=0.0, psf=2.5):
    n_wave, ny, nx = flux.shape
    return IFSCube(survey="test", path="test.fits", wave=np.linspace(4000.0, 8000.0, n_wave),
                   flux=flux.astype(np.float32), var=var.astype(np.float32),
                   wcs=_tan(pix, nx, rot), fscale=1e-17, psf_fwhm=np.full(n_wave, psf),
                   spaxel_mask=np.ones((ny, nx), bool))


def _moments(img, pix):
    yy, xx = np.indices(img.shape)
    t = img.sum()
    cx, cy = (img * xx).sum() / t, (img * yy).sum() / t
    return t, ((img * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / t / 2) * pix**2


def test_matching_conserves_flux_and_reaches_the_target_psf():
    """A point source seen at the cube's PSF (2.5", 0.5" spaxels, rotated grid): after
    matching to 1.5" pixels and a 5" PSF its total flux is unchanged (< 1%) and its
    second moment is that of the target PSF on the flux-map grid (< 2%)."""
    pix, n = 0.5, 61
    psf = gaussian_psf(2.5, pix, size=n)  # pixel-integrated: what the cube's spaxels see
    scale = np.linspace(1.0, 3.0, 8)
    flux = scale[:, None, None] * psf[None] * 100.0
    cube = _cube(flux, np.full(flux.shape, 0.01), pix, rot=17.0, psf=2.5)
    phot = _fluxmap()
    out, _, mask = match_cube(cube, phot, progress=False)
    assert mask[15, 15] and not mask[0, 0]
    tot = np.nansum(out, axis=(1, 2))
    assert np.allclose(tot, flux.sum(axis=(1, 2)), rtol=0.01)
    _, m2 = _moments(np.nan_to_num(out[0]), 1.5)
    _, t2 = _moments(gaussian_psf(5.0, 1.5, size=31), 1.5)
    assert m2 == pytest.approx(t2, rel=0.02)
    # not matched (cube PSF declared equal to the target): visibly too sharp
    sharp, _, _ = match_cube(cube, phot, psf_fwhm=5.0, progress=False)
    assert _moments(np.nan_to_num(sharp[0]), 1.5)[1] < 0.5 * t2


@pytest.mark.parametrize("pix, rot", [(0.5, 0.0), (1.0, 23.0)])
def test_variance_propagates_with_k_squared(pix, rot):
    """Pure-noise planes (sigma = 1 per spaxel) are independent realisations: the scatter of
    the matched planes equals the propagated variance (L**2 weights = K**2 and squared
    overlaps), not the piXedfit variance * K (~1 / sum K**2 = 10-20x larger). For nested
    spaxels (0.5" in 1.5") it is also the analytic 9 * sum(K**2)."""
    rng = np.random.default_rng(7)
    n = round(24 / pix) | 1
    noise = rng.standard_normal((3000, n, n))
    cube = _cube(noise, np.ones(noise.shape), pix, rot=rot, psf=2.0)
    phot = _fluxmap(n=21, target=4.0)
    out, var, mask = match_cube(cube, phot, progress=False, chunk=1000)
    inner = mask & np.all(np.isfinite(out), axis=0)
    assert inner.sum() > 20
    emp = np.var(out[:, inner], axis=0)
    pred = var[0, inner]
    assert np.allclose(var[:, inner], pred[None], rtol=1e-5)
    assert np.median(emp / pred) == pytest.approx(1.0, abs=0.04)
    assert np.all(np.abs(emp / pred - 1) < 0.2)
    if rot == 0.0:
        from sedmap.ifs.match import gaussian_kernel, kernel_sigmas

        k = gaussian_kernel(kernel_sigmas(cube, phot)[0])
        # fully covered pixels; near the edge the renormalisation by the coverage adds a little
        assert var[0, 10, 10] == pytest.approx(9.0 * np.sum(k**2), rel=1e-5)
        assert pred.min() > (1 - 1e-4) * 9.0 * np.sum(k**2)
        assert 9.0 / pred.mean() > 5  # what variance * K would have given instead


@pytest.mark.parametrize("pix, rot", [(0.5, 0.0), (1.0, 23.0)])
def test_binned_spectra_variance_counts_the_matching_covariance(pix, rot):
    """Pure-noise planes again: the scatter of bins' summed spectra (square bins of 4-25
    pixels and a ring) equals the variance bin_spectra gives with the correlation the
    matching reports, within 10%; without it the variance is 2-5x too small (the S/N of a
    bin of spectra overstated 1.4-2.2x)."""
    from sedmap.binning import bin_spectra

    rng = np.random.default_rng(11)
    n = round(24 / pix) | 1
    noise = rng.standard_normal((3000, n, n))
    cube = _cube(noise, np.ones(noise.shape), pix, rot=rot, psf=2.0)
    out, var, mask, rho = match_cube(cube, _fluxmap(n=21, target=4.0), progress=False,
                                     chunk=1000, return_noise_corr=True)
    assert rho[rho.shape[0] // 2, rho.shape[1] // 2] == 1.0 and rho.max() == 1.0
    binmap = np.zeros(mask.shape, np.int32)
    binmap[9:11, 9:11] = 1
    binmap[4:7, 4:7] = 2
    binmap[12:17, 5:10] = 3
    yy, xx = np.indices(mask.shape)
    ring = (np.hypot(yy - 10, xx - 14) > 2) & (np.hypot(yy - 10, xx - 14) < 3.5)
    binmap[ring & (binmap == 0)] = 4
    binmap[~mask] = 0
    spec, bvar = bin_spectra(binmap, out, var, mask, noise_corr=rho)
    _, plain = bin_spectra(binmap, out, var, mask)
    ok = np.all(np.isfinite(spec), axis=1)
    assert ok.sum() == 4
    emp = np.nanvar(spec, axis=1)
    ratio = emp / np.nanmedian(bvar, axis=1)
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    assert np.all(emp / np.nanmedian(plain, axis=1) > 1.8)


# ------------------------------------------------------------------ readers

def _write_like(src, dst, edit):
    with fits.open(src) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    edit(hdul)
    hdul.writeto(dst, overwrite=True)
    return dst


def test_califa_and_muse_layouts_read_to_the_same_physical_flux(mock, tmp_path):
    """The mock MaNGA cube rewritten in the CALIFA (1e-16, ERROR, BADPIX, linear axis) and
    MUSE (1e-20, DATA/STAT, DQ) layouts reads to the same erg/s/cm2/AA."""
    ref = read_cube(mock["cube"], "manga")
    n_wave = ref.wave.size
    with fits.open(mock["cube"]) as h:
        flux = h["FLUX"].data.astype(float)
        ivar = h["IVAR"].data.astype(float)
        cel = WCS(h["FLUX"].header).celestial.to_header()
    with np.errstate(divide="ignore"):
        err = np.where(ivar > 0, 1.0 / np.sqrt(ivar), 0.0)
    head = cel.copy()
    head.update(CRVAL3=4000.0, CDELT3=2.0, CRPIX3=1.0)
    head["BUNIT"] = "10**(-16) erg s-1 cm-2 A-1"
    califa = fits.HDUList([fits.PrimaryHDU(flux * 0.1, head),
                           fits.ImageHDU(err * 0.1, name="ERROR"),
                           fits.ImageHDU((ivar <= 0).astype(np.uint8), name="BADPIX")])
    califa.writeto(tmp_path / "califa.fits")
    c = read_cube(tmp_path / "califa.fits", "califa")
    assert c.fscale == 1e-16 and c.air and c.psf_fwhm[0] == 2.5
    assert np.allclose(c.wave, 4000.0 + 2.0 * np.arange(n_wave))
    np.testing.assert_allclose(c.flux * c.fscale, ref.flux * ref.fscale, rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(c.var * c.fscale**2, ref.var * ref.fscale**2, rtol=1e-4,
                               atol=1e-60)
    dhead = head.copy()
    dhead.update(CTYPE3="AWAV", CUNIT3="Angstrom", BUNIT="10**(-20)*erg/s/cm**2/Angstrom")
    shead = dhead.copy()
    shead["BUNIT"] = "(10**(-20)*erg/s/cm**2/Angstrom)**2"  # as the MUSE DRS writes it
    muse = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(flux * 1e3, dhead, name="DATA"),
                         fits.ImageHDU(err**2 * 1e6, shead, name="STAT"),
                         fits.ImageHDU((ivar <= 0).astype(np.int32), name="DQ")])
    muse.writeto(tmp_path / "muse.fits")
    m = read_cube(tmp_path / "muse.fits", "muse")
    assert m.fscale == 1e-20 and m.psf_fwhm is None
    np.testing.assert_allclose(m.flux * m.fscale, ref.flux * ref.fscale, rtol=1e-5, atol=1e-30)
    np.testing.assert_array_equal(m.spaxel_mask, ref.spaxel_mask)
    assert air_to_vacuum(6562.80) == pytest.approx(6564.61, abs=0.02)  # H-alpha


@pytest.mark.skipif(not MUSE_CUBE.is_file(), reason="shared real data not available")
def test_real_muse_cube():
    cube = read_cube(MUSE_CUBE, "muse")
    assert cube.flux.shape == (500, 30, 30) and cube.shape == (30, 30)
    assert cube.wave[0] == pytest.approx(4750.0) and np.allclose(np.diff(cube.wave), 1.25)
    assert cube.air and cube.fscale == pytest.approx(1e-20)
    assert cube.pixscale == pytest.approx(0.2, rel=1e-3)
    good = np.isfinite(cube.var)
    assert good.mean() > 0.99 and np.all(cube.var[good] > 0)
    med = np.nanmedian(cube.flux) * cube.fscale  # erg/s/cm2/AA per spaxel: a faint field
    assert 1e-23 < abs(med) < 1e-19
    assert cube.wcs.has_celestial and cube.wcs.naxis == 2
    # the cube's own PSF model (FSFnnFWA/FWB of the fields its FIELDMAP names: 6 and 9),
    # not the 0.79" seeing
    k = np.argmin(np.abs(cube.wave - 5060.0))
    assert cube.psf_fwhm[k] == pytest.approx(0.682, abs=0.003)
    assert cube.psf_fwhm[0] > cube.psf_fwhm[-1]  # sharper to the red


def test_muse_fsf_keywords_give_the_psf_at_each_wavelength():
    h = fits.Header({"FSFMODE": "MOFFAT1", "FSF01FWA": 0.9, "FSF01FWB": -4e-5, "FSF01BET": 2.8,
                     "FSF02FWA": 0.8, "FSF02FWB": -2e-5, "FSF02BET": 2.8})
    wave = np.array([5000.0, 7000.0])
    np.testing.assert_allclose(muse_fsf_fwhm(h, wave), [0.85 - 0.15, 0.85 - 0.21])
    fieldmap = np.array([[2, 2, 2, 6]])  # field 1 everywhere, field 2 in one spaxel in four
    np.testing.assert_allclose(muse_fsf_fwhm(h, wave, fieldmap)[1], (4 * 0.62 + 0.66) / 5)
    h["FSFMODE"] = "GAUSSIAN2"
    assert muse_fsf_fwhm(h, wave) is None


def test_noise_extension_read_as_error_or_variance_from_the_data():
    rng = np.random.default_rng(3)
    flux = 1e-16 * (1 + 0.1 * rng.random((50, 4, 4)))
    sigma = flux / 3.0
    assert noise_reading(flux, sigma, "c.fits", "ERR") == "error"
    assert noise_reading(flux, sigma**2, "c.fits", "ERR") == "variance"  # GMOS: 1e-33
    with pytest.raises(InputError, match="errors or variances.*ifs.reader.noise"):
        noise_reading(flux / 1e-16, sigma / 1e-16, "c.fits", "ERR")  # order unity: both fit


def _wcs_cube(path, noise, ctype3="WAVE", sky=True, bunit="1e-17 erg/s/cm2/Angstrom"):
    rng = np.random.default_rng(1)
    data = (2.0 + 0.1 * rng.normal(size=(200, 6, 5))).astype(np.float32)
    err = np.full(data.shape, 0.1, np.float32)
    h = fits.Header({"CTYPE3": ctype3, "CRVAL3": 5000.0, "CDELT3": 2.0, "CRPIX3": 1.0,
                     "CUNIT3": "Angstrom", "BUNIT": bunit})
    if sky:
        h.update(WCS({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0,
                      "CRVAL2": -5.0, "CRPIX1": 3.0, "CRPIX2": 3.5, "CDELT1": -0.5 / 3600,
                      "CDELT2": 0.5 / 3600}).to_header())
    nh = h.copy()
    if noise == "variance-bunit":
        nh["BUNIT"] = "1e-34 erg2/s2/cm4/Angstrom2"
        err = err**2
    else:
        del nh["BUNIT"]
        err = err**2 if noise == "variance" else err
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, h, name="SCI"),
                  fits.ImageHDU(err, nh, name="ERR")]).writeto(path)
    return path


@pytest.mark.parametrize("noise, options", [("error", {"noise": "error"}),
                                            ("variance-bunit", {})])  # told, or its BUNIT
def test_generic_wcs_reader(tmp_path, noise, options):
    cube = read_cube(_wcs_cube(tmp_path / "c.fits", noise), "wcs", **options)
    assert cube.fscale == pytest.approx(1e-17) and not cube.air and cube.shape == (6, 5)
    np.testing.assert_allclose(np.sqrt(cube.var), 0.1, rtol=1e-5)  # same either way
    assert cube.pixscale == pytest.approx(0.5)


def test_generic_wcs_reader_refuses_what_it_cannot_know(tmp_path):
    with pytest.raises(InputError, match="air or vacuum.*ifs.reader.air"):
        read_cube(_wcs_cube(tmp_path / "a.fits", "error", ctype3="LAMBDA"), "wcs", noise="error")
    path = _wcs_cube(tmp_path / "b.fits", "error", sky=False)
    with pytest.raises(InputError, match="no sky coordinates.*ifs.reader.sky"):
        read_cube(path, "wcs", noise="error")
    cube = read_cube(path, "wcs", noise="error", sky={"ra": 10.0, "dec": -5.0, "pixscale": 0.3})
    assert cube.pixscale == pytest.approx(0.3)
    # S/N 20 per pixel read either way (error: 20, variance: 6.3): ambiguous, refused
    with pytest.raises(InputError, match="errors or variances"):
        read_cube(_wcs_cube(tmp_path / "c.fits", "error", bunit="erg/s/cm2/Angstrom"), "wcs")


@pytest.mark.skipif(not NGC3081.is_file(), reason="shared real data not available")
def test_real_gmos_cube_has_a_variance_in_its_err_extension():
    """NGC 3081 (GMOS-IFU): 'ERR' ~1e-33 against data ~1e-16 is a variance (S/N ~3); its
    spatial axes are LINEAR, so the reader asks for the position, then reads it."""
    with pytest.raises(InputError, match="LINEAR/LINEAR"):
        read_cube(NGC3081, "wcs", mask_ext="MASK", air=True)
    cube = read_cube(NGC3081, "wcs", mask_ext="MASK", air=True,
                     sky={"ra": 149.8731, "dec": -22.8263, "pixscale": 0.1})
    assert cube.flux.shape == (1800, 8, 6)
    snr = np.nanmedian(cube.flux / np.sqrt(cube.var))
    assert 1 < snr < 10  # read as an error it would be ~1e17
    assert cube.fscale == pytest.approx(0.01)  # erg/s/cm2/AA/arcsec2 x (0.1")^2


# ------------------------------------------------------------------ bad input

def _edit_mock(mock, tmp_path, name, edit):
    return _write_like(mock["cube"], tmp_path / name, edit)


def _set_bunit(h):
    h["FLUX"].header["BUNIT"] = "Jy"


def _zero_ivar(h):
    h["IVAR"].data[:] = 0.0


def _shift_wcs(h):
    for ext in ("FLUX", "IVAR", "MASK"):
        h[ext].header["CRVAL1"] += 1.0


def _drop_ivar(h):
    del h["IVAR"]


@pytest.mark.parametrize("name, edit, match", [
    ("jy.fits", _set_bunit, "not a flux density"),
    ("novar.fits", _zero_ivar, "no usable pixel"),
    ("elsewhere.fits", _shift_wcs, "does not overlap"),
    ("noivar.fits", _drop_ivar, "missing extension IVAR"),
])
def test_bad_cubes_raise_and_write_nothing(mock, tmp_path, name, edit, match):
    bad = _edit_mock(mock, tmp_path, name, edit)
    out = tmp_path / "out" / "specphoto.fits"
    with pytest.raises(InputError, match=match) as exc:
        build_spec_photo(bad, mock["fluxmap"], out, survey="manga", progress=False)
    assert name in str(exc.value) and "Fix:" in str(exc.value)
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))


def test_missing_corrupt_and_unknown_survey(mock, tmp_path):
    out = tmp_path / "specphoto.fits"
    with pytest.raises(InputError, match="nothere.fits.*not found"):
        build_spec_photo(tmp_path / "nothere.fits", mock["fluxmap"], out, survey="manga")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(InputError, match="junk.fits"):
        build_spec_photo(junk, mock["fluxmap"], out, survey="muse")
    cut = tmp_path / "cut.fits"
    cut.write_bytes(Path(mock["cube"]).read_bytes()[:100000])
    with pytest.raises(InputError, match="cut.fits"):
        read_cube(cut, "manga")
    with pytest.raises(InputError, match="unknown IFS survey"):
        read_cube(mock["cube"], "sami")
    with pytest.raises(InputError, match="missing extension DATA"):
        read_cube(mock["cube"], "muse")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.fits", "junk.fits"]


def test_some_bad_variances_are_masked_not_fatal(mock, tmp_path):
    def edit(h):
        h["IVAR"].data[10:20] = -1.0          # negative: masked
        h["IVAR"].data[30, 25:35, 25:35] = np.nan
    cube = read_cube(_edit_mock(mock, tmp_path, "partial.fits", edit), "manga")
    assert np.all(np.isnan(cube.flux[10:20])) and np.all(np.isnan(cube.var[30, 25:35, 25:35]))
    assert np.isfinite(cube.flux[40]).sum() > 100 and np.all(cube.var[np.isfinite(cube.var)] > 0)


def test_binned_spectra_conserve_flux_and_skip_uncovered_bins(mock, tmp_path):
    """The binning stage with the IFS product: each covered bin's spectrum is the
    sum of its spaxels' spectra (and variances); bins reaching outside the IFS
    footprint get no spectrum (NaN), so a spectrum always matches its photometry."""
    from sedmap.io import read_bin_map
    from sedmap.stages import run_binning

    cfg = dict(load_config("config/galaxies/demo.yaml")["binning"], sn_threshold=3.0)
    out = run_binning(mock["fluxmap"], tmp_path / "binmap.fits", cfg,
                      specphoto_path=mock["specphoto"])
    bm = read_bin_map(out)
    sp = read_spec_photo(mock["specphoto"])
    assert bm.bin_spec.shape == (bm.n_bin, sp.wave.size)
    np.testing.assert_allclose(bm.wave, sp.wave)
    covered = np.array([sp.spec_mask[bm.binmap == k].all() for k in range(1, bm.n_bin + 1)])
    assert covered.sum() >= 5 and (~covered).sum() >= 5
    assert np.all(np.isnan(bm.bin_spec[~covered]))
    for k in np.flatnonzero(covered)[:5] + 1:
        pix = bm.binmap == k
        expect = np.sum(sp.spec[:, pix], axis=1)
        ok = np.isfinite(expect)
        assert ok.mean() > 0.9
        np.testing.assert_allclose(bm.bin_spec[k - 1, ok], expect[ok], rtol=1e-5)
        # the variance: the pixels' sum times the factor their covariances add
        plain = np.sum(sp.spec_err[:, pix].astype(float) ** 2, axis=1)[ok]
        factor = bm.bin_spec_var[k - 1, ok] / plain
        assert np.allclose(factor, factor[0], rtol=1e-5) and factor[0] > 1 - 1e-6
        assert np.all(np.isnan(bm.bin_spec[k - 1, ~ok]))


def test_voronoi_on_a_line_free_window_bins_the_ifs_footprint(mock, tmp_path):
    """binning.voronoi_window (vorbin's MUSE example): the bins cover only the
    spaxels with a clean spectrum in the window, every bin with more than one
    pixel reaches about the target S/N of the window's mean flux, its pixels'
    covariances counted (the matching's, SPEC_NOISE_CORR; counted as independent
    the S/N would look 1.3x higher or more), and every bin still gets its
    photometry and its spectrum."""
    from sedmap.binning import NoiseModel, window_signal
    from sedmap.io import read_bin_map, read_flux_cube
    from sedmap.stages import run_binning

    window, target = (5300.0, 5700.0), 300.0
    cfg = dict(load_config("config/galaxies/demo.yaml")["binning"], method="voronoi",
               sn_threshold=target, voronoi_window=list(window))
    out = run_binning(mock["fluxmap"], tmp_path / "binmap.fits", cfg,
                      specphoto_path=mock["specphoto"])
    bm = read_bin_map(out)
    sp = read_spec_photo(mock["specphoto"])
    z = read_flux_cube(mock["fluxmap"]).z
    sig, var, good = window_signal(sp.wave, sp.spec, sp.spec_err.astype(float) ** 2,
                                   sp.spec_mask, window, z=z)
    assert bm.n_bin >= 10
    assert np.all(good[bm.binmap > 0])                     # inside the footprint only
    assert np.all(np.isfinite(bm.bin_spec).any(axis=1))    # so every bin has a spectrum
    noise = NoiseModel(sp.noise_corr[None])
    sn, sn_indep = [], []
    for k in range(1, bm.n_bin + 1):
        ys, xs = np.nonzero(bm.binmap == k)
        s = sig[ys, xs].sum()
        sn.append(s / np.sqrt(noise.sum_variance(ys, xs, np.sqrt(var[ys, xs]))[0]))
        sn_indep.append(s / np.sqrt(var[ys, xs].sum()))
    sn, sn_indep = np.array(sn), np.array(sn_indep)
    npix = np.bincount(bm.binmap.ravel(), minlength=bm.n_bin + 1)[1:]
    multi = npix > 1
    assert multi.sum() >= 5  # the bright centre's pixels reach it alone
    assert 0.7 * target < np.median(sn[multi]) < 1.5 * target, sn[multi]
    assert np.median(sn_indep[multi] / sn[multi]) > 1.3
    # a window outside the cube is a clear error
    with pytest.raises(InputError, match="binning.voronoi_window"):
        run_binning(mock["fluxmap"], tmp_path / "b2.fits", dict(cfg, voronoi_window=[100, 200]),
                    specphoto_path=mock["specphoto"])
