"""Synthetic band images of an IFS cube (sedmap.ifs.bands, ifs.bands): the band means of
a known spectrum, their variance, the checks made before any job runs, and the round
trip through the imaging stage's reader."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from sedmap.config import cube_bands, load_config
from sedmap.errors import InputError
from sedmap.filters import get_filter
from sedmap.ifs.bands import cube_band_images, cube_band_specs, write_cube_bands
from sedmap.ifs.readers import air_to_vacuum, read_cube
from sedmap.images.surveys import load_band

A, B = 2.0, 1e-3  # f_lambda = A + B (lambda - 5000), units of 1e-20 erg/s/cm2/AA per spaxel


def _muse_cube(path, n=12, bad_plane=None):
    """A MUSE-layout cube (DATA/STAT, AWAV, 1e-20 units, FSF keywords) of a linear
    spectrum, sigma 0.5 per pixel."""
    wave = 4750.0 + 1.25 * np.arange(500)
    vac = air_to_vacuum(wave)
    flux = np.broadcast_to((A + B * (vac - 5000.0))[:, None, None], (500, n, n)).copy()
    if bad_plane is not None:
        flux[bad_plane, :3, :3] = np.nan
    w = WCS(naxis=2)
    w.wcs.ctype, w.wcs.crval = ["RA---TAN", "DEC--TAN"], [53.17, -27.81]
    w.wcs.crpix, w.wcs.cdelt = [(n + 1) / 2] * 2, [-0.2 / 3600, 0.2 / 3600]
    h = w.to_header()
    h.update({"CTYPE3": "AWAV", "CRVAL3": 4750.0, "CDELT3": 1.25, "CRPIX3": 1.0,
              "CUNIT3": "Angstrom", "BUNIT": "10**(-20)*erg/s/cm**2/Angstrom"})
    hs = h.copy()
    hs["BUNIT"] = "10**(-40)*(erg/s/cm**2/Angstrom)**2"
    prim = fits.Header({"FSFMODE": "MOFFAT1", "FSF01FWA": 0.86, "FSF01FWB": -3.5e-5,
                        "FSF01BET": 2.8})
    fits.HDUList([fits.PrimaryHDU(header=prim),
                  fits.ImageHDU(flux.astype(np.float32), h, name="DATA"),
                  fits.ImageHDU(np.full(flux.shape, 0.25, np.float32), hs, name="STAT")]
                 ).writeto(path)
    return path


def _box_mean(lo, hi):
    """Photon-weighted mean of A + B (lambda - 5000) over a box [lo, hi]."""
    m = (hi**3 - lo**3) / 3 / ((hi**2 - lo**2) / 2)  # int lambda^2 / int lambda
    return A + B * (m - 5000.0)


def test_band_means_and_variances_of_a_known_spectrum(tmp_path):
    cube = read_cube(_muse_cube(tmp_path / "c.fits"), "muse")
    out = cube_band_images(cube, ["tophat_4800_5000", "subaru_ia505"])
    np.testing.assert_allclose(out[0]["flux"], _box_mean(4800, 5000), rtol=1e-4)
    # sum w^2 sigma^2 over the ~160 pixels of the box: ~0.25 / 160
    npix = np.count_nonzero((air_to_vacuum(cube.wave) > 4800) & (air_to_vacuum(cube.wave) < 5000))
    assert out[0]["var"][0, 0] == pytest.approx(0.25 / npix, rel=0.03)
    pivot = get_filter("tophat_4800_5000").pivot_wavelength
    assert out[0]["psf_fwhm"] == pytest.approx(0.86 - 3.5e-5 * pivot, abs=2e-3)
    assert out[1]["name"] == "subaru_ia505" and np.all(np.isfinite(out[1]["flux"]))
    with pytest.raises(InputError, match="not inside the cube's wavelengths.*tophat_"):
        cube_band_images(cube, ["sdss_g"])


def test_bad_pixels_renormalise_or_blank_a_spaxel(tmp_path):
    """One bad plane inside the band: weights renormalised, the mean unchanged; a band
    whose weight is mostly lost leaves the spaxel NaN and counted."""
    cube = read_cube(_muse_cube(tmp_path / "c.fits", bad_plane=100), "muse")
    one = cube_band_images(cube, ["tophat_4800_5000"])[0]
    np.testing.assert_allclose(one["flux"], _box_mean(4800, 5000), rtol=1e-4)
    cube.flux[80:200, 0, 0] = np.nan
    lost = cube_band_images(cube, ["tophat_4800_5000"])[0]
    assert np.isnan(lost["flux"][0, 0]) and lost["n_lost"] == 1


def test_written_bands_read_back_through_the_imaging_stage(tmp_path):
    """The file of a band, read as the imaging stage reads it (a generic band whose
    variance is an extension of the same file), gives the band mean in erg/s/cm2/AA."""
    path = _muse_cube(tmp_path / "c.fits")
    specs = cube_band_specs(path, "muse", ["tophat_4800_5000"], tmp_path / "bands")
    (out,) = write_cube_bands(path, "muse", ["tophat_4800_5000"], tmp_path / "bands")
    assert str(out) == specs[0]["file"] and specs[0]["noise_hdu"] == "VAR"
    band = load_band(specs[0])
    np.testing.assert_allclose(band.data[~band.mask], _box_mean(4800, 5000) * 1e-20, rtol=1e-4)
    assert np.nanmedian(band.var) == pytest.approx(0.25 / 160 * 1e-40, rel=0.05)
    assert band.psf_fwhm == pytest.approx(0.69, abs=0.01)
    assert fits.getheader(out)["FILTER"] == "tophat_4800_5000"


def test_configuration_check_names_the_uncovered_filter(tmp_path):
    """ifs.bands is checked against the cube's header when the configuration is read
    (the dry run), before any job."""
    path = _muse_cube(tmp_path / "c.fits")
    cfg = load_config()
    cfg["galaxy"]["name"] = "g"
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["ifs"].update(enabled=True, cube=str(path), survey="muse",
                      bands=["tophat_4800_5000", "tophat_5300_5500"])
    with pytest.raises(InputError, match="tophat_5300_5500.*not inside"):
        cube_bands(cfg)
    cfg["ifs"]["bands"] = ["tophat_4800_5000"]
    (spec,) = cube_bands(cfg)
    assert spec["file"].endswith("results/g/cube_bands/tophat_4800_5000.fits")
    assert spec["survey"] == "generic" and spec["psf_fwhm"] == pytest.approx(0.69, abs=0.01)
