"""Galaxy region, star finding and Galactic extinction."""

import numpy as np
import pytest

from sedmap.errors import InputError
from sedmap.images.extinction import galactic_transmission
from sedmap.images.grid import target_grid
from sedmap.images.region import ellipse_region, find_stars, galaxy_segment_region, star_mask
from sedmap.io.bandimage import BandImage, read_band_image, write_band_image


def gauss2d(shape, x0, y0, sigma, flux, q=1.0):
    y, x = np.mgrid[: shape[0], : shape[1]]
    r2 = (x - x0) ** 2 + ((y - y0) / q) ** 2
    return flux * np.exp(-0.5 * r2 / sigma**2) / (2 * np.pi * sigma**2 * q)


def test_galactic_transmission_matches_f99_and_ir_tail():
    import astropy.units as u
    from dust_extinction.parameter_averages import F99

    lam = np.array([1535.0, 4770.0, 6175.0, 21590.0])
    t = galactic_transmission(lam, 0.05)
    np.testing.assert_allclose(t, F99(Rv=3.1).extinguish(lam * u.AA, Ebv=0.05), rtol=1e-12)
    # A_V = 3.1 E(B-V) at 5500 AA
    assert -2.5 * np.log10(galactic_transmission([5500.0], 0.1)[0]) == pytest.approx(
        0.31, rel=0.03)
    tail = galactic_transmission([33680.0, 46180.0], 0.1)
    assert np.all(np.diff(tail) > 0) and np.all(tail < 1) and tail[0] > 0.97
    with pytest.raises(InputError, match="galaxy.ebv"):
        galactic_transmission(lam, -0.1)


def test_region_covers_the_galaxy_and_not_a_neighbour():
    shape = (61, 61)
    rng = np.random.default_rng(0)
    gal = gauss2d(shape, 30, 30, 6.0, 5e4, q=0.6)
    neighbour = gauss2d(shape, 52, 8, 1.5, 3e3)
    cube = np.stack([gal + neighbour, 0.5 * gal + neighbour])
    var = np.ones_like(cube)
    cube = cube + rng.normal(size=cube.shape)
    region = galaxy_segment_region(cube, var, (30, 30))
    assert region[30, 30] and region[30, 40]
    assert not region[8, 52]
    # region is one connected piece without holes
    from scipy import ndimage
    assert ndimage.label(region)[1] == 1
    assert np.array_equal(ndimage.binary_fill_holes(region), region)


def test_region_centre_outside_stamp():
    with pytest.raises(InputError, match="outside"):
        galaxy_segment_region(np.zeros((1, 10, 10)), np.ones((1, 10, 10)), (40, 3))


def test_ellipse_region_area_and_orientation():
    reg = ellipse_region((101, 101), (50, 50), 20.0, 0.5, 0.0)  # major axis north-south
    assert reg.sum() == pytest.approx(np.pi * 20 * 10, rel=0.03)
    assert reg[50 + 19, 50] and not reg[50, 50 + 19]


def test_stars_are_found_and_clumps_are_not():
    w, shape = target_grid(150.0, 2.0, 0.4, 60.0)
    rng = np.random.default_rng(1)
    fwhm = 1.3
    sig = fwhm / 2.3548 / 0.4
    img = gauss2d(shape, 75, 75, 15.0, 2e5, q=0.7)             # disk
    img += gauss2d(shape, 85, 70, 2.5 * sig, 6e3)              # resolved clump
    img += gauss2d(shape, 40, 110, sig, 8e3)                   # star
    img += gauss2d(shape, 60, 78, sig, 8e3)                    # star on the disk
    var = np.full(shape, 4.0)
    band = BandImage("sdss_r", img + rng.normal(0, 2, shape), var, w, fwhm)
    stars, snr = find_stars(band)
    assert np.all(snr >= 5)
    xs, ys = w.world_to_pixel_values(stars.ra.deg, stars.dec.deg)
    found = {(round(float(x)), round(float(y))) for x, y in zip(xs, ys)}
    assert any(abs(x - 40) <= 1 and abs(y - 110) <= 1 for x, y in found)
    assert any(abs(x - 60) <= 1 and abs(y - 78) <= 1 for x, y in found)
    assert not any(abs(x - 85) <= 2 and abs(y - 70) <= 2 for x, y in found)
    m = star_mask(stars, w, shape, 2.0)
    assert m[110, 40] and not m[70, 85]


def test_band_image_round_trip(tmp_path):
    w, shape = target_grid(10.0, -5.0, 1.5, 30.0)
    rng = np.random.default_rng(2)
    band = BandImage("galex_nuv", rng.random(shape), rng.random(shape) + 0.1, w, 5.3,
                     survey="galex", path="raw/nuv.fits")
    band.mask[3, 4] = True
    path = write_band_image(band, tmp_path / "b.fits", step="matched", confhash="abc")
    back = read_band_image(path)
    np.testing.assert_array_equal(back.data, band.data)
    np.testing.assert_array_equal(back.var, band.var)
    np.testing.assert_array_equal(back.mask, band.mask)
    assert back.psf_fwhm == 5.3 and back.filter == "galex_nuv" and back.survey == "galex"
    assert back.wcs.wcs.crval[0] == pytest.approx(10.0)
    assert path.read_bytes() == write_band_image(band, tmp_path / "c.fits", step="matched",
                                                 confhash="abc").read_bytes()


@pytest.mark.parametrize("unit", [1e-20, 1e20])
def test_region_and_stars_do_not_depend_on_the_flux_unit(unit):
    """The same images in three flux units (x1e-20, as erg/s/cm2/AA at a faint
    galaxy; x1; x1e20) give the same region and the same stars: detection works in
    S/N. Before, SEP found nothing once the errors fell below ~1e-20."""
    shape = (61, 61)
    rng = np.random.default_rng(0)
    gal = gauss2d(shape, 30, 30, 6.0, 5e4, q=0.6)
    cube = np.stack([gal, 0.5 * gal]) + rng.normal(size=(2, *shape))
    var = np.ones_like(cube)
    ref = galaxy_segment_region(cube, var, (30, 30))
    assert ref.sum() > 200
    np.testing.assert_array_equal(galaxy_segment_region(cube * unit, var * unit**2, (30, 30)),
                                  ref)
    w, shp = target_grid(150.0, 2.0, 0.4, 60.0)
    sig = 1.3 / 2.3548 / 0.4
    img = gauss2d(shp, 75, 75, 15.0, 2e5, q=0.7) + gauss2d(shp, 40, 110, sig, 8e3)
    img = img + gauss2d(shp, 60, 78, sig, 8e3) + np.random.default_rng(1).normal(0, 2, shp)
    var2 = np.full(shp, 4.0)
    s1, snr1 = find_stars(BandImage("sdss_r", img, var2, w, 1.3))
    s2, snr2 = find_stars(BandImage("sdss_r", img * unit, var2 * unit**2, w, 1.3))
    assert len(s1) >= 2 and len(s2) == len(s1)
    np.testing.assert_allclose(s2.ra.deg, s1.ra.deg, atol=1e-9)
    np.testing.assert_allclose(snr2, snr1, rtol=1e-6)


def test_undetected_centre_reports_its_signal_to_noise():
    rng = np.random.default_rng(2)
    cube = rng.normal(size=(2, 41, 41))
    with pytest.raises(InputError, match=r"S/N there is at most .* images.region.thresh 2") as e:
        galaxy_segment_region(cube, np.ones_like(cube), (20, 20))
    assert "ellipse" in str(e.value)
