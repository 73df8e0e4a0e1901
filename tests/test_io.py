"""Round trips, deterministic bytes, atomic writes and input validation of sedmap.io."""

import errno
import os
import time

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from sedmap.errors import InputError
from sedmap.io import (
    BinMap,
    Filters,
    FitResult,
    FluxCube,
    MapSet,
    PropertyMap,
    SFHGroups,
    SpecPhotoCube,
    atomic,
    read_bin_map,
    read_fit_result,
    read_flux_cube,
    read_map_set,
    read_sfh_groups,
    read_spec_photo,
    write_bin_map,
    write_fit_result,
    write_flux_cube,
    write_map_set,
    write_sfh_groups,
    write_spec_photo,
)
from sedmap.io import fitresult as fitresult_mod
from sedmap.io.atomic import atomic_path

NY, NX, NB, NW = 6, 5, 3, 7
HASH = "abc123def456"


# --------------------------------------------------------------------------- fixtures

def make_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.crpix = [3.0, 3.5]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return w


def make_flux_cube():
    rng = np.random.default_rng(1)
    region = np.zeros((NY, NX), bool)
    region[1:5, 1:4] = True
    return FluxCube(
        galaxy="NGC0001",
        flux=rng.normal(5, 1, (NB, NY, NX)).astype(np.float32),
        flux_err=rng.uniform(0.1, 0.5, (NB, NY, NX)).astype(np.float32),
        region=region, wcs=make_wcs(),
        filters=Filters(["galex_fuv", "sdss_r", "wise_w1"], [1535.0, 6166.0, 33526.0],
                        [4.2, 1.3, 6.1]),
        ra=150.1, dec=2.2, z=0.0123, pixsize=1.5, psf_fwhm=6.5, ebv=0.02,
        fscale=1e-17, config_hash=HASH,
    )


def make_spec_photo():
    rng = np.random.default_rng(2)
    mask = np.zeros((NY, NX), bool)
    mask[2:4, 2:4] = True
    spec = rng.normal(1, 0.1, (NW, NY, NX)).astype(np.float32)
    spec[3, 2, 2] = np.nan  # a bad wavelength pixel; its error may be anything
    err = rng.uniform(0.01, 0.02, (NW, NY, NX)).astype(np.float32)
    err[3, 2, 2] = np.nan
    return SpecPhotoCube(make_flux_cube(), np.linspace(3700.0, 7000.0, NW), spec, err, mask)


def make_bin_map(spectra=True):
    rng = np.random.default_rng(3)
    binmap = np.zeros((NY, NX), np.int32)
    binmap[1:3, 1:4] = 1
    binmap[3:5, 1:4] = 2
    binmap[5, 4] = 3
    n = 3
    flux = rng.normal(10, 1, (n, NB))
    var = rng.uniform(0.1, 0.2, (n, NB))
    kw = {}
    if spectra:
        kw = {"wave": np.linspace(3700.0, 7000.0, NW), "bin_spec": rng.normal(1, 0.1, (n, NW)),
              "bin_spec_var": rng.uniform(0.01, 0.02, (n, NW))}
    return BinMap("NGC0001", binmap, make_wcs(), make_flux_cube().filters, flux, var,
                  flux / np.sqrt(var), np.array([0, 1, 0]), 1e-17, config_hash=HASH, **kw)


def make_fit_result(method="mcmc"):
    rng = np.random.default_rng(4)
    names = ["log_mass", "log_age", "tau_v"]
    samples = rng.normal(size=(50, 3))
    pct = {n: np.percentile(samples[:, i], [16, 50, 84]) for i, n in enumerate(names)}
    pct["sfr_100myr"] = np.array([0.1, 0.2, 0.4])  # derived, not in samples
    return FitResult(
        bin_id=7, method=method, param_names=names, samples=samples, percentiles=pct,
        flag=0, chi2=12.5, weights=rng.uniform(size=50),
        bestfit_wave=np.linspace(1000.0, 30000.0, 20), bestfit_spectrum=rng.uniform(size=20),
        bestfit_photometry=np.array([1.0, 2.0, 3.0]), bestfit_z=0.0123, fscale=1e-17,
        acceptance_fraction=0.31, autocorr_time=np.array([10.0, 12.0, 9.0]), config_hash=HASH,
        prior_width={"log_mass": 0.6, "log_age": 1.5},
    )


