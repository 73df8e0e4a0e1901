"""Radial profiles (sedmap.profiles), their product (profiles.fits) and the showcase
bins: geometry and profiles recovered from known discs, refusals."""

import numpy as np
import pytest

from sedmap.errors import InputError
from sedmap.io.profiles import read_profiles, write_profiles
from sedmap.profiles import galaxy_geometry, radial_profiles, reference_band, showcase_bins


def _disc(q=0.6, theta_deg=30.0, h=8.0, n=121):
    """An exponential disc (scale length ``h`` pixels along the major axis, axis
    ratio ``q``, major axis ``theta_deg`` from +x) and its elliptical radius."""
    yy, xx = np.indices((n, n), dtype=float)
    c = (n - 1) / 2
    t = np.radians(theta_deg)
    major = (xx - c) * np.cos(t) + (yy - c) * np.sin(t)
    minor = -(xx - c) * np.sin(t) + (yy - c) * np.cos(t)
    r = np.hypot(major, minor / q)
    return np.exp(-r / h), r, (c, c)


def test_geometry_of_an_exponential_disc():
    """Axis ratio, position angle and the half-light radius (1.678 scale lengths for
    an exponential disc) of a disc drawn with them."""
    img, _, centre = _disc(q=0.6, theta_deg=30.0, h=8.0)
    geo = galaxy_geometry(img, np.ones(img.shape, bool), centre)
    assert geo["q"] == pytest.approx(0.6, abs=0.03)
    assert np.degrees(geo["theta"]) == pytest.approx(30.0, abs=2.0)
    assert geo["r_e_pix"] == pytest.approx(1.678 * 8.0, rel=0.05)


def test_profiles_recover_a_known_mass_disc():
    """log Sigma* of an exponential mass disc (pixel maps in dex(Msun)) falls linearly
    with radius, at the slope -R_e / (h ln 10) per R_e and the right normalisation;
    an intensive map's gradient is recovered; low-S/N bins are left out."""
    img, r, centre = _disc(q=0.7, theta_deg=-20.0, h=10.0)
    geo = galaxy_geometry(img, np.ones(img.shape, bool), centre)
    pixel_kpc = 0.5
    log_m = 8.0 + np.log10(img)                      # Msun per pixel
    age = 8.0 - 0.1 * r                              # Gyr, falling outwards
    flag = np.where(r > 40, 1.0, 0.0)                # the outskirts: a low-S/N bin
    maps = {"BIN_FLAG": flag}
    for s in ("P16", "P50", "P84"):
        shift = {"P16": -0.1, "P50": 0.0, "P84": 0.1}[s]
        maps[f"LOG_MSTAR_PIX_{s}"] = log_m + shift
        maps[f"AGE_MW_{s}"] = age + shift
    t = radial_profiles(maps, np.ones(img.shape, bool), geo, pixel_kpc, step=0.25, r_max=3.0)
    re_pix = geo["r_e_pix"]
    expect = 8.0 - t["r_mid"] * re_pix / (10.0 * np.log(10)) - np.log10(pixel_kpc**2)
    inner = t["r_mid"] < 2.0
    np.testing.assert_allclose(t["log_sigma_mstar_p50"][inner], expect[inner], atol=0.03)
    assert np.all(t["log_sigma_mstar_p16"] < t["log_sigma_mstar_p50"])
    np.testing.assert_allclose(t["age_mw_p50"][inner], 8.0 - 0.1 * t["r_mid"][inner] * re_pix,
                               atol=0.1)
    assert t["r_hi"].max() * re_pix <= 40 + 0.25 * re_pix  # nothing from the low-S/N bin
    assert str(t["log_sigma_mstar_p50"].unit) == "dex(solMass / kpc2)"
    assert t.meta["R_E_KPC"] == pytest.approx(re_pix * pixel_kpc)


def test_profiles_product_round_trip_and_refusal(tmp_path):
    img, _, centre = _disc()
    geo = galaxy_geometry(img, np.ones(img.shape, bool), centre)
    maps = {f"LOG_MSTAR_PIX_{s}": 8 + np.log10(img) for s in ("P16", "P50", "P84")}
    t = radial_profiles(maps, np.ones(img.shape, bool), geo, 0.2)
    path = write_profiles(t, tmp_path / "profiles.fits", "disc", confhash="abc")
    back = read_profiles(path)
    np.testing.assert_allclose(back["log_sigma_mstar_p50"], t["log_sigma_mstar_p50"])
    assert back["r_kpc"].unit == "kpc" and back.meta["PIXKPC"] == pytest.approx(0.2)
    t.meta.pop("R_E_KPC")
    with pytest.raises(InputError, match="R_E_KPC"):
        write_profiles(t, tmp_path / "bad.fits", "disc")
    assert not (tmp_path / "bad.fits").exists()
    with pytest.raises(InputError, match="no LOG_MSTAR_PIX_P50"):
        radial_profiles({}, np.ones(img.shape, bool), geo, 0.2)


