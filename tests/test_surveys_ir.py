"""Tests of the spitzer, herschel, jwst, hsc and legacy recipes of sedmap.images.surveys.

Each recipe reads a file written here in the survey's own delivery format (its HDUs,
BUNIT, header keys and a WCS at its native pixel scale) holding a source of known
flux density. The conversion factors below are computed from the survey documents
(MJy/sr times the pixel solid angle; Jy/beam times pixel area / SPIRE beam area;
HSC AB zero point 27; 1 nanomaggy = 3.631e-6 Jy), not taken from sedmap, and the
source's total f_lambda and every pixel's variance must come out of ``load_band``.
Files that are not what a recipe assumes (resampled pixels, another unit, another
band, a stale PIXAR_SR) are refused with an InputError naming the file and a fix.
The mock's writers of these surveys (``sedmap.mock.MOCK_SURVEYS``) write a source of
known flux that the readers give back to 0.1%, with the variance the mock drew its
noise from. Last, the survey list of config/schema.yaml, docs/surveys.md and
``SURVEYS`` agree.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from test_images_surveys import _rewrite, wcs_header, write  # the same file helpers

from sedmap.errors import InputError
from sedmap.filters import get_filter
from sedmap.images.surveys import SURVEYS, bunit_kind, default_calib_err, load_band
from sedmap.mock.geometry import _tan_wcs
from sedmap.mock.surveys import MOCK_SURVEYS, _band_spec, write_band

ROOT = Path(__file__).resolve().parent.parent
C_AA = 2.99792458e18                  # Angstrom / s
RAD_ARCSEC = 180.0 / np.pi * 3600.0   # arcsec per radian
NY, NX = 96, 128
#: SPIRE beam solid angles, arcsec^2, alpha = -1 (SPIRE Handbook v3.1)
SPIRE_BEAM = {"herschel_spire_250": 469.35, "herschel_spire_350": 831.27,
              "herschel_spire_500": 1804.31}


# --------------------------------------------------------------------------- helpers

def image(data, scale, cards=None, name=None, primary=False):
    """An image HDU with a WCS of ``scale`` arcsec pixels and header ``cards``."""
    h = wcs_header(scale=scale)
    for k, v in (cards or {}).items():
        h[k] = v
    if primary:
        return fits.PrimaryHDU(data, header=h)
    return fits.ImageHDU(data, header=h, name=name)


def ext(data, name, cards=None):
    """An extension without WCS (noise, weight and mask maps)."""
    h = fits.Header()
    for k, v in (cards or {}).items():
        h[k] = v
    return fits.ImageHDU(data, header=h, name=name)


def gaussian(total, sigma=2.5, ny=NY, nx=NX):
    """A Gaussian source whose pixels sum exactly to ``total``."""
    y, x = np.mgrid[0:ny, 0:nx]
    g = np.exp(-((x - nx / 2 + 0.3) ** 2 + (y - ny / 2 - 0.2) ** 2) / (2 * sigma**2))
    return total * g / g.sum()


def checker(eps, ny=NY, nx=NX):
    """+-eps checkerboard: zero sum, rms eps (a noise-free image with a non-zero rms)."""
    y, x = np.mgrid[0:ny, 0:nx]
    return eps * np.where((x + y) % 2 == 0, 1.0, -1.0)


def flam_per_jy(filt):
    """erg/s/cm^2/AA per Jy at the filter's pivot wavelength."""
    return 1e-23 * C_AA / get_filter(filt).pivot_wavelength ** 2


def pixel_sr(scale):
    return (scale / RAD_ARCSEC) ** 2


def _raises(spec, *words, path=None):
    with pytest.raises(InputError) as err:
        load_band(spec)
    msg = str(err.value)
    assert str(path or spec["file"]) in msg, msg
    assert "Fix:" in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


# --------------------------------------------------------------------------- makers
#
# Each maker writes one band in its survey's format and returns a Case: the spec,
# the raw science image, the expected native variance per pixel (NaN where masked),
# the expected erg/s/cm^2/AA per native unit, the noise-free source (native units),
# the source's total f_lambda (erg/s/cm^2/AA), and the HDU that holds BUNIT.
# mode: "flux" (noise-free source + sky + a tiny checkerboard) or "mc" (noisy).

class Case:
    def __init__(self, spec, raw, var, factor, src, total_flam, unit_hdu, sky_in):
        self.spec, self.raw, self.var, self.factor = spec, raw, var, factor
        self.src, self.total_flam, self.unit_hdu, self.sky_in = src, total_flam, unit_hdu, sky_in


def _noisy(mode, rng, sky, src, sigma):
    total = np.sum(src)
    if mode == "flux":
        return sky + src + checker(1e-9 * total)
    return sky + src + rng.normal(0.0, 1.0, src.shape) * sigma


