"""Extreme and non-finite pixels are found and repaired before PSF matching
(sedmap.images.outliers, called by sedmap.images.pipeline.match), and bright
galaxy cores and stars are left alone."""

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from sedmap.images import outliers as O
from sedmap.images import pipeline as P
from sedmap.images.grid import target_grid
from sedmap.images.surveys import load_band
from sedmap.io.bandimage import BandImage, read_band_image, write_band_image

NIR = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "ngc309_nir"
RA, DEC = 150.0, 2.0
FWHM = 2.0  # native PSF, arcsec (2 pixels)


def _scene(seed=3):
    """A 1"/px band: exponential disc + bulge, a bright star (peak ~20x the nucleus)
    and a faint one, through a Gaussian PSF of FWHM 2 px; data, var, WCS."""
    w, shape = target_grid(RA, DEC, 1.0, 101.0)
    yy, xx = np.indices(shape, dtype=float)
    c = (shape[0] - 1) / 2.0
    r = np.hypot((xx - c) * 0.8, yy - c)
    sig = FWHM / 2.3548
    psf = np.exp(-0.5 * ((xx - c) ** 2 + (yy - c) ** 2) / sig**2)
    psf = np.fft.ifftshift(psf / psf.sum())
    model = 50.0 * np.exp(-r / 8.0) + 400.0 * np.exp(-((r / 1.5) ** 2))
    model = np.real(np.fft.ifft2(np.fft.fft2(model) * np.fft.fft2(psf)))
    for (x0, y0), flux in (((c + 25.3, c - 18.6), 3e4), ((c - 30.0, c + 20.0), 300.0)):
        model += flux * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / sig**2) / (
            2 * np.pi * sig**2)
    var = 4.0 + 0.05 * model  # sky + Poisson, (1e-17 erg/s/cm2/AA)^2 units
    rng = np.random.default_rng(seed)
    data = model + rng.normal(0.0, np.sqrt(var))
    return data * 1e-17, var * 1e-34, w


def _match(tmp_path, name, data, var, mask, w):
    band = BandImage("sdss_r", data, var, w, None, mask=mask, survey="sdss", path=f"{name}.fits")
    cal = write_band_image(band, tmp_path / f"{name}_cal.fits", step="calibrated")
    psf = {"psf_fwhm": FWHM}
    grid = P.common_grid([cal], [psf], tmp_path / f"{name}_grid.json", pixel_scale=1.5,
                         target_psf_fwhm=6.0)
    out = P.match(cal, psf, grid, tmp_path / f"{name}_matched.fits", ra=RA, dec=DEC,
                  stamp_arcsec=60.0)
    return read_band_image(out), fits.getheader(out, 0)


def test_extreme_and_nonfinite_pixels_repaired_before_matching(tmp_path, caplog, monkeypatch):
    """One 1e30 pixel (its variance 1e30 too), one -1e30, a 2x2 block of 1e25 and an
    unmasked NaN: all 7 are found and filled, NOUTLIER says 7, and the matched band
    equals the clean run's within a small fraction of its errors (the same mask)."""
    data, var, w = _scene()
    mask = np.zeros(data.shape, bool)
    clean, head = _match(tmp_path, "clean", data, var, mask, w)
    assert head["NOUTLIER"] == 0  # the nucleus and the bright star are not outliers
    bad_d, bad_v = data.copy(), var.copy()
    bad_d[30, 70], bad_v[30, 70] = 1e30, 1e30  # on the disc, near the bright star
    bad_d[55, 45] = -1e30                       # 5 px from the nucleus
    bad_d[70:72, 30:32] = 1e25
    bad_d[40, 60] = np.nan
    with caplog.at_level(logging.WARNING, logger="sedmap.images.outliers"):
        out, head = _match(tmp_path, "bad", bad_d, bad_v, mask, w)
    assert head["NOUTLIER"] == 7 and out.meta["n_outlier"] == 7
    assert "sdss_r: 7 extreme or non-finite pixel(s)" in caplog.text
    np.testing.assert_array_equal(out.mask, clean.mask)
    good = ~clean.mask
    assert good.mean() > 0.5
    dev = np.abs(out.data - clean.data)[good] / np.sqrt(clean.var[good])
    assert dev.max() < 0.5, dev.max()  # the fills differ from the lost values by ~1 native sigma
    np.testing.assert_allclose(out.var[good], clean.var[good], rtol=0.05)
    # without the repair the band is ruined (what the check guards against): every
    # pixel the 1e30 does not mask is off by 1e29 sigma in the median
    monkeypatch.setattr(P, "repair_outliers", lambda band: 0)
    ruined, _ = _match(tmp_path, "unrepaired", bad_d, bad_v, mask, w)
    left = good & ~ruined.mask
    dev = np.abs(ruined.data - clean.data)[left] / np.sqrt(clean.var[left])
    assert np.median(dev) > 1e6 and dev.min() > 1.0