def make_map_set():
    rng = np.random.default_rng(5)
    maps = {
        "LOG_MASS_P50": PropertyMap(rng.normal(8, 1, (NY, NX)), "dex(solMass)", "BIN"),
        "SFR_P50": PropertyMap(rng.uniform(size=(NY, NX)), "Msun yr-1", "PIXEL"),
        "AGE_MW_P50": PropertyMap(rng.uniform(1, 10, (NY, NX)), "Gyr", "BIN"),
    }
    maps["SFR_P50"].data[0, 0] = np.nan
    return MapSet("NGC0001", make_wcs(), maps, HASH)


def make_sfh_groups():
    gmap = np.full((NY, NX), -1, np.int16)
    gmap[1:3, :] = 0
    gmap[3:6, :] = 1
    gmap[0, 0] = 2
    edges = np.array([0.0, 0.1, 1.0, 5.0, 13.0])
    return SFHGroups("NGC0001", gmap, make_wcs(), np.array([1e9, 3e9, 1e7]),
                     np.arange(12.0).reshape(3, 4) / 10, edges, HASH)


WRITERS = {
    "fluxmap.fits": (write_flux_cube, make_flux_cube),
    "specphoto.fits": (write_spec_photo, make_spec_photo),
    "binmap.fits": (write_bin_map, make_bin_map),
    "bin_7.h5": (write_fit_result, make_fit_result),
    "maps.fits": (write_map_set, make_map_set),
    "sfh_groups.fits": (write_sfh_groups, make_sfh_groups),
}


def assert_same_wcs(a, b):
    pix = np.array([[0, 0], [4, 5], [2.5, 1.5]])
    np.testing.assert_allclose(a.wcs_pix2world(pix, 0), b.wcs_pix2world(pix, 0), rtol=0,
                               atol=1e-10)
    assert list(a.wcs.ctype) == list(b.wcs.ctype)


def tamper(path, fn):
    """Rewrite the FITS file ``path`` after ``fn(hdul)`` edited it in memory."""
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    fn(hdul)
    hdul.writeto(path, overwrite=True)


# --------------------------------------------------------------------------- round trips

def test_flux_cube_round_trip(tmp_path):
    cube = make_flux_cube()
    path = write_flux_cube(cube, tmp_path / "fluxmap.fits")
    back = read_flux_cube(path)
    np.testing.assert_array_equal(back.flux, cube.flux)
    np.testing.assert_array_equal(back.flux_err, cube.flux_err)
    np.testing.assert_array_equal(back.region, cube.region)
    assert back.filters == cube.filters
    assert (back.galaxy, back.ra, back.dec, back.z) == ("NGC0001", 150.1, 2.2, 0.0123)
    assert (back.pixsize, back.psf_fwhm, back.ebv) == (1.5, 6.5, 0.02)
    assert back.fscale == pytest.approx(1e-17)
    assert back.config_hash == HASH and back.sedmap_version
    assert_same_wcs(back.wcs, cube.wcs)
    with fits.open(path) as hdul:
        assert hdul["FLUX"].header["BUNIT"] == "1e-17 erg s-1 cm-2 AA-1"
        assert hdul["GALAXY_REGION"].data.dtype == np.uint8
        for name in ("FLUX", "FLUX_ERR", "GALAXY_REGION"):
            assert "CTYPE1" in hdul[name].header and "SEDMAPV" in hdul[name].header
        assert hdul[0].header["CONFHASH"] == HASH