def make_spitzer(tmp, mode, rng):
    """IRAC 3.6 um mosaic (0.6" pixels, MJy/sr) with its uncertainty map."""
    filt, scale, fnu = "spitzer_irac_36", 0.6, 2e-3          # 2 mJy source
    factor = 1e6 * pixel_sr(scale) * flam_per_jy(filt)        # MJy/sr -> flam per pixel
    src = gaussian(fnu / (1e6 * pixel_sr(scale)))             # MJy/sr
    unc = 0.004 + 0.02 * np.sqrt(src / src.max())
    raw = _noisy(mode, rng, 0.08, src, unc)
    path = write(tmp / "irac.fits", [image(raw, scale, {"BUNIT": "MJy/sr", "INSTRUME": "IRAC",
                                                         "CHNLNUM": 1}, primary=True)])
    upath = write(tmp / "irac_unc.fits", [image(unc, scale, {"BUNIT": "MJy/sr"}, primary=True)])
    spec = {"filter": filt, "survey": "spitzer", "file": path, "unc_file": upath,
            "psf_fwhm": 1.66}
    return Case(spec, raw, unc**2, factor, src, fnu * flam_per_jy(filt), 0, True)


def make_herschel_spire(tmp, mode, rng):
    """SPIRE 250 um point-source map (6" pixels, Jy/beam) with its ``error`` extension."""
    filt, scale, fnu = "herschel_spire_250", 6.0, 0.5
    beam = SPIRE_BEAM[filt]
    factor = scale**2 / beam * flam_per_jy(filt)              # Jy/beam -> flam per pixel
    src = gaussian(fnu * beam / scale**2, sigma=1.3)           # Jy/beam
    err = np.full(src.shape, 0.006)
    raw = _noisy(mode, rng, 0.03, src, err)
    path = write(tmp / "spire.fits", [
        fits.PrimaryHDU(header=fits.Header({"INSTRUME": "SPIRE", "DETECTOR": "PSW"})),
        image(raw, scale, {"BUNIT": "Jy/beam"}, name="image"), ext(err, "error")])
    spec = {"filter": filt, "survey": "herschel", "file": path, "psf_fwhm": 18.2}
    return Case(spec, raw, err**2, factor, src, fnu * flam_per_jy(filt), 1, True)


def make_herschel_pacs(tmp, mode, rng):
    """PACS 160 um map (3.2" pixels, Jy/pixel) with a ``stDev`` extension."""
    filt, scale, fnu = "herschel_pacs_160", 3.2, 0.8
    factor = flam_per_jy(filt)
    src = gaussian(fnu, sigma=1.6)                             # Jy/pixel
    err = 2e-4 + 0.05 * src
    raw = _noisy(mode, rng, 0.0, src, err)
    path = write(tmp / "pacs.fits", [
        fits.PrimaryHDU(header=fits.Header({"INSTRUME": "PACS", "WAVELNTH": 160.0})),
        image(raw, scale, {"BUNIT": "Jy/pixel"}, name="image"), ext(err, "stDev")])
    spec = {"filter": filt, "survey": "herschel", "file": path, "psf_fwhm": 11.4}
    return Case(spec, raw, err**2, factor, src, fnu * flam_per_jy(filt), 1, True)


def make_herschel_spire_ext(tmp, mode, rng):
    """SPIRE 500 um extended-emission map (14" pixels, MJy/sr), error in ``unc_file``
    (an extension of the same file, through ``noise_hdu``)."""
    filt, scale, fnu = "herschel_spire_500", 14.0, 0.3
    factor = 1e6 * pixel_sr(scale) * flam_per_jy(filt)
    src = gaussian(fnu / (1e6 * pixel_sr(scale)), sigma=1.2)   # MJy/sr
    err = np.full(src.shape, 0.05)
    raw = _noisy(mode, rng, 1.0, src, err)
    path = write(tmp / "spire_ext.fits", [
        fits.PrimaryHDU(header=fits.Header({"DETECTOR": "PLW"})),
        image(raw, scale, {"BUNIT": "MJy/sr"}, name="image"), ext(err, "myerr")])
    spec = {"filter": filt, "survey": "herschel", "file": path, "unc_file": path,
            "noise_hdu": "myerr", "psf_fwhm": 36.0}
    return Case(spec, raw, err**2, factor, src, fnu * flam_per_jy(filt), 1, True)


