"""The imaging stage end to end on the mock galaxy (known truth), and its bad inputs."""

import numpy as np
import pytest
import yaml
from astropy.io import fits

from sedmap.config import load_config
from sedmap.errors import InputError
from sedmap.images import pipeline as P
from sedmap.io import read_flux_cube
from sedmap.mock import make_mock

SEEDS = (1, 2, 3, 4)


def run_images(tmp, seed, cfg):
    settings = {**cfg["mock"]["settings"], "seed": seed}  # the demo mock, another seed
    man = make_mock(settings, tmp / "mock", models_config=cfg["models"], progress=False)
    with open(man["bands"]) as fh:
        bands = yaml.safe_load(fh)["bands"]
    path = P.run_all(bands, cfg["galaxy"], cfg["images"], tmp)
    return read_flux_cube(path), fits.getdata(man["truth"], "FLUX_TRUE")


@pytest.fixture(scope="module")
def recovered(tmp_path_factory):
    """The four realisations, two at a time (each runs on one core)."""
    from concurrent.futures import ProcessPoolExecutor

    cfg = load_config("config/galaxies/demo.yaml")
    dirs = [tmp_path_factory.mktemp(f"seed{s}") for s in SEEDS]
    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(run_images, dirs, SEEDS, [cfg] * len(SEEDS)))


@pytest.mark.slow
def test_flux_cube_matches_noiseless_truth_within_noise(recovered):
    """Per band over the galaxy region: (measured - truth)/err has |mean| < 0.1 (averaged
    over four noise realisations: PSF-matched noise is correlated over ~70 pixels and the
    subtracted sky level is one offset shared by all pixels, so one
    realisation's mean scatters by ~0.1 by itself) and std in [0.9, 1.15]."""
    names = list(recovered[0][0].filters.name)
    means = np.zeros((len(SEEDS), len(names)))
    for s, (cube, truth) in enumerate(recovered):
        reg = cube.region.astype(bool)
        assert reg.sum() > 1000
        for b, name in enumerate(names):
            d = (cube.flux[b] - truth[b])[reg] / cube.flux_err[b][reg]
            means[s, b] = d.mean()
            assert 0.9 <= d.std() <= 1.15, (SEEDS[s], name, d.std())
    avg = means.mean(axis=0)
    assert np.all(np.abs(avg) < 0.1), dict(zip(names, avg.round(3)))


@pytest.mark.slow
def test_extinction_corrected_and_products_carry_provenance(recovered, tmp_path):
    cube, _ = recovered[0]
    assert cube.ebv == pytest.approx(0.02)
    assert cube.psf_fwhm == pytest.approx(6.41, abs=0.1)  # W2 6.4" on the common grid
    assert cube.wcs.has_celestial
    # the FUV cube is brighter than the raw image by the Milky-Way extinction (0.17 mag)
    assert cube.filters.name[0] == "galex_fuv"


def test_calibrate_bad_inputs_leave_nothing(tmp_path):
    out = tmp_path / "out" / "b_cal.fits"
    with pytest.raises(InputError, match="missing.fits"):
        P.calibrate({"filter": "sdss_r", "survey": "sdss", "file": str(tmp_path / "missing.fits")},
                    out)
    bad = tmp_path / "corrupt.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    with pytest.raises(InputError, match="corrupt.fits"):
        P.calibrate({"filter": "sdss_r", "survey": "sdss", "file": str(bad)}, out)
    with pytest.raises(InputError, match="survey"):
        P.calibrate({"filter": "sdss_r", "survey": "hubble2", "file": str(bad)}, out)
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_target_psf_sharper_than_a_band_is_refused(tmp_path):
    from sedmap.images.grid import target_grid
    from sedmap.io.bandimage import BandImage, write_band_image

    w, shape = target_grid(150.0, 2.0, 1.0, 40.0)
    band = BandImage("sdss_r", np.ones(shape), np.ones(shape), w, 1.0)
    cal = write_band_image(band, tmp_path / "r_cal.fits", step="calibrated")
    with pytest.raises(InputError, match="target_psf_fwhm"):
        P.common_grid([cal], [{"psf_fwhm": 3.0}], tmp_path / "grid.json", target_psf_fwhm=2.0)
    assert not (tmp_path / "grid.json").exists()


def test_psf_file_broader_than_target_is_refused(tmp_path):
    """A psf_file of FWHM 10" with images.target_psf_fwhm 6.47": refused with both FWHMs,
    whether or not psf_fwhm is given; a psf_fwhm that disagrees with the image by
    more than 20% is refused naming both."""
    from sedmap.images.grid import target_grid
    from sedmap.images.psf import gaussian_psf
    from sedmap.io.bandimage import BandImage, write_band_image

    w, shape = target_grid(150.0, 2.0, 1.0, 40.0)
    cal = write_band_image(BandImage("wise_w1", np.ones(shape), np.ones(shape), w, 1.0),
                           tmp_path / "w1_cal.fits", step="calibrated")
    wide = tmp_path / "psf10.fits"
    fits.PrimaryHDU(gaussian_psf(10.0, 0.5, 81)).writeto(wide)
    out = tmp_path / "grid.json"
    psf = {"psf_file": str(wide), "psf_pixscale": 0.5}
    for extra in ({}, {"psf_fwhm": 9.0}):  # measured, or declared within 20%
        with pytest.raises(InputError, match=r"target_psf_fwhm: 6\.47\" is sharper than the "
                           r"PSF of band wise_w1 \(measured FWHM 10\.\d\d\" on .*psf10\.fits"):
            P.common_grid([cal], [{**psf, **extra}], out, target_psf_fwhm=6.47)
    with pytest.raises(InputError, match=r"psf10\.fits: band wise_w1: psf_fwhm = 6\.10\" but "
                       r"the PSF image measures FWHM 10\.\d\d\""):
        P.common_grid([cal], [{**psf, "psf_fwhm": 6.1}], out, target_psf_fwhm=6.47)
    with pytest.raises(InputError, match=r"psf_fwhm = 6\.10\" but"):  # with no target too
        P.common_grid([cal], [{**psf, "psf_fwhm": 6.1}], out)
    assert not out.exists()
    # a PSF image sharper than the target, or a broad one with no target set, passes
    narrow = tmp_path / "psf5.fits"
    fits.PrimaryHDU(gaussian_psf(5.0, 0.5, 81)).writeto(narrow)
    P.common_grid([cal], [{"psf_file": str(narrow), "psf_pixscale": 0.5, "psf_fwhm": 5.2}],
                  out, target_psf_fwhm=6.47)
    P.common_grid([cal], [psf], out)
    import json

    assert json.loads(out.read_text())["target_psf_fwhm"] == pytest.approx(10.1, abs=0.1)