def test_flux_cube_noise_correlation_round_trip(tmp_path):
    cube = make_flux_cube()
    nb = cube.flux.shape[0]
    rho = np.zeros((nb, 5, 5))
    rho[:, 2, 2] = 1.0
    rho[:, 2, 1] = rho[:, 2, 3] = 0.4
    cube.noise_corr, cube.sky_err = rho, np.arange(nb) * 0.01
    back = read_flux_cube(write_flux_cube(cube, tmp_path / "fluxmap.fits"))
    np.testing.assert_array_equal(back.noise_corr, rho)
    np.testing.assert_allclose(back.sky_err, cube.sky_err)
    assert read_flux_cube(write_flux_cube(make_flux_cube(), tmp_path / "b.fits")).noise_corr is None
    bad = make_flux_cube()
    bad.noise_corr = rho * 0.5       # not 1 at zero offset
    with pytest.raises(InputError, match="NOISE_CORR"):
        write_flux_cube(bad, tmp_path / "c.fits")
    assert not (tmp_path / "c.fits").exists()


def test_flux_cube_other_scale_is_converted(tmp_path):
    path = write_flux_cube(make_flux_cube(), tmp_path / "fluxmap.fits")

    def to_1e18(hdul):
        hdul["FLUX_ERR"].data = hdul["FLUX_ERR"].data * 10
        hdul["FLUX_ERR"].header["BUNIT"] = "1e-18 erg s-1 cm-2 AA-1"
        del hdul["FLUX_ERR"].header["FSCALE"]
    tamper(path, to_1e18)
    np.testing.assert_allclose(read_flux_cube(path).flux_err, make_flux_cube().flux_err,
                               rtol=1e-6)


def test_spec_photo_round_trip(tmp_path):
    cube = make_spec_photo()
    path = write_spec_photo(cube, tmp_path / "specphoto.fits")
    back = read_spec_photo(path)
    np.testing.assert_array_equal(back.spec, cube.spec)
    np.testing.assert_array_equal(back.spec_err, cube.spec_err)
    np.testing.assert_array_equal(back.spec_mask, cube.spec_mask)
    np.testing.assert_array_equal(back.wave, cube.wave)
    np.testing.assert_array_equal(back.photometry.flux, cube.photometry.flux)
    assert_same_wcs(back.photometry.wcs, cube.photometry.wcs)
    # the photometry of a specphoto file reads as a flux cube
    np.testing.assert_array_equal(read_flux_cube(path).flux, cube.photometry.flux)
    with fits.open(path) as hdul:
        assert hdul["SPEC"].header["BUNIT"] == "1e-17 erg s-1 cm-2 AA-1"
        assert hdul["WAVE"].columns["wave"].unit == "Angstrom"


@pytest.mark.parametrize("spectra", [True, False])
def test_bin_map_round_trip(tmp_path, spectra):
    bm = make_bin_map(spectra)
    back = read_bin_map(write_bin_map(bm, tmp_path / "binmap.fits"))
    np.testing.assert_array_equal(back.binmap, bm.binmap)
    assert back.binmap.dtype == np.int32
    np.testing.assert_array_equal(back.npix, [6, 6, 1])
    np.testing.assert_array_equal(back.bin_id, [1, 2, 3])
    for name in ("flux", "flux_var", "snr", "flag"):
        np.testing.assert_allclose(getattr(back, name), getattr(bm, name), rtol=1e-12)
    if spectra:
        np.testing.assert_allclose(back.bin_spec, bm.bin_spec, rtol=1e-6)
        np.testing.assert_allclose(back.bin_spec_var, bm.bin_spec_var, rtol=1e-6)
        np.testing.assert_array_equal(back.wave, bm.wave)
    else:
        assert back.bin_spec is None and back.wave is None
    assert back.filters == bm.filters and back.config_hash == HASH
    assert_same_wcs(back.wcs, bm.wcs)