def test_reference_band_and_showcase_bins():
    """The reference band is the reddest at or below 2.5 um; the showcase bins are
    the usable ones nearest the centre, nearest R_e and outermost."""
    assert reference_band([1528, 6200, 12350, 21590, 33526]) == 3
    assert reference_band([34000, 46000]) == 0
    binmap = np.array([[1, 2, 3, 4, 5]])
    radius = np.array([[0.1, 0.6, 1.05, 1.8, 3.0]])
    show = showcase_bins(binmap, radius, usable=[1, 2, 3, 4])  # bin 5: not usable
    assert [(b, label) for b, _, label in show] == [(1, "centre"), (3, "R_e"),
                                                    (4, "outskirts")]
    assert showcase_bins(binmap, radius, usable=[]) == []


def test_maps_stage_draws_every_figure_when_no_bin_is_snr_complete(tmp_path):
    """A galaxy whose bins are all flagged LOW_SNR and whose redshift gives no
    distance (z = 0) still gets every figure the maps rule declares, an empty profile
    table saying why, and a summary page that says so."""
    from astropy.wcs import WCS

    from sedmap.io import BinMap, Filters, FitResult, FluxCube, MapSet, PropertyMap
    from sedmap.io.profiles import read_profiles, write_profiles
    from sedmap.report import write_summary
    from sedmap.stages import _profiles, galaxy_pixel_kpc, map_plots

    img, _, _ = _disc(n=21)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    wcs.wcs.crval = [10.0, 2.0]
    wcs.wcs.crpix = [11, 11]
    filters = Filters(["sdss_r", "sdss_i"], np.array([6200.0, 7600.0]), np.zeros(2))
    cube = FluxCube(galaxy="g", flux=np.stack([img, img]), flux_err=0.1 * np.ones((2, 21, 21)),
                    region=np.ones((21, 21), bool), wcs=wcs, filters=filters, ra=10.0, dec=2.0,
                    z=0.0, pixsize=0.36, psf_fwhm=1.0, ebv=0.0)
    binmap = np.ones((21, 21), np.int32)
    bm = BinMap(galaxy="g", binmap=binmap, wcs=wcs, filters=filters, flux=np.ones((1, 2)),
                flux_var=np.ones((1, 2)), snr=np.ones((1, 2)), flag=np.ones(1, np.int32))
    res = FitResult(bin_id=1, method="rdsps", param_names=["log_mstar"],
                    samples=np.zeros((4, 1)), weights=np.ones(4), percentiles={},
                    bestfit_photometry=np.ones(2))
    ms = MapSet(galaxy="g", wcs=wcs, constraint_min=0.5, maps={
        "AV_P50": PropertyMap(np.full((21, 21), 0.3, np.float32), "mag", "BIN"),
        "BIN_FLAG": PropertyMap(np.ones((21, 21), np.float32), "", "BIN")})
    kpc = galaxy_pixel_kpc(cube)
    assert np.isnan(kpc)
    geo, table = _profiles(ms, cube, bm, kpc)
    assert len(table) == 0 and "LOG_MSTAR_PIX_P50" in table.meta["NOTE"]
    drawn = map_plots(ms, bm, cube, [res], tmp_path, geo, table, kpc)
    # a result without its SFH record (sedmap < 0.4): sfh.png says so
    assert {p.name for p in drawn["files"]} == {"maps.png", "profiles.png", "residuals.png",
                                                "sed_fit.png", "corner.png", "sfh.png"}
    assert all(p.stat().st_size > 0 for p in drawn["files"])
    path = write_profiles(table, tmp_path / "profiles.fits", "g")
    back = read_profiles(path)
    assert len(back) == 0 and np.isnan(back.meta["R_E_KPC"]) and back.meta["NOTE"]
    page = write_summary(tmp_path / "summary.html", "g", _write_maps(ms, tmp_path),
                         path).read_text()
    assert "Radial profiles" in page and "None:" in page


def _write_maps(ms, tmp_path):
    from sedmap.io import write_map_set

    return write_map_set(ms, tmp_path / "maps.fits")