def _i2d(tmp, name, raw, scale, filt_card, var_p, var_r, err=True, wht=None, inst="NIRCAM"):
    sci = image(raw, scale, {"BUNIT": "MJy/sr", "PIXAR_SR": pixel_sr(scale),
                             "PIXAR_A2": scale**2}, name="SCI")
    hdus = [fits.PrimaryHDU(header=fits.Header({"TELESCOP": "JWST", "INSTRUME": inst,
                                                 "FILTER": filt_card, "PUPIL": "CLEAR"})), sci]
    if err:
        hdus.append(ext(np.sqrt(var_p + var_r), "ERR"))
    if wht is not None:
        hdus.append(ext(wht, "WHT"))
    hdus += [ext(var_p, "VAR_POISSON"), ext(var_r, "VAR_RNOISE")]
    return write(tmp / name, hdus)


def make_jwst(tmp, mode, rng, err=True):
    """NIRCam F200W ``_i2d`` (0.031" pixels, MJy/sr, PIXAR_SR) with ERR, WHT (a strip
    without coverage: NaN in SCI, WHT 0) and VAR_POISSON/VAR_RNOISE."""
    filt, scale, fnu = "jwst_nircam_f200w", 0.031, 5e-5        # 50 uJy
    factor = 1e6 * pixel_sr(scale) * flam_per_jy(filt)
    src = gaussian(fnu / (1e6 * pixel_sr(scale)), sigma=1.5)
    var_r = np.full(src.shape, 0.01**2)
    var_p = 1e-3 * (src + 0.2)
    raw = _noisy(mode, rng, 0.2, src, np.sqrt(var_p + var_r))
    wht = np.ones(src.shape)
    wht[:, :8] = 0.0
    raw[:, :8] = np.nan
    path = _i2d(tmp, "nrc_i2d.fits", raw, scale, "F200W", var_p, var_r, err=err, wht=wht)
    spec = {"filter": filt, "survey": "jwst", "file": path, "psf_fwhm": 0.066}
    var = np.where(wht > 0, var_p + var_r, np.nan)
    return Case(spec, raw, var, factor, src, fnu * flam_per_jy(filt), 1, True)


def make_jwst_var(tmp, mode, rng):
    return make_jwst(tmp, mode, rng, err=False)


def make_jwst_miri(tmp, mode, rng):
    """MIRI F770W ``_i2d`` (0.11" pixels), ERR only through VAR_POISSON + VAR_RNOISE."""
    filt, scale, fnu = "jwst_miri_f770w", 0.11, 3e-4
    factor = 1e6 * pixel_sr(scale) * flam_per_jy(filt)
    src = gaussian(fnu / (1e6 * pixel_sr(scale)), sigma=1.8)
    var_r = np.full(src.shape, 0.05**2)
    var_p = 2e-3 * (src + 20.0)
    raw = _noisy(mode, rng, 20.0, src, np.sqrt(var_p + var_r))
    path = _i2d(tmp, "miri_i2d.fits", raw, scale, "F770W", var_p, var_r, inst="MIRI")
    spec = {"filter": filt, "survey": "jwst", "file": path, "psf_fwhm": 0.27}
    return Case(spec, raw, var_p + var_r, factor, src, fnu * flam_per_jy(filt), 1, True)


#: HSC mask planes as the LSST stack numbers them (the MASK header's MP_* keys)
HSC_BITS = {"BAD": 0, "SAT": 1, "INTRP": 2, "CR": 3, "EDGE": 4, "DETECTED": 5,
            "DETECTED_NEGATIVE": 6, "SUSPECT": 7, "NO_DATA": 8}