@pytest.mark.parametrize("method", ["mcmc", "rdsps"])
def test_fit_result_round_trip(tmp_path, method):
    res = make_fit_result(method)
    if method == "rdsps":
        res.acceptance_fraction = res.autocorr_time = None
        res.bestfit_wave = res.bestfit_spectrum = None
    path = write_fit_result(res, tmp_path / "fits" / "bin_7.h5")
    back = read_fit_result(path)
    assert (back.bin_id, back.method, back.flag, back.chi2) == (7, method, 0, 12.5)
    assert back.param_names == res.param_names
    # samples and weights are stored as float32 (the percentiles in full precision)
    np.testing.assert_array_equal(back.samples, res.samples.astype(np.float32))
    np.testing.assert_array_equal(back.weights, np.asarray(res.weights, np.float32))
    assert back.prior_width == res.prior_width
    assert list(back.percentiles) == list(res.percentiles)
    for name, value in res.percentiles.items():
        np.testing.assert_array_equal(back.percentiles[name], value)
    np.testing.assert_array_equal(back.bestfit_photometry, res.bestfit_photometry)
    assert back.bestfit_z == res.bestfit_z == 0.0123
    assert back.config_hash == HASH and back.sedmap_version
    if method == "mcmc":
        assert back.acceptance_fraction == 0.31
        np.testing.assert_array_equal(back.autocorr_time, res.autocorr_time)
        np.testing.assert_allclose(back.bestfit_spectrum, res.bestfit_spectrum, rtol=1e-6)
    else:
        assert back.acceptance_fraction is None and back.bestfit_wave is None
    with h5py.File(path, "r") as f:
        assert f["percentiles"].shape == (4, 3)
        assert f["samples"].shape == (50, 3)
        assert f["bestfit/photometry"].attrs["unit"] == "1e-17 erg s-1 cm-2 AA-1"


def test_map_set_round_trip(tmp_path):
    ms = make_map_set()
    path = write_map_set(ms, tmp_path / "maps.fits")
    back = read_map_set(path)
    assert list(back.maps) == list(ms.maps)
    for name, m in ms.maps.items():
        np.testing.assert_allclose(back[name].data, m.data, rtol=1e-6)
        assert (back[name].unit, back[name].space) == (m.unit, m.space)
    assert np.isnan(back["SFR_P50"].data[0, 0])
    assert_same_wcs(back.wcs, ms.wcs)
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            assert "CTYPE1" in hdu.header and "BUNIT" in hdu.header and "CONFHASH" in hdu.header


def test_sfh_groups_round_trip(tmp_path):
    g = make_sfh_groups()
    back = read_sfh_groups(write_sfh_groups(g, tmp_path / "sfh_groups.fits"))
    np.testing.assert_array_equal(back.group_map, g.group_map)
    assert back.group_map.dtype == np.int16
    np.testing.assert_array_equal(back.n_pix, [10, 15, 1])
    np.testing.assert_allclose(back.mass, g.mass)
    np.testing.assert_allclose(back.mean_sfh, g.mean_sfh)
    np.testing.assert_allclose(back.time_edges, g.time_edges)
    assert_same_wcs(back.wcs, g.wcs)


NOT_ON_SKY = {"BIN_SPEC", "BIN_SPEC_VAR", "MEAN_SFH"}


@pytest.mark.parametrize("name", [n for n in WRITERS if n.endswith(".fits")])
def test_every_image_carries_wcs_bunit_provenance(tmp_path, name):
    write, make = WRITERS[name]
    path = write(make(), tmp_path / name)
    with fits.open(path) as hdul:
        assert hdul[0].header["PRODUCT"]
        for hdu in hdul:
            assert hdu.header["SEDMAPV"] and hdu.header["CONFHASH"] == HASH, hdu.name
            if isinstance(hdu, fits.ImageHDU):
                assert "BUNIT" in hdu.header, hdu.name
                if hdu.name not in NOT_ON_SKY:
                    assert WCS(hdu.header, naxis=2).has_celestial, hdu.name


# --------------------------------------------------------------------------- deterministic bytes

def test_same_data_gives_identical_bytes(tmp_path):
    for name, (write, make) in WRITERS.items():
        write(make(), tmp_path / "a" / name)
    time.sleep(1.1)  # any timestamp in the files would now differ
    for name, (write, make) in WRITERS.items():
        write(make(), tmp_path / "b" / name)
    for name in WRITERS:
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes(), name
        if name.endswith(".fits"):
            with fits.open(tmp_path / "a" / name) as hdul:
                assert not any("DATE" in h.header for h in hdul), name