def test_find_outliers_tests_one_by_one():
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 1.0, (60, 60))
    var = np.ones_like(data)
    single = data.copy()
    single[30, 30] = 500.0  # a single-pixel source of 500 sigma: sharp, significant, extreme
    assert np.argwhere(O.find_outliers(single, var)[0]).tolist() == [[30, 30]]
    # the same peak shared with its neighbours (a PSF of FWHM 1 px, sampled at the pixel
    # centres: 6% of the peak in each edge neighbour): not sharper than a PSF
    yy, xx = np.indices(data.shape)
    star = np.exp(-0.5 * ((xx - 30) ** 2 + (yy - 30) ** 2) / 0.425**2)
    shared = data.copy()
    shared[27:34, 27:34] += 500.0 * star[27:34, 27:34]
    assert not O.find_outliers(shared, var)[0].any()
    # a photon-counting sky with one bright pixel but a brighter galaxy: not extreme
    faint = data.copy()
    faint[30, 30] = 30.0
    faint[10:13, 10:13] = 400.0
    assert not O.find_outliers(faint, var)[0].any()
    # a masked pixel is the mask's business; the fill is the box median
    masked = np.zeros(data.shape, bool)
    masked[30, 30] = True
    assert not O.find_outliers(data, var, masked)[0].any()
    hot = data.copy()
    hot[5, 5] = np.inf
    bad, fd, fv = O.find_outliers(hot, var)
    assert np.argwhere(bad).tolist() == [[5, 5]]
    assert abs(fd[0]) < 1.0 and fv[0] == 1.0


needs_nir = pytest.mark.skipif(not NIR.is_dir(), reason=f"{NIR} is absent")


def _nir(band):
    if band.startswith("w"):
        stem = f"0138m107_ac51-{band}-{{}}-3_ra14.177751925_dec-9.913864294_asec1000.000.fits"
        spec = {"filter": f"wise_{band}", "survey": "wise", "psf_fwhm": 6.1,
                "file": str(NIR / stem.format("int")), "unc_file": str(NIR / stem.format("unc"))}
    else:
        spec = {"filter": f"2mass_{band}", "survey": "2mass", "psf_fwhm": 2.9,
                "file": str(NIR / f"a{band.upper()}_asky_001022s0620186.fits")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_band(spec)


@needs_nir
@pytest.mark.parametrize("name", ["j", "k", "w1", "w2"])
def test_real_nucleus_and_stars_are_not_outliers(name):
    """NGC 309 in 2MASS and WISE: nothing is flagged, though the brightest star of the
    2MASS tiles is ~100x the image's 99.9th percentile; injected bad values are."""
    band = _nir(name)
    valid = ~band.mask
    bad, _, _ = O.find_outliers(band.data, band.var, band.mask)
    assert not bad.any()
    d = np.where(valid, band.data, np.nan)
    peak = np.unravel_index(np.nanargmax(d), d.shape)
    x, y = (int(round(float(v))) for v in band.wcs.world_to_pixel_values(14.17775, -9.91386))
    ny, nx = np.unravel_index(np.nanargmax(d[y - 5:y + 6, x - 5:x + 6]), (11, 11))
    nucleus = (y - 5 + ny, x - 5 + nx)
    if name in ("j", "k"):  # the brightest pixel is a star, far from the nucleus
        assert np.hypot(peak[0] - nucleus[0], peak[1] - nucleus[1]) > 20
        assert d[peak] > 50 * np.nanpercentile(np.abs(d), 99.9)
    assert d[nucleus] > 5 * np.nanpercentile(np.abs(d), 99.9) or name.startswith("w")
    hot = band.data.copy()
    sky = (int(valid.shape[0] * 0.2), int(valid.shape[1] * 0.3))
    inject = [sky, (nucleus[0] + 3, nucleus[1]), (peak[0], peak[1] + 4)]
    for p, value in zip(inject, (1e30, 1e25, -1e30)):
        hot[p] = value
    found = O.find_outliers(hot, band.var, band.mask)[0]
    assert sorted(map(tuple, np.argwhere(found).tolist())) == sorted(inject)