def make_hsc(tmp, mode, rng, zp_card="FLUXMAG0"):
    """HSC coadd calexp (0.168" pixels, counts at AB 27): IMAGE, MASK with MP_* keys
    (SAT and NO_DATA pixels masked, DETECTED not), VARIANCE."""
    filt, scale, mag = "hsc_i", 0.168, 19.0
    zp = {"FLUXMAG0": 27.0, "MAGZERO": 26.5, None: 27.0}[zp_card]
    factor = 3631e-23 * 10 ** (-0.4 * zp) * C_AA / get_filter(filt).pivot_wavelength ** 2
    fnu = 3631.0 * 10 ** (-0.4 * mag)
    src = gaussian(fnu / 3631.0 * 10 ** (0.4 * zp), sigma=2.5)   # counts
    var = 0.02**2 + src / 300.0
    raw = _noisy(mode, rng, 0.0, src, np.sqrt(var))
    mask = np.zeros(src.shape, dtype=np.int32)
    mask[NY // 2 - 3: NY // 2 + 4, NX // 2 - 3: NX // 2 + 4] |= 1 << HSC_BITS["DETECTED"]
    mask[2:5, 2:5] |= 1 << HSC_BITS["SAT"]
    mask[:, -6:] |= 1 << HSC_BITS["NO_DATA"]
    raw[:, -6:] = 0.0
    var = var.copy()
    var[:, -6:] = np.inf
    cards = {"FLUXMAG0": 10 ** (0.4 * 27.0)} if zp_card == "FLUXMAG0" else \
        {"MAGZERO": 26.5} if zp_card == "MAGZERO" else {}
    mhdr = {f"HIERARCH MP_{k}": v for k, v in HSC_BITS.items()}
    path = write(tmp / "hsc_calexp.fits", [
        fits.PrimaryHDU(header=fits.Header(cards)),
        image(raw.astype(np.float32), scale, {"FILTER": "HSC-I2"}, name="IMAGE"),
        image(mask, scale, mhdr, name="MASK"),
        image(var.astype(np.float32), scale, name="VARIANCE")])
    spec = {"filter": filt, "survey": "hsc", "file": path, "psf_fwhm": 0.6}
    masked = (mask & ((1 << HSC_BITS["SAT"]) | (1 << HSC_BITS["NO_DATA"]))) != 0
    var_exp = np.where(masked, np.nan, var.astype(np.float32).astype(np.float64))
    return Case(spec, raw.astype(np.float32).astype(np.float64), var_exp, factor, src,
                fnu * flam_per_jy(filt), 1, False)


def make_legacy(tmp, mode, rng, in_file=False, gain=None):
    """Legacy Surveys DR10 cutout (0.262" pixels, nanomaggies) with its invvar map,
    a separate ``weight_file`` or (``in_file``) an INVVAR extension; zero invvar masked."""
    filt, scale, mag = "decam_r", 0.262, 18.5
    factor = 3.631e-6 * flam_per_jy(filt)                      # nmgy -> flam per pixel
    fnu = 3631.0 * 10 ** (-0.4 * mag)
    src = gaussian(fnu / 3.631e-6, sigma=2.5)                   # nanomaggies
    ivar = np.full(src.shape, 1.0 / 0.01**2)
    ivar[:4, :] = 0.0
    sig = np.sqrt(1.0 / np.where(ivar > 0, ivar, 1.0) + (src / gain if gain else 0.0))
    raw = _noisy(mode, rng, 0.0, src, sig)
    cards = {"BUNIT": "nanomaggy", "BAND": "r", "SURVEY": "LegacySurveys"}
    hdus = [image(raw, scale, cards, primary=True)]
    spec = {"filter": filt, "survey": "legacy", "psf_fwhm": 1.3}
    if in_file:
        hdus.append(image(ivar, scale, name="INVVAR"))
    else:
        spec["weight_file"] = write(tmp / "legacy_invvar.fits", [image(ivar, scale, primary=True)])
    spec["file"] = write(tmp / "legacy.fits", hdus)
    if gain:
        spec["gain"] = gain
    var = np.where(ivar > 0, 1.0 / np.where(ivar > 0, ivar, 1.0), np.nan)
    if gain:
        var = var + np.maximum(raw, 0.0) / gain
    return Case(spec, raw, var, factor, src, fnu * flam_per_jy(filt), 0, False)


def make_legacy_ext(tmp, mode, rng):
    return make_legacy(tmp, mode, rng, in_file=True, gain=3500.0)


MAKERS = {"spitzer": make_spitzer, "herschel_spire": make_herschel_spire,
          "herschel_pacs": make_herschel_pacs, "herschel_spire_ext": make_herschel_spire_ext,
          "jwst": make_jwst, "jwst_var": make_jwst_var, "jwst_miri": make_jwst_miri,
          "hsc": make_hsc, "legacy": make_legacy, "legacy_ext": make_legacy_ext}
#: one maker per new survey (the refusal tests)
ONE = {"spitzer": "spitzer", "herschel": "herschel_spire", "jwst": "jwst", "hsc": "hsc",
       "legacy": "legacy"}


# --------------------------------------------------------------------------- recipes

@pytest.mark.parametrize("name", sorted(MAKERS))
def test_flux_in_physical_units(name, tmp_path):
    """The source's pixels sum to its known flux density, as f_lambda (< 0.1%)."""
    case = MAKERS[name](tmp_path, "flux", np.random.default_rng(1))
    band = load_band(case.spec)
    assert band.meta["flam_per_native"] == pytest.approx(case.factor, rel=1e-9)
    assert np.nansum(band.data) == pytest.approx(case.total_flam, rel=1e-3)
    core = case.src > 0.05 * case.src.max()
    np.testing.assert_allclose(band.data[core], case.src[core] * case.factor, rtol=1e-3)
    assert band.meta["bkg_subtracted"] == ("Background2D map" if case.sky_in else "none")


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_variance_equals_truth(name, tmp_path):
    """Every unmasked pixel's variance is the survey's noise map, converted; masked pixels
    (no coverage, zero weight, SAT/NO_DATA) are NaN."""
    case = MAKERS[name](tmp_path, "mc", np.random.default_rng(2))
    band = load_band(case.spec)
    want = case.var * case.factor**2
    ok = np.isfinite(want)
    np.testing.assert_array_equal(band.mask, ~ok | ~np.isfinite(case.raw))
    np.testing.assert_allclose(band.var[~band.mask], want[~band.mask], rtol=1e-6)
    assert np.all(np.isnan(band.var[band.mask])) and np.all(np.isnan(band.data[band.mask]))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_noise_monte_carlo(name, tmp_path):
    """Noise drawn from the noise map: (data - truth) / sqrt(var) ~ N(0, 1)."""
    case = MAKERS[name](tmp_path, "mc", np.random.default_rng(3))
    band = load_band(case.spec)
    ok = ~band.mask
    z = (band.data[ok] - case.src[ok] * case.factor) / np.sqrt(band.var[ok])
    assert 0.95 < np.std(z) < 1.05
    assert abs(np.mean(z)) < 0.1


def test_spitzer_coverage_map(tmp_path):
    """MIPS 24 um mosaic (2.45" pixels) with a coverage map as weight_file: variance =
    one frame's sky variance / coverage, zero coverage masked."""
    rng = np.random.default_rng(4)
    filt, scale, s1 = "spitzer_mips_24", 2.45, 0.05
    cov = np.where(np.arange(NX)[None, :] < NX // 2, 8.0, 18.0) * np.ones((NY, 1))
    cov[:, :5] = 0.0
    raw = 20.0 + gaussian(40.0, sigma=1.5) + rng.normal(0, 1, (NY, NX)) * s1 / \
        np.sqrt(np.where(cov > 0, cov, 1.0))
    cards = {"BUNIT": "MJy/sr", "INSTRUME": "MIPS", "CHNLNUM": 1}
    path = write(tmp_path / "mips.fits", [image(raw, scale, cards, primary=True)])
    cpath = write(tmp_path / "mips_cov.fits", [image(cov, scale, primary=True)])
    band = load_band({"filter": filt, "survey": "spitzer", "file": path,
                      "weight_file": cpath, "psf_fwhm": 6.0})
    assert band.mask[:, :5].all() and not band.mask[:, 5:].any()
    factor = 1e6 * pixel_sr(scale) * flam_per_jy(filt)
    s1_sq = band.var[:, 5:] * cov[:, 5:] / factor**2
    np.testing.assert_allclose(s1_sq, s1_sq[0, 0], rtol=1e-9)
    assert s1_sq[0, 0] == pytest.approx(s1**2, rel=0.2)
    assert "coverage" in band.meta["var_recipe"]
    assert band.meta["calib_err"] == 0.04


def test_spitzer_unc_and_coverage_together_refused(tmp_path):
    case = make_spitzer(tmp_path, "mc", np.random.default_rng(5))
    _raises({**case.spec, "weight_file": case.spec["unc_file"]}, "both", "unc_file",
            "weight_file")


def test_herschel_no_error_map_sky_noise(tmp_path):
    """A map without error extension: rms_bkg**2, said so in meta."""
    case = make_herschel_spire(tmp_path, "mc", np.random.default_rng(6))
    with fits.open(case.spec["file"]) as h:
        hdus = [x.copy() for x in h][:2]
    band = load_band({**case.spec, "file": write(tmp_path / "noerr.fits", hdus)})
    assert "sky noise only" in band.meta["var_recipe"]
    rms = np.sqrt(np.nanmedian(band.var)) / band.meta["flam_per_native"]
    assert rms == pytest.approx(0.006, rel=0.15)


def test_herschel_pacs_in_jy_per_beam_refused(tmp_path):
    """No PACS beam area: a PACS map in Jy/beam is refused, naming the filter."""
    case = make_herschel_pacs(tmp_path, "mc", np.random.default_rng(7))
    bad = _rewrite(case.spec, tmp_path, "pacs_beam.fits", {"BUNIT": "Jy/beam"}, hdu=1)
    _raises(bad, "beam area", "herschel_pacs_160")


def test_jwst_stale_pixar_refused(tmp_path):
    """PIXAR_SR that disagrees with the WCS pixel: resampled after the pipeline."""
    case = make_jwst(tmp_path, "mc", np.random.default_rng(8))
    bad = _rewrite(case.spec, tmp_path, "stale.fits", {"PIXAR_SR": pixel_sr(0.031) * 4}, hdu=1)
    _raises(bad, "PIXAR_SR", "WCS", "survey: generic")


def test_jwst_needs_err_or_both_var(tmp_path):
    case = make_jwst(tmp_path, "mc", np.random.default_rng(9))
    with fits.open(case.spec["file"]) as h:
        hdus = [x.copy() for x in h if x.name not in ("ERR", "VAR_POISSON")]
    _raises({**case.spec, "file": write(tmp_path / "noerr.fits", hdus)}, "ERR", "VAR_POISSON")
    with fits.open(case.spec["file"]) as h:
        hdus = [x.copy() for x in h if x.name not in ("ERR", "VAR_RNOISE")]
    _raises({**case.spec, "file": write(tmp_path / "nornoise.fits", hdus)}, "VAR_RNOISE")


@pytest.mark.parametrize("zp_card", ["FLUXMAG0", "MAGZERO", None])
def test_hsc_zero_point_source(zp_card, tmp_path):
    """FLUXMAG0 (AB 27), else MAGZERO, else the HSC-SSP default 27."""
    case = make_hsc(tmp_path, "flux", np.random.default_rng(10), zp_card=zp_card)
    band = load_band(case.spec)
    assert band.meta["zeropoint"] == pytest.approx(26.5 if zp_card == "MAGZERO" else 27.0)
    assert np.nansum(band.data) == pytest.approx(case.total_flam, rel=1e-3)
    assert band.meta["mask_planes"] == ["BAD", "SAT", "NO_DATA", "EDGE", "CR", "INTRP"]


def test_hsc_mask_without_plane_keys_refused(tmp_path):
    case = make_hsc(tmp_path, "mc", np.random.default_rng(11))
    bad = _rewrite(case.spec, tmp_path, "nomp.fits", drop=[f"MP_{k}" for k in HSC_BITS])
    _raises(bad, "MP_", "MASK")


def test_legacy_gain_adds_source_noise(tmp_path):
    case = make_legacy_ext(tmp_path, "mc", np.random.default_rng(12))
    band = load_band(case.spec)
    assert "gain" in band.meta["var_recipe"] and band.meta["gain"] == 3500.0
    plain = load_band({k: v for k, v in case.spec.items() if k != "gain"})
    assert "sky noise only" in plain.meta["var_recipe"]
    bright = case.src > 0.5 * case.src.max()
    assert np.all(band.var[bright] > plain.var[bright])


@pytest.mark.parametrize("survey, filt, value", [
    ("spitzer", "spitzer_irac_80", 0.03), ("spitzer", "spitzer_mips_160", 0.12),
    ("herschel", "herschel_pacs_70", 0.05), ("herschel", "herschel_spire_350", 0.07),
    ("jwst", "jwst_nircam_f444w", 0.02), ("jwst", "jwst_miri_f2100w", 0.03),
    ("hsc", "hsc_y", 0.02), ("legacy", "mzls_z", 0.02),
])
def test_default_calib_err(survey, filt, value):
    assert default_calib_err(survey, filt) == value


def test_bunit_kinds_of_flux_densities():
    assert bunit_kind("MJy/sr") == "MJy/sr" and bunit_kind("Jy / sr") == "MJy/sr"
    assert bunit_kind("Jy/beam") == "Jy/beam"
    assert bunit_kind("Jy/pixel") == "Jy/pix" and bunit_kind("Jy") == "Jy/pix"
    assert bunit_kind("nJy") == "Jy/pix"
    assert bunit_kind("maggy") == "other" and bunit_kind("erg/s/cm2/Angstrom") == "other"


# --------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("survey", sorted(ONE))
def test_wrong_pixel_scale_refused(survey, tmp_path):
    """The survey's file on pixels 5x too large: refused, naming the scale and the fix."""
    case = MAKERS[ONE[survey]](tmp_path, "mc", np.random.default_rng(13))
    bad = _rewrite(case.spec, tmp_path, "resampled.fits", scale_by=5.0)
    _raises(bad, "pixel scale", f"survey {survey}", "survey: generic", "noise map")


WRONG_UNIT = {"spitzer": "Jy/pixel", "herschel": "DN", "jwst": "Jy", "hsc": "nJy",
              "legacy": "MJy/sr"}


@pytest.mark.parametrize("survey", sorted(ONE))
def test_wrong_unit_refused(survey, tmp_path):
    case = MAKERS[ONE[survey]](tmp_path, "mc", np.random.default_rng(14))
    bunit = WRONG_UNIT[survey]
    bad = _rewrite(case.spec, tmp_path, "unit.fits", {"BUNIT": bunit}, hdu=case.unit_hdu)
    _raises(bad, f"BUNIT {bunit!r}", f"survey {survey}", "survey: generic")


@pytest.mark.parametrize("survey", ["spitzer", "herschel", "jwst"])
def test_missing_or_unparsable_bunit_refused(survey, tmp_path):
    """Their conversion comes from BUNIT: absent or unreadable, it is refused."""
    case = MAKERS[ONE[survey]](tmp_path, "mc", np.random.default_rng(15))
    _raises(_rewrite(case.spec, tmp_path, "nounit.fits", drop=["BUNIT"]), "BUNIT", "lacks")
    _raises(_rewrite(case.spec, tmp_path, "junk.fits", {"BUNIT": "xyz junk"},
                     hdu=case.unit_hdu), "BUNIT", "xyz junk")


@pytest.mark.parametrize("survey, cards, hdu, word", [
    ("spitzer", {"CHNLNUM": 2}, 0, "spitzer_irac_45"),
    ("spitzer", {"INSTRUME": "MIPS", "CHNLNUM": 9}, 0, "mips"),
    ("herschel", {"DETECTOR": "PMW"}, 0, "'350'"),
    ("jwst", {"FILTER": "F444W"}, 0, "'f444w'"),
    ("hsc", {"FILTER": "HSC-G"}, 1, "'g'"),
    ("legacy", {"BAND": "z"}, 0, "'z'"),
])
def test_other_band_refused(survey, cards, hdu, word, tmp_path):
    case = MAKERS[ONE[survey]](tmp_path, "mc", np.random.default_rng(16))
    _raises(_rewrite(case.spec, tmp_path, "band.fits", cards, hdu=hdu), "names band", word)


@pytest.mark.parametrize("survey, filt", [
    ("spitzer", "wise_w1"), ("herschel", "spitzer_mips_70"), ("jwst", "hst_acs_f814w"),
    ("hsc", "sdss_i"), ("legacy", "decam_y"),
])
def test_filter_the_survey_does_not_observe_refused(survey, filt, tmp_path):
    case = MAKERS[ONE[survey]](tmp_path, "mc", np.random.default_rng(17))
    _raises({**case.spec, "filter": filt}, f"does not observe filter {filt}")


# --------------------------------------------------------------------------- the mock's writers
#
# The mock (sedmap.mock) writes each survey's files with its MockSurvey object; here
# each new survey's writer writes a source of known total f_lambda (a Gaussian, on its
# survey's sky where the images keep it) and load_band reads it back. The truth is the
# survey documents' conversion (computed above from first principles), not sedmap's.

#: one band per new survey and instrument, as a mock configures it (native pixels, units)
MOCK_BANDS = {
    "irac": {"filter": "spitzer_irac_36", "survey": "spitzer", "pixscale": 0.6,
             "psf_fwhm": 1.66, "sky": 0.1, "skysig": 0.01, "poisson": 1e-3},
    "mips": {"filter": "spitzer_mips_24", "survey": "spitzer", "pixscale": 1.5,
             "psf_fwhm": 6.0, "sky": 20.0, "skysig": 0.03},
    "pacs": {"filter": "herschel_pacs_100", "survey": "herschel", "pixscale": 1.6,
             "psf_fwhm": 6.9, "sky": 1e-3, "skysig": 2e-4, "poisson": 1e-3},
    "spire": {"filter": "herschel_spire_350", "survey": "herschel", "pixscale": 10.0,
              "psf_fwhm": 25.0, "sky": 0.02, "skysig": 0.007},
    "nircam": {"filter": "jwst_nircam_f200w", "survey": "jwst", "pixscale": 0.031,
               "psf_fwhm": 0.066, "sky": 0.2, "skysig": 0.01, "poisson": 1e-3},
    "miri": {"filter": "jwst_miri_f770w", "survey": "jwst", "pixscale": 0.11,
             "psf_fwhm": 0.27, "sky": 20.0, "skysig": 0.05, "poisson": 2e-3},
    "hsc": {"filter": "hsc_i", "survey": "hsc", "pixscale": 0.168, "psf_fwhm": 0.6,
            "skysig": 0.02, "gain": 300.0},
    "legacy": {"filter": "decam_r", "survey": "legacy", "pixscale": 0.262, "psf_fwhm": 1.3,
               "skysig": 0.01, "gain": 3500.0},
    "panstarrs": {"filter": "panstarrs_i", "survey": "panstarrs", "pixscale": 0.25,
                  "psf_fwhm": 1.1, "exptime": 800.0, "skysig": 30.0, "gain": 1.1},
}


def native_factor(band):
    """erg/s/cm^2/AA per native unit, from the survey documents (not from sedmap)."""
    filt, scale = band["filter"], band["pixscale"]
    if band["survey"] in ("spitzer", "jwst"):                     # MJy/sr
        return 1e6 * pixel_sr(scale) * flam_per_jy(filt)
    if filt in SPIRE_BEAM:                                        # Jy/beam
        return scale**2 / SPIRE_BEAM[filt] * flam_per_jy(filt)
    if band["survey"] == "herschel":                              # PACS Jy/pixel
        return flam_per_jy(filt)
    zp = {"hsc": 27.0, "legacy": 22.5, "panstarrs": 25.0}[band["survey"]]  # AB zero points
    per_s = band["exptime"] if band["survey"] == "panstarrs" else 1.0  # PS1: counts / s
    return 3631e-23 * 10 ** (-0.4 * zp) * C_AA / get_filter(filt).pivot_wavelength ** 2 / per_s


def mock_written(band, tmp, total_flam, noise=None):
    """The band's file(s) written by the mock's writer, holding a Gaussian source of
    ``total_flam`` (erg/s/cm^2/AA) on the survey's sky; returns (spec, noiseless source
    in native units, variance the mock drew its noise from)."""
    survey = MOCK_SURVEYS[band["survey"]]
    wcs = _tan_wcs(150.0, 2.0, band["pixscale"], (NY, NX), rotation_deg=12.0)
    src = gaussian(total_flam / native_factor(band))
    var = survey.variance(band, src)
    image = src + (checker(1e-9 * src.sum()) if noise is None else
                   noise.standard_normal(src.shape) * np.sqrt(var))
    if survey.sky_in_image:
        image = image + band["sky"]
    write_band(band, image, var, wcs, tmp, "test")
    return _band_spec(band, get_filter(band["filter"]).name, tmp, False), src, var


@pytest.mark.parametrize("key", sorted(MOCK_BANDS))
def test_mock_writer_round_trip(key, tmp_path):
    """What the mock writes, the reader reads: the source's total flux in physical
    units within 1% of the truth (to 1e-3 here), every pixel's variance the one the
    mock drew its noise from, and the f_lambda per native unit of the documents."""
    band = MOCK_BANDS[key]
    total = 3e-15 if band["survey"] in ("hsc", "legacy", "jwst") else 3e-16
    spec, src, var = mock_written(band, tmp_path, total)
    read = load_band(spec)
    factor = native_factor(band)
    assert read.meta["flam_per_native"] == pytest.approx(factor, rel=1e-6)
    assert np.nansum(read.data) == pytest.approx(total, rel=1e-3)
    assert read.meta["calib_err"] == 0.0 and not read.mask.any()
    np.testing.assert_allclose(read.var, var * factor**2, rtol=1e-4)
    assert MOCK_SURVEYS[band["survey"]].flam_per_unit(band) == pytest.approx(factor, rel=1e-9)
    assert read.meta["bkg_subtracted"] == ("Background2D map"
                                           if MOCK_SURVEYS[band["survey"]].sky_in_image
                                           else "none")


@pytest.mark.parametrize("key", sorted(MOCK_BANDS))
def test_mock_writer_noise(key, tmp_path):
    """Noise drawn as the mock draws it: (data - truth) / sqrt(var) ~ N(0, 1) after the
    reader's background subtraction and variance recipe."""
    band = MOCK_BANDS[key]
    spec, src, var = mock_written(band, tmp_path, 3e-16, noise=np.random.default_rng(5))
    read = load_band(spec)
    z = (read.data - src * native_factor(band)) / np.sqrt(read.var)
    assert 0.95 < np.std(z) < 1.05 and abs(np.mean(z)) < 0.1


def test_mock_writes_every_survey_the_reader_reads():
    """The mock writes every survey sedmap reads, and nothing else."""
    assert set(MOCK_SURVEYS) == set(SURVEYS)


# --------------------------------------------------------------------------- survey lists

def _docs_survey_tables(text):
    """The survey names of each table in docs/surveys.md whose first column is
    ``survey``, and the names of the ``### `name` `` headings."""
    tables, current = [], None
    for line in text.splitlines():
        if re.match(r"\|\s*survey\s*\|", line):
            current = []
            tables.append(current)
        elif line.startswith("|") and current is not None:
            m = re.match(r"\|\s*`([\w-]+)`\s*\|", line)
            if m:
                current.append(m.group(1))
        elif not line.startswith("|"):
            current = None
    headings = re.findall(r"^###\s+`([\w-]+)`", text, flags=re.MULTILINE)
    return tables, headings


def test_schema_docs_and_surveys_name_the_same_surveys():
    """config/schema.yaml's band survey enum, every survey table of docs/surveys.md and
    sedmap.images.surveys.SURVEYS list the same surveys."""
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text(encoding="utf-8"))
    bands = schema["properties"]["images"]["properties"]["bands"]["items"]
    enum = bands["properties"]["survey"]["enum"]
    assert enum == list(SURVEYS)
    tables, headings = _docs_survey_tables(
        (ROOT / "docs" / "surveys.md").read_text(encoding="utf-8"))
    assert len(tables) >= 3
    for names in tables:
        assert len(names) == len(set(names))
        assert set(names) == set(SURVEYS)
    assert headings and set(headings) <= set(SURVEYS)
    assert {"spitzer", "herschel", "jwst", "hsc", "legacy"} <= set(headings)