def test_different_data_gives_different_bytes(tmp_path):
    cube = make_flux_cube()
    write_flux_cube(cube, tmp_path / "a.fits")
    cube.flux[0, 0, 0] += 1
    write_flux_cube(cube, tmp_path / "b.fits")
    assert (tmp_path / "a.fits").read_bytes() != (tmp_path / "b.fits").read_bytes()


# --------------------------------------------------------------------------- atomic writes

def test_failed_fits_write_leaves_nothing(tmp_path, monkeypatch):
    def half_write(self, fileobj, *args, **kwargs):
        with open(fileobj, "wb") as fh:
            fh.write(b"SIMPLE  =                    T" * 10)
        raise RuntimeError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", half_write)
    for name, (write, make) in WRITERS.items():
        if name.endswith(".fits"):
            with pytest.raises(RuntimeError, match="disk full"):
                write(make(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = write_flux_cube(make_flux_cube(), tmp_path / "fluxmap.fits")
    before = path.read_bytes()
    monkeypatch.setattr(fits.HDUList, "writeto",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        write_flux_cube(make_flux_cube(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["fluxmap.fits"]


def test_failed_hdf5_write_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = fitresult_mod.create_dataset

    def fail_on_third(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(fitresult_mod, "create_dataset", fail_on_third)
    with pytest.raises(RuntimeError, match="killed"):
        write_fit_result(make_fit_result(), tmp_path / "bin_7.h5")
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_killed_write_leaves_no_final_file_and_next_write_removes_its_temp(tmp_path):
    """kill -9 during a write: no file under the final name, a hidden temporary file
    named after its host and PID; the next write of that product removes it."""
    import os
    import subprocess
    import sys

    out = tmp_path / "grid_abc.h5"
    code = ("import os, signal, sys; from sedmap.io.atomic import atomic_path\n"
            f"with atomic_path({str(out)!r}) as tmp:\n"
            "    open(tmp, 'wb').write(b'x' * 100000)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, check=False)
    assert run.returncode == -9, run.stderr
    left = list(tmp_path.iterdir())
    assert not out.exists() and len(left) == 1
    assert left[0].name.startswith(f".grid_abc.h5.{atomic._host()}.")
    assert left[0].name.endswith(".tmp.h5") and left[0].stat().st_size == 100000
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"done")
    assert [p.name for p in tmp_path.iterdir()] == ["grid_abc.h5"]
    assert out.read_bytes() == b"done"


def test_stale_temps_only_of_dead_writers_of_that_product_are_removed(tmp_path):
    """Removed: this host's temporaries of the product whose writer is gone, and those
    of a writer that cannot be checked (another node, the former name) once a day
    old. Kept: a live writer's, a fresh one of another node, and other products'."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(done.stdout)  # exited: its PID names no process (barring reuse)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = atomic._host()
    try:
        names = {
            "dead": f".grid_x.h5.{host}.{dead}.abcd1234.tmp.h5",
            "live": f".grid_x.h5.{host}.{live.pid}.abcd1234.tmp.h5",
            "other_host_fresh": f".grid_x.h5.node-17.{dead}.abcd1234.tmp.h5",
            "other_host_old": f".grid_x.h5.node-17.{live.pid}.zzzz9999.tmp.h5",
            "former_old": ".grid_x.h5.k2j_x9q0.tmp.h5",
            "former_fresh": ".grid_x.h5.a1b2c3d4.tmp.h5",
            "other_product": f".grid_y.h5.{host}.{dead}.abcd1234.tmp.h5",
            "other_suffix": f".grid_x.h5.{host}.{dead}.abcd1234.tmp.fits",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"partial")
        day_ago = time.time() - atomic.STALE_AGE_S - 60
        for key in ("other_host_old", "former_old"):
            os.utime(tmp_path / names[key], (day_ago, day_ago))
        with atomic_path(tmp_path / "grid_x.h5") as tmp:
            tmp.write_bytes(b"new")
        left = {p.name for p in tmp_path.iterdir()}
    finally:
        live.kill()
        live.wait()
    gone = {"dead", "other_host_old", "former_old"}
    assert left == {names[k] for k in names if k not in gone} | {"grid_x.h5"}


def test_invalid_data_is_refused_before_writing(tmp_path):
    cube = make_flux_cube()
    cube.flux_err[1, 2, 2] = 0.0
    path = tmp_path / "fluxmap.fits"
    with pytest.raises(InputError, match=str(path)):
        write_flux_cube(cube, path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- bad inputs

def _set(ext, key, value):
    def fn(hdul):
        hdul[ext].header[key] = value
    return fn


def _delete(ext):
    def fn(hdul):
        del hdul[ext]
    return fn


def _edit_data(ext, edit):
    def fn(hdul):
        data = hdul[ext].data.copy()
        edit(data)
        hdul[ext].data = data
    return fn


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3000])


FITS_CASES = [
    # (product file, tamper, words expected in the message)
    ("fluxmap.fits", _delete("FLUX_ERR"), "missing extension FLUX_ERR"),
    ("fluxmap.fits", _delete("FILTERS"), "missing extension FILTERS"),
    ("fluxmap.fits", lambda h: setattr(h["FLUX_ERR"], "data", h["FLUX_ERR"].data[:2]),
     "FLUX_ERR has shape (2, 6, 5), but FLUX has shape (3, 6, 5)"),
    ("fluxmap.fits", _set("FLUX", "BUNIT", "Jy"), "not a flux density"),
    ("fluxmap.fits", _set("FLUX", "BUNIT", "Msun"), "not a flux density"),
    ("fluxmap.fits", _set("FLUX", "BUNIT", "furlongs per bogus"), "not a unit"),
    ("fluxmap.fits", _set("FLUX", "FSCALE", 1e-20), "disagrees with BUNIT"),
    ("fluxmap.fits", _edit_data("FLUX_ERR", lambda d: d.__setitem__((0, 2, 2), np.nan)),
     "NaN, zero or negative in 1 pixels inside the galaxy region"),
    ("fluxmap.fits", _edit_data("FLUX_ERR", lambda d: d.__setitem__((slice(None), 2, 2), 0)),
     "in 3 pixels"),
    ("fluxmap.fits", _edit_data("FLUX_ERR", lambda d: d.__setitem__((1, 3, 1), -1)),
     "in 1 pixels"),
    ("fluxmap.fits", _edit_data("FLUX", lambda d: d.__setitem__((1, 3, 1), np.inf)),
     "FLUX is NaN or infinite in 1 pixels"),
    ("fluxmap.fits", _set(0, "PRODUCT", "BINMAP"), "expected FLUXMAP"),
    ("fluxmap.fits", lambda h: [h[n].header.remove(k) for n in ("FLUX",)
                                for k in ("CTYPE1", "CTYPE2")], "no celestial WCS"),
    ("fluxmap.fits", lambda h: h[0].header.remove("PIXSIZE"), "lacks PIXSIZE"),
    ("specphoto.fits", _delete("SPEC_ERR"), "missing extension SPEC_ERR"),
    ("specphoto.fits", _delete("WAVE"), "missing extension WAVE"),
    ("specphoto.fits", _set("SPEC", "BUNIT", "Jy"), "not a flux density"),
    ("specphoto.fits", _edit_data("SPEC_ERR", lambda d: d.__setitem__((0, 3, 3), 0)),
     "SPEC_ERR is NaN, zero or negative in 1 good spectral pixels"),
    ("binmap.fits", _edit_data("BINMAP", lambda d: d.__setitem__(d == 3, 0)),
     "empty bins: bin ids [3]"),
    ("binmap.fits", _edit_data("BINMAP", lambda d: d.__setitem__((0, 0), 9)),
     "ids must be 0..3"),
    ("binmap.fits", _edit_data("BINMAP", lambda d: d.__setitem__((1, 1), 2)),
     "npix disagrees"),
    ("binmap.fits", _delete("BINS"), "missing extension BINS"),
    ("binmap.fits", _delete("WAVE"), "missing extension WAVE"),
    ("binmap.fits", lambda h: setattr(h["BINS"].columns["flux"], "unit", "Jy"),
     "not a flux density"),
    ("binmap.fits", _edit_data("BINS", lambda d: d["flux_var"].__setitem__((1, 0), 0)),
     "flux_var is NaN, zero or negative in 1"),
    ("maps.fits", lambda h: h["SFR_P50"].header.remove("BUNIT"), "SFR_P50 has no BUNIT"),
    ("maps.fits", _set("SFR_P50", "BUNIT", "bogus units!"), "not a unit"),
    ("maps.fits", _set("SFR_P50", "MAPSPACE", "SKY"), "MAPSPACE 'SKY'"),
    ("maps.fits", lambda h: h["SFR_P50"].header.remove("CTYPE1"), "WCS"),
    ("sfh_groups.fits", _edit_data("GROUP_MAP", lambda d: d.__setitem__(d == 2, -1)),
     "empty groups: group ids [2]"),
    ("sfh_groups.fits", _delete("TIME"), "missing extension TIME"),
    ("sfh_groups.fits", _set("MEAN_SFH", "BUNIT", "Jy"), "not convertible"),
    ("sfh_groups.fits", lambda h: setattr(h["MEAN_SFH"], "data", h["MEAN_SFH"].data[:, :2]),
     "MEAN_SFH has shape (3, 2)"),
]

READERS = {
    "fluxmap.fits": read_flux_cube,
    "specphoto.fits": read_spec_photo,
    "binmap.fits": read_bin_map,
    "bin_7.h5": read_fit_result,
    "maps.fits": read_map_set,
    "sfh_groups.fits": read_sfh_groups,
}


@pytest.mark.parametrize("name, edit, words", FITS_CASES,
                         ids=[f"{c[0]}:{c[2][:30]}" for c in FITS_CASES])
def test_bad_fits_raises_input_error(tmp_path, name, edit, words):
    write, make = WRITERS[name]
    path = write(make(), tmp_path / name)
    tamper(path, edit)
    with pytest.raises(InputError) as info:
        READERS[name](path)
    msg = str(info.value)
    assert str(path) in msg
    assert words in msg
    assert "Fix:" in msg


@pytest.mark.parametrize("name", list(READERS))
def test_missing_file(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(InputError, match="file not found") as info:
        READERS[name](path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", list(READERS))
def test_not_a_product_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not a FITS or HDF5 file\n" * 100)
    with pytest.raises(InputError, match="not a readable") as info:
        READERS[name](path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", list(READERS))
def test_truncated_file(tmp_path, name):
    write, make = WRITERS[name]
    path = write(make(), tmp_path / name)
    _truncate(path)
    with pytest.raises(InputError, match="truncated") as info:
        READERS[name](path)
    assert str(path) in str(info.value)


def _h5_edit(fn):
    def edit(path):
        with h5py.File(path, "a") as f:
            fn(f)
    return edit


H5_CASES = [
    (_h5_edit(lambda f: f.__delitem__("samples")), "missing HDF5 object /samples"),
    (_h5_edit(lambda f: f.__delitem__("percentiles")), "missing HDF5 object /percentiles"),
    (_h5_edit(lambda f: f.attrs.__delitem__("method")), "missing attribute 'method'"),
    (_h5_edit(lambda f: f.attrs.__setitem__("method", "Grid Search")), "method 'Grid Search'"),
    (_h5_edit(lambda f: f.attrs.__delitem__("config_hash")), "'config_hash'"),
    (_h5_edit(lambda f: (f.__delitem__("param_names"),
                         f.create_dataset("param_names", data=np.array([b"a", b"b"])))),
     "samples have shape (50, 3), expected (n_samples, 2)"),
    (_h5_edit(lambda f: f["bestfit/spectrum"].attrs.__setitem__("unit", "Jy")),
     "not a flux density"),
    (_h5_edit(lambda f: f["percentiles"].__setitem__((0, 0), 99.0)), "not ordered"),
    (_h5_edit(lambda f: f["weights"].__setitem__(0, -1.0)), "weights must be"),
]


@pytest.mark.parametrize("edit, words", H5_CASES, ids=[c[1][:30] for c in H5_CASES])
def test_bad_fit_result_raises_input_error(tmp_path, edit, words):
    path = write_fit_result(make_fit_result(), tmp_path / "bin_7.h5")
    edit(path)
    with pytest.raises(InputError) as info:
        read_fit_result(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


@pytest.mark.parametrize("name", ["binmap.fits"])
def test_writer_refuses_empty_bin(tmp_path, name):
    bm = make_bin_map()
    bm.binmap[bm.binmap == 2] = 0
    with pytest.raises(InputError, match=r"bin ids \[2\] have zero pixels"):
        write_bin_map(bm, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_effective_sample_size():
    base = {"bin_id": 1, "param_names": ["a"], "percentiles": {"a": np.zeros(3)}}
    equal = FitResult(method="rdsps", samples=np.zeros((50, 1)), weights=np.full(50, 0.02), **base)
    assert equal.effective_sample_size == pytest.approx(50.0)
    w = np.zeros(50)
    w[:2] = 0.5                                   # two models carry all the weight
    assert FitResult(method="rdsps", samples=np.zeros((50, 1)), weights=w,
                     **base).effective_sample_size == pytest.approx(2.0)
    chain = FitResult(method="mcmc", samples=np.zeros((6400, 1)), autocorr_time=np.array([32.0]),
                      **base)
    assert chain.effective_sample_size == pytest.approx(200.0)
    assert np.isnan(FitResult(method="mcmc", samples=np.zeros((10, 1)),
                              **base).effective_sample_size)


def test_fit_result_of_the_former_layout_still_reads(tmp_path):
    """Files written before the percentiles table (/params/<name>) read the same."""
    res = make_fit_result("rdsps")
    path = write_fit_result(res, tmp_path / "bin_7.h5")
    with h5py.File(path, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["percentile_names"][()]]
        table = f["percentiles"][()]
        del f["percentiles"], f["percentile_names"]
        params = f.create_group("params")
        for n, row in zip(names, table):
            params.create_dataset(n, data=row)
    back = read_fit_result(path)
    assert sorted(back.percentiles) == sorted(res.percentiles)  # a group lists names sorted
    for name, value in res.percentiles.items():
        np.testing.assert_array_equal(back.percentiles[name], value)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"),
                                         (errno.EDQUOT, "no space left"),
                                         (errno.EACCES, "cannot write there")])
def test_atomic_write_errors_name_the_path_and_the_fix(tmp_path, code, words):
    """A full disk or a refused write inside a product's write is one InputError
    naming the product and the fix; no temporary file and no product stay."""
    from sedmap.io.atomic import atomic_path

    out = tmp_path / "sub" / "maps.fits"
    with pytest.raises(InputError) as err:
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"x" * 2_000_000)
            raise OSError(code, os.strerror(code))
    msg = str(err.value)
    assert str(out) in msg and words in msg and "Fix:" in msg
    assert "results_dir" in msg
    if code != errno.EACCES:
        assert "needs more than 2 MB" in msg
    assert os.listdir(out.parent) == []


def test_atomic_write_other_errors_propagate_unchanged(tmp_path):
    from sedmap.io.atomic import atomic_path

    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "a.h5"):
            raise FileNotFoundError(errno.ENOENT, "gone")
    assert os.listdir(tmp_path) == []


def test_grid_build_refused_before_work_when_the_disk_is_too_small(tmp_path, monkeypatch):
    import shutil

    from sedmap import models

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: usage._replace(free=10_000_000))
    with pytest.raises(InputError, match=r"needs 3\.11 GB .* has 0\.01 GB free"):
        models.check_free_space(tmp_path / "g" / "grid.h5",
                                models.grid_nbytes(800_000, 933, 4, 14, 6))
    assert models.grid_nbytes(800_000, 933, 4, 14, 6) == pytest.approx(3.11e9, rel=0.01)
    models.check_free_space(tmp_path / "grid.h5", 1000)  # enough: no error
