"""Fit stage: priors, likelihoods, RDSPS and MCMC recover known truths."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy import stats

from sedmap.config import load_config
from sedmap.errors import InputError
from sedmap.filters import pivot_wavelengths
from sedmap.fit import fit_bin_mcmc, run_rdsps
from sedmap.fit.likelihood import legendre_normalise, line_mask, photometry_loglike
from sedmap.fit.rdsps import chi2_scale, weighted_percentiles
from sedmap.io import BinMap, Filters, read_fit_result, read_model_grid
from sedmap.models import build_grid, model_from_config
from sedmap.priors import Prior, build_priors

ROOT = Path(__file__).resolve().parents[1]

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]


# ----------------------------------------------------------------- priors
def test_prior_forms_match_scipy_and_truncate():
    x = np.linspace(-1, 3, 9)
    g = Prior("a", 0, 2, "gaussian", mu=1.0, sigma=0.5)
    lp = g.logpdf(x)
    inside = (x >= 0) & (x <= 2)
    assert np.all(np.isinf(lp[~inside]))
    ref = stats.norm.logpdf(x[inside], 1.0, 0.5)
    np.testing.assert_allclose(lp[inside] - lp[inside][0], ref - ref[0])
    # Student-t and gamma are written in closed form: scipy's values, normalisation
    # included, for several shapes, scales and offsets
    xs = np.linspace(-4.5, 4.5, 31)
    for mu, sigma, nu in ((0.0, 1.0, 3.0), (0.4, 0.3, 2.0), (-1.0, 2.5, 30.0)):
        t = Prior("a", -5, 5, "student_t", mu=mu, sigma=sigma, nu=nu)
        np.testing.assert_allclose(t.logpdf(xs), stats.t.logpdf(xs, nu, loc=mu, scale=sigma),
                                   rtol=1e-12)
    ys = np.linspace(-1.0, 3.0, 33)
    for k, theta in ((2.0, 0.5), (1.0, 0.4), (0.7, 2.0), (5.5, 0.1)):
        gm = Prior("a", -1.0, 3.0, "gamma", k=k, theta=theta)
        ref = stats.gamma.logpdf(ys + 1.0, k, scale=theta)
        np.testing.assert_allclose(gm.logpdf(ys), ref, rtol=1e-12)
    tab = Prior("a", 0, 1, "tabulated", x=[0, 0.5, 1], pdf=[0, 2, 0])
    assert tab.logpdf(np.array([0.25]))[0] == pytest.approx(np.log(1.0))
    rng = np.random.default_rng(0)
    draws = g.sample(rng, 20000)
    assert draws.min() >= 0 and draws.max() <= 2
    assert np.mean(draws) == pytest.approx(1.0, abs=0.02)


def test_uniform_linear_prior_is_flat_in_the_linear_quantity():
    # log_age flat in age: 10**log_age drawn from it is uniform on [10**lo, 10**hi]
    p = Prior("log_age", -1.0, 1.1, "uniform_linear")
    age = 10 ** p.sample(np.random.default_rng(1), 40000)
    counts, _ = np.histogram(age, bins=8, range=(0.1, 10**1.1))
    np.testing.assert_allclose(counts / counts.mean(), 1.0, atol=0.06)
    assert p.logpdf(np.array([1.0]))[0] - p.logpdf(np.array([0.0]))[0] == pytest.approx(
        np.log(10.0))


def test_joint_mass_prior_follows_mass():
    p = Prior("logzsol", -2, 0.2, "joint_mass", mu0=0.0, slope=0.3, pivot=10.0, sigma=0.2)
    lp_hi = p.logpdf(np.array([0.0, 0.0]), log_mstar=np.array([10.0, 8.0]))
    assert lp_hi[0] > lp_hi[1]  # solar metallicity is likelier at 1e10 Msun than at 1e8


def test_prior_outside_grid_is_an_error():
    with pytest.raises(InputError, match="outside the model grid"):
        build_priors(["dust2"], {"dust2": (0.0, 3.0)}, {"dust2": {"min": -1.0}})
    with pytest.raises(InputError, match="does not have"):
        build_priors(["dust2"], {"dust2": (0.0, 3.0)}, {"log_fagn": {}})


# ------------------------------------------------------------- likelihoods
def test_student_t_likelihood_resists_outliers():
    f = np.ones(10)
    v = np.full(10, 0.01)
    good = np.ones((1, 10))
    bad = good.copy()
    bad[0, 3] = 3.0  # a 20-sigma outlier in one band
    dg = photometry_loglike(f, v, good) - photometry_loglike(f, v, bad)
    dt = (photometry_loglike(f, v, good, kind="student_t")
          - photometry_loglike(f, v, bad, kind="student_t"))
    assert dg > 100 and dt < 0.1 * dg


def test_legendre_normalisation_removes_a_smooth_tilt():
    wave = np.linspace(4000, 9000, 500)
    model = 1 + 0.3 * np.sin(wave / 200.0)
    tilt = 1 + 0.5 * ((wave - 6500) / 2500) - 0.2 * ((wave - 6500) / 2500) ** 2
    fixed = legendre_normalise(wave, model * tilt, np.ones_like(wave), model[None], order=3)
    np.testing.assert_allclose(fixed[0], model * tilt, rtol=1e-6)


def test_line_mask():
    wave = np.array([6563.0 * 1.1, 6000.0 * 1.1])
    assert list(line_mask(wave, 0.1, 10.0)) == [False, True]


def test_weighted_percentiles_match_gaussian():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 0.5, 200000)[:, None]
    p = weighted_percentiles(x, np.ones(len(x)))
    np.testing.assert_allclose(p[:, 0], [1.5, 2.0, 2.5], atol=0.01)


def test_chi2_scale_is_the_least_squares_solution():
    rng = np.random.default_rng(2)
    m = rng.random((5, 6)) + 0.5
    f = 3.0 * m[2] + rng.normal(0, 0.01, 6)
    v = np.full(6, 1e-4)
    chi2, s = chi2_scale(f[None], v[None], m)
    assert np.argmin(chi2[0]) == 2 and s[0, 2] == pytest.approx(3.0, rel=0.01)
    brute = [min(np.sum((f - a * m[j]) ** 2 / v) for a in np.linspace(2.9, 3.1, 2001))
             for j in [2]]
    assert chi2[0, 2] == pytest.approx(brute[0], rel=1e-3)


def _section(name, values):
    """The ``fit.<name>`` section with the schema's defaults, ``values`` over them."""
    from sedmap.config import section

    return section("fit", {name: values})[name]


# ------------------------------------------------------------ recovery
def noisy_bins(model, truth, mass, z, rng, shape, snr=20.0):
    """A BinMap of ``shape`` whose bins are the models ``truth`` scaled by ``mass``
    (Msun formed) at z, observed with S/N ``snr`` in every band (fluxes in 1e-17)."""
    flux = model.photometry(truth, FILTERS, z).astype(float) * mass[:, None] / 1e-17
    err = flux / snr
    obs = flux + rng.normal(size=flux.shape) * err
    n = len(truth)
    return BinMap(galaxy="t", binmap=np.arange(1, n + 1).reshape(shape).astype(np.int32),
                  wcs=WCS(naxis=2), filters=Filters(FILTERS, pivot_wavelengths(FILTERS),
                                                    np.ones(12)),
                  flux=obs, flux_var=err**2, snr=obs / err, flag=np.zeros(n, np.int32))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    mc = load_config()["models"]
    mc.update(n_models=30000, chunk_size=10000, seed=11, dust_emission=False)
    mc["wavelength"]["R"] = 100
    mc["params"].update(dust1=[0.0, 1.0], dust2=[0.0, 1.0], log_age=[-0.5, 1.1])
    grid = read_model_grid(build_grid(mc, tmp / "grid.h5", progress=False))
    model = model_from_config(mc)
    rng = np.random.default_rng(5)
    nbin, z = 24, 0.02
    ranges = {"logzsol": (-1.0, 0.2), "log_age": (0.0, 1.0), "log_tau": (-0.5, 1.0),
              "dust1": (0.0, 0.8), "dust2": (0.05, 0.6), "dust_index": (-1.0, 0.0),
              "gas_logu": (-3.5, -1.5)}
    truth = np.column_stack([rng.uniform(*ranges[n], nbin) for n in model.param_names])
    mass = 10 ** rng.uniform(7.5, 9.0, nbin)
    bm = noisy_bins(model, truth, mass, z, rng, (4, 6))
    run_rdsps(bm, grid, z, tmp / "rd", progress=False)
    der = model.derived(truth)
    log_mstar = np.log10(mass * der["surviving_mass"])
    return {"tmp": tmp, "grid": grid, "model": model, "bm": bm, "truth": truth,
            "log_mstar": log_mstar, "z": z}


def test_rdsps_recovers_stellar_mass(setup):
    rec = np.array([read_fit_result(setup["tmp"] / "rd" / f"bin_{k}.h5").percentiles["log_mstar"]
                    for k in range(1, 25)])
    d = rec[:, 1] - setup["log_mstar"]
    assert abs(np.mean(d)) < 0.1 and np.std(d) < 0.15
    cover = np.mean((setup["log_mstar"] >= rec[:, 0]) & (setup["log_mstar"] <= rec[:, 2]))
    assert cover > 0.5


def test_mcmc_recovers_mass_and_dust(setup):
    out = setup["tmp"] / "mc.h5"
    hits, errs = 0, []
    for k in (1, 2, 3):
        fit_bin_mcmc(k, setup["bm"], setup["grid"], setup["tmp"] / "rd" / f"bin_{k}.h5",
                     setup["z"], out, nwalkers=40, nsteps=400, burn=200, seed=3,
                     model=setup["model"], moves="stretch")
        r = read_fit_result(out)
        assert 0.1 < r.acceptance_fraction < 0.8
        p = r.percentiles["log_mstar"]
        errs.append(p[1] - setup["log_mstar"][k - 1])
        hits += p[0] - 0.05 <= setup["log_mstar"][k - 1] <= p[2] + 0.05
        assert r.bestfit_photometry.shape == (12,)
    assert np.max(np.abs(errs)) < 0.25 and hits >= 2


def test_map_improves_on_the_best_rdsps_model(setup):
    """The MAP method (fit.method: map): its best fit is the continuous maximum, at
    least as good as the best RDSPS model it starts from and better on most bins
    (the grid's nearest model is not the optimum); its percentiles stay RDSPS's; it
    records its method and the grid's SFH. Seeded: the same bytes twice."""
    from sedmap.config import section
    from sedmap.fit.optimize import fit_bins_map

    tmp, bins = setup["tmp"], [1, 2, 3, 5, 6]
    rd = [tmp / "rd" / f"bin_{k}.h5" for k in bins]
    out = [tmp / "map" / f"bin_{k}.h5" for k in bins]
    kw = {k: v for k, v in section("fit").items()
          if k in ("sys_err", "likelihood", "nu", "spectrum", "free_redshift")}
    fit_bins_map(bins, setup["bm"], setup["grid"], rd, setup["z"], out, **kw)
    better = 0
    for path, rd_path in zip(out, rd):
        r, r0 = read_fit_result(path), read_fit_result(rd_path)
        assert r.method == "map" and r.sfh == setup["grid"].sfh == {"name": "delayed_tau"}
        assert r.chi2 <= r0.chi2 * (1 + 1e-6) + 1e-6
        better += r.chi2 < 0.9 * r0.chi2
        assert r.percentiles.keys() == r0.percentiles.keys()
        assert all(np.array_equal(r.percentiles[n], r0.percentiles[n]) for n in r.percentiles)
        # the reported chi^2 is the stored best fit's
        f, v = setup["bm"].flux[r.bin_id - 1], setup["bm"].flux_var[r.bin_id - 1]
        assert np.sum((f - r.bestfit_photometry) ** 2 / v) == pytest.approx(r.chi2, rel=1e-4)
    assert better >= 3
    again = tmp / "map_again.h5"
    fit_bins_map([1], setup["bm"], setup["grid"], rd[:1], setup["z"], [again], **kw)
    assert again.read_bytes() == out[0].read_bytes()


def test_fit_method_registry_drives_the_fit_job(setup, tmp_path):
    """run_fit_job asks fit.method's registry entry: map refits the job's bins (method
    'map'), rdsps copies the RDSPS files; an unknown method is refused by name."""
    from dataclasses import replace

    from sedmap.config import section
    from sedmap.fit.methods import get_method
    from sedmap.io import write_bin_map
    from sedmap.stages import run_fit_job

    tmp = setup["tmp"]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    binmap = write_bin_map(replace(setup["bm"], wcs=wcs), tmp_path / "binmap.fits")
    grid = tmp / "grid.h5"
    shutil.copytree(tmp / "rd", tmp_path / "rd")
    for method in ("map", "rdsps"):
        cfg = section("fit", {"method": method, "map": {"starts": 1}})
        outs = run_fit_job([7, 8], binmap, grid, tmp_path / "rd", setup["z"],
                           [tmp_path / method / f"bin_{k}.h5" for k in (7, 8)], cfg)
        assert [read_fit_result(p).method for p in outs] == [method] * 2
    with pytest.raises(InputError, match="no fit method is called 'nested'"):
        get_method("nested")


def test_mcmc_is_seeded(setup):
    a, b = setup["tmp"] / "a.h5", setup["tmp"] / "b.h5"
    for path in (a, b):
        fit_bin_mcmc(4, setup["bm"], setup["grid"], setup["tmp"] / "rd" / "bin_4.h5",
                     setup["z"], path, nwalkers=20, nsteps=30, burn=10, seed=9,
                     model=setup["model"])
    assert a.read_bytes() == b.read_bytes()


def test_mcmc_holds_fixed_parameters_out_of_the_sampler(setup):
    from sedmap.fit.mcmc import PhotometryPosterior, mass_prior_from, run_mcmc

    model, bm = setup["model"], setup["bm"]
    names = model.param_names
    ranges = {n: (-1.0, 0.2) if n == "logzsol" else (0.0, 1.0) for n in names}
    ranges.update(log_age=(0.0, 1.0), log_tau=(-0.5, 1.0), dust_index=(-0.7 - 1e-6, -0.7 + 1e-6),
                  gas_logu=(-2.5 - 1e-6, -2.5 + 1e-6))  # two held fixed, as grid_ranges gives
    pri = build_priors(names, ranges)
    post = PhotometryPosterior(model, FILTERS, setup["z"], bm.flux[0] * 1e-17,
                               bm.flux_var[0] * 1e-34, pri, mass_prior_from(8.5))
    assert post.ndim == len(names) - 2 + 1
    rng = np.random.default_rng(0)
    free = [pri[i] for i in post.free]
    p0 = np.column_stack([rng.uniform(p.lo, p.hi, 16) for p in free] + [rng.uniform(8, 9, 16)])
    out = run_mcmc(post, p0, 12, 4, seed=1)
    cols = {n: out["samples"][:, out["names"].index(n)] for n in ("dust_index", "gas_logu")}
    np.testing.assert_allclose(cols["dust_index"], -0.7)
    np.testing.assert_allclose(cols["gas_logu"], -2.5)
    assert out["autocorr_time"].size == post.ndim
    # the full vector puts the fixed values back where the model expects them
    full = post.full(p0[:2])
    assert full.shape == (2, len(names) + 1)
    assert np.all(full[:, names.index("gas_logu")] == -2.5)


def test_mcmc_derived_columns_are_those_of_the_sampled_models(setup):
    """The derived quantities come back from the sampler (emcee blobs, no second SPS
    pass): every sample's stellar mass, SFR and age are what the model gives for
    that sample's parameters, and the best-fit photometry is the best sample's."""
    from sedmap.fit.driver import grid_ranges
    from sedmap.fit.mcmc import PhotometryPosterior, mass_prior_from, run_mcmc
    from sedmap.fit.rdsps import derived_columns

    model, bm = setup["model"], setup["bm"]
    names = model.param_names
    pri = build_priors(names, grid_ranges(setup["grid"]))
    post = PhotometryPosterior(model, FILTERS, setup["z"], bm.flux[1] * 1e-17,
                               bm.flux_var[1] * 1e-34, pri, mass_prior_from(8.5))
    rng = np.random.default_rng(2)
    free = [pri[i] for i in post.free]
    p0 = np.column_stack([rng.uniform(p.lo, p.hi, 16) for p in free] + [rng.uniform(8, 9, 16)])
    out = run_mcmc(post, p0, 40, 10, seed=4)
    samples, cols = out["samples"], out["names"]
    full = samples[:, [cols.index(n) for n in names + ["log_mass_formed"]]]
    phot, der = post.photometry(full)
    want = derived_columns(full[:, :-1], names, der, 10 ** full[:, -1])
    for name in ("log_mstar", "log_sfr", "age_mw"):
        np.testing.assert_allclose(samples[:, cols.index(name)], want[name], rtol=1e-9,
                                   atol=1e-9, err_msg=name)
    assert len(np.unique(samples[:, cols.index("age_mw")])) > 10  # not one model repeated
    best = np.argmin(np.abs(full - out["best_theta"]).sum(axis=1))
    np.testing.assert_allclose(out["best_photometry"], phot[best], rtol=1e-6)  # float32 spectra


# the mpiexec of the MPI that mpi4py was built with (the venv's, from the mpich wheel)
# first: a system Open MPI on PATH cannot start it
_VENV_MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPIEXEC = str(_VENV_MPIEXEC) if _VENV_MPIEXEC.exists() else (shutil.which("mpiexec") or "")


@pytest.mark.mpi
@pytest.mark.skipif(not MPIEXEC, reason="no mpiexec (pip install mpich)")
def test_rdsps_under_mpi_writes_the_serial_bytes(setup, tmp_path):
    """`sedmap rdsps` (the workflow's rdsps rule) on 2 MPI ranks = 1 process, byte for
    byte, with a population prior (estimated from the bins of both ranks) whose
    widths and correlations move and whose grid every rank draws alike (regrid)."""
    import dataclasses

    from sedmap.io import write_bin_map

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.cdelt = [150.0, 2.0], [-4e-4, 4e-4]
    bm_path = tmp_path / "binmap.fits"
    write_bin_map(dataclasses.replace(setup["bm"], wcs=wcs), bm_path)
    args = ["-m", "sedmap.cli", "rdsps", "--binmap", str(bm_path), "--grid",
            str(setup["tmp"] / "grid.h5"), "--z", "0.02", "--confhash", "abc",
            "--fit-json", json.dumps({"sys_err": 0.03, "likelihood": "student_t",
                                      "priors": {"log_tau": {"form": "gaussian", "mu": 0.0,
                                                             "sigma": 0.5},
                                                 "dust2": {"form": "gaussian", "mu": 0.3,
                                                           "sigma": 0.5}},
                                      "population_prior": {"enabled": True, "widths": True,
                                                           "covariance": True,
                                                           "regrid": True}})]
    for cmd, out in (([sys.executable], "serial"), ([MPIEXEC, "-n", "2", sys.executable], "mpi")):
        run = subprocess.run(cmd + args + ["--out", str(tmp_path / out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
    names = sorted(p.name for p in (tmp_path / "serial").glob("bin_*.h5"))
    assert len(names) == setup["bm"].n_bin
    assert names == sorted(p.name for p in (tmp_path / "mpi").glob("bin_*.h5"))
    for name in names + ["population_prior.json"]:  # the population prior from all ranks' bins
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "mpi" / name).read_bytes()


def test_rdsps_reading_spectra_from_disk_gives_the_same_bytes(setup, tmp_path):
    """A grid read without its spectra (RDSPS reads them chunk by chunk from the
    file, so a grid need not fit in memory, nor once per MPI rank) fits the same."""
    lazy = read_model_grid(setup["tmp"] / "grid.h5", spectra=False)
    assert lazy.spectra is None
    paths = run_rdsps(setup["bm"], lazy, setup["z"], tmp_path, progress=False)
    for p in paths:
        assert p.read_bytes() == (setup["tmp"] / "rd" / p.name).read_bytes()


def test_bad_bin_is_flagged_not_fatal(setup, tmp_path):
    bm = setup["bm"]
    bm2 = BinMap(galaxy="t", binmap=bm.binmap, wcs=bm.wcs, filters=bm.filters,
                 flux=bm.flux.copy(), flux_var=bm.flux_var.copy(), snr=bm.snr,
                 flag=bm.flag.copy())
    bm2.flux[5] = np.nan
    bm2.flag[5] = 2
    paths = run_rdsps(bm2, setup["grid"], setup["z"], tmp_path, progress=False)
    assert read_fit_result(paths[5]).flag == 2
    assert read_fit_result(paths[4]).flag == 0


def test_mcmc_subset_is_seeded_and_avoids_flagged_bins():
    from sedmap.config import load_config
    from sedmap.fit.methods import fit_bins, fit_jobs

    flags = np.zeros(50, int)
    flags[:10] = 1
    cfg = load_config()["fit"]
    cfg.update(method="mcmc", bins_per_job=7)
    cfg["mcmc"].update(subset=20, seed=3)
    a = fit_bins(flags, cfg)
    assert a == fit_bins(flags, cfg) and len(a) == 20 and min(a) > 10
    assert [len(j) for j in fit_jobs(flags, cfg)] == [7, 7, 6]
    cfg["mcmc"]["subset"] = 0
    assert fit_bins(flags, cfg) == list(range(1, 51))
    cfg["method"] = "map"  # every bin, flagged ones too (they get their flagged result)
    assert fit_bins(flags, cfg) == list(range(1, 51))
    cfg["method"] = "rdsps"
    assert fit_bins(flags, cfg) == [] and fit_jobs(flags, cfg) == []


def test_rdsps_priors_act_as_importance_weights():
    from sedmap.fit.rdsps import fit_rdsps

    rng = np.random.default_rng(4)
    n = 4000
    params = rng.uniform(0, 1, (n, 1))
    phot = np.column_stack([np.ones(n), 1 + 0.01 * params[:, 0]])  # nearly uninformative
    derived = {k: np.ones(n) for k in ("surviving_mass", "sfr_100myr", "mass_weighted_age",
                                       "dust_mass")}
    flux = np.array([[100.0, 100.5]])
    var = np.full((1, 2), 1.0)
    flat = fit_rdsps(flux, var, phot, params, ["a"], derived, chi2_percentile=100)[0]
    pri = Prior("a", 0, 1, "gaussian", mu=0.2, sigma=0.05)
    tilted = fit_rdsps(flux, var, phot, params, ["a"], derived, chi2_percentile=100,
                       log_prior=pri.logpdf(params[:, 0]))[0]
    assert flat["percentiles"][1, 0] == pytest.approx(0.5, abs=0.05)
    assert tilted["percentiles"][1, 0] == pytest.approx(0.2, abs=0.02)


def test_population_prior_moves_the_centre_towards_the_bins_and_reaches_mcmc(setup, tmp_path):
    """fit.population_prior: a Gaussian prior on log_tau centred off the bins' truths
    (uniform in [-0.5, 1.0]) moves towards them; RDSPS is refitted with it, and
    the MCMC fits read it from population_prior.json."""
    from sedmap.fit.driver import POPULATION_FILE, read_population_priors

    bm, grid, z = setup["bm"], setup["grid"], setup["z"]
    priors = {"log_tau": {"form": "gaussian", "mu": -0.4, "sigma": 0.3}}
    itau = setup["model"].param_names.index("log_tau")
    truth = setup["truth"][:, itau]
    med = {}
    for on in (False, True):
        run_rdsps(bm, grid, z, tmp_path / str(on), priors=priors, progress=False,
                  population=_section("population_prior", {"enabled": on}))
        med[on] = np.array([read_fit_result(tmp_path / str(on) / f"bin_{k}.h5")
                            .percentiles["log_tau"][1] for k in range(1, 25)])
    assert not (tmp_path / "False" / POPULATION_FILE).exists()
    rec = json.loads((tmp_path / "True" / POPULATION_FILE).read_text())
    mu = rec["priors"]["log_tau"]["mu"]
    assert rec["n_bins"] == 24 and rec["initial"] == {"log_tau": {"mu": -0.4, "sigma": 0.3}}
    assert -0.4 + 0.2 < mu < np.mean(truth) + 0.3, (mu, np.mean(truth))
    # the refitted bins are nearer their truths on average
    assert np.mean(np.abs(med[True] - truth)) < np.mean(np.abs(med[False] - truth))
    pri = read_population_priors(tmp_path / "True" / POPULATION_FILE)
    assert pri["log_tau"]["sigma"] == 0.3 and pri["log_tau"]["form"] == "gaussian"
    out = fit_bin_mcmc(1, bm, grid, tmp_path / "True" / "bin_1.h5", z, tmp_path / "mc.h5",
                       nwalkers=24, nsteps=60, burn=20, priors=priors, model=setup["model"],
                       population_prior=tmp_path / "True" / POPULATION_FILE)
    assert read_fit_result(out).percentiles["log_tau"].shape == (3,)
    with pytest.raises(InputError, match="population prior"):
        fit_bin_mcmc(1, bm, grid, tmp_path / "True" / "bin_1.h5", z, tmp_path / "mc.h5",
                     nwalkers=24, nsteps=60, burn=20, model=setup["model"],
                     population_prior=tmp_path / "nosuch.json")


def test_population_widths_and_regrid_raise_the_effective_sample_size(setup, tmp_path):
    """fit.population_prior with widths: a broad dust2 prior narrows to the bins'
    spread; reweighting the shared grid to it leaves fewer effective models per
    bin, while regrid (a grid drawn from the population priors) gives more, and
    its best-fit spectra, recomputed, give its best-fit photometry."""
    from sedmap.filters import filter_matrix
    from sedmap.fit.driver import POPULATION_FILE

    bm, grid, z = setup["bm"], setup["grid"], setup["z"]
    priors = {"dust2": {"form": "gaussian", "mu": 0.35, "sigma": 0.6}}
    ess, rec = {}, {}
    for regrid in (False, True):
        out = tmp_path / str(regrid)
        run_rdsps(bm, grid, z, out, priors=priors, progress=False,
                  population=_section("population_prior", {"enabled": True, "widths": True,
                                                            "min_width": 0.1,
                              "regrid": regrid}))
        res = [read_fit_result(out / f"bin_{k}.h5") for k in range(1, 25)]
        ess[regrid] = np.median([r.effective_sample_size for r in res])
        rec[regrid] = json.loads((out / POPULATION_FILE).read_text())
    sig = rec[True]["priors"]["dust2"]["sigma"]
    assert rec[True]["widths"] and rec[True]["regrid"]
    assert rec[False]["priors"] == rec[True]["priors"]  # the estimate precedes the regrid
    # the truths are uniform in [0.05, 0.6] (sd 0.16); one bin's dust2 is uncertain
    # by about as much, so 24 bins pin the spread down only roughly
    assert 0.1 < sig < 0.4, sig
    assert ess[True] > 1.3 * ess[False], ess
    r = res[0]  # spectrum on the observed grid, erg/s/cm^2/AA / fscale
    np.testing.assert_allclose(filter_matrix(list(bm.filters.name), r.bestfit_wave)
                               @ r.bestfit_spectrum, r.bestfit_photometry, rtol=1e-4)


def test_population_covariance_reaches_the_regrid_and_mcmc(setup, tmp_path):
    """fit.population_prior.covariance: the Gaussian priors' correlation is
    estimated and written as the priors' ``correlation``; the regrid draws its
    models from the joint prior (importance weights all equal, the drawn
    correlation the estimated one) and MCMC's prior includes it."""
    from sedmap.fit.driver import (
        POPULATION_FILE,
        effective_priors,
        grid_log_prior,
        population_grid,
        read_population_priors,
    )
    from sedmap.priors import CORRELATION

    bm, grid, z = setup["bm"], setup["grid"], setup["z"]
    priors = {"dust2": {"form": "gaussian", "mu": 0.35, "sigma": 0.6},
              "log_tau": {"form": "gaussian", "mu": 0.2, "sigma": 0.6}}
    run_rdsps(bm, grid, z, tmp_path, priors=priors, progress=False,
              population=_section("population_prior", {"enabled": True, "widths": True,
                                                        "covariance": True}))
    rec = json.loads((tmp_path / POPULATION_FILE).read_text())
    corr = rec["priors"][CORRELATION]
    names = [n for n in setup["model"].param_names if n in priors]
    assert rec["covariance"] and corr["names"] == names
    c = np.array(corr["matrix"])
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert 0.0 < abs(c[0, 1]) < 0.995
    fit_priors = {**priors, **read_population_priors(tmp_path / POPULATION_FILE)}
    drawn = population_grid(grid, fit_priors, list(bm.filters.name), z)
    lw = grid_log_prior(drawn, fit_priors)
    np.testing.assert_allclose(lw, lw[0], atol=1e-9)  # drawn from exactly the fit's prior
    cols = [drawn.param_names.index(n) for n in names]
    mu = [fit_priors[n]["mu"] for n in names]
    sd = np.array([fit_priors[n]["sigma"] for n in names])
    lo, hi = np.array([[fit_priors[n]["min"], fit_priors[n]["max"]] for n in names]).T
    ref = np.random.default_rng(0).multivariate_normal(mu, c * np.outer(sd, sd), 400000)
    ref = ref[np.all((ref >= lo) & (ref <= hi), axis=1)]  # the same truncated joint prior
    assert np.corrcoef(drawn.params[:, cols].T)[0, 1] == pytest.approx(
        np.corrcoef(ref.T)[0, 1], abs=0.03)
    assert effective_priors(drawn)[CORRELATION] == corr  # the regrid's draw config has it
    out = fit_bin_mcmc(1, bm, grid, tmp_path / "bin_1.h5", z, tmp_path / "mc.h5",
                       nwalkers=24, nsteps=40, burn=10, priors=priors, model=setup["model"],
                       population_prior=tmp_path / POPULATION_FILE)
    assert read_fit_result(out).percentiles["dust2"].shape == (3,)
    # priors correlated by hand cannot be the starting point of the estimate
    with pytest.raises(InputError, match="correlated already"):
        run_rdsps(bm, grid, z, tmp_path / "again", priors=fit_priors, progress=False,
                  population=_section("population_prior", {"enabled": True}))


# ------------------------------------------------------ joint photometry + spectrum
def test_joint_fit_with_a_spectrum_narrows_age_and_metallicity(setup, tmp_path):
    """A bin with an IFS-like spectrum (S/N 30 per pixel, R = 1000, 3700-7400 AA,
    a smooth calibration tilt the Legendre normalisation must absorb): the joint
    fit reaches chi^2/pixel near 1 on the spectrum, recovers the truth, and its
    age and metallicity intervals are narrower than the photometry-only fit's."""
    from dataclasses import replace

    from sedmap.fit.driver import spectrum_model_config
    from sedmap.sps.wavelength import resample

    k, z = 6, setup["z"]
    bm, grid = setup["bm"], setup["grid"]
    truth = setup["truth"][k - 1]
    names = setup["model"].param_names
    wave = 3700.0 * np.exp(np.arange(int(1000 * np.log(7400 / 3700))) / 1000.0)
    model = model_from_config(spectrum_model_config(grid.model_config, wave, z, 1000.0))
    rest = model.spectra(truth[None])
    wobs, flam = model.observed(rest, z)
    phot = setup["model"].photometry(truth[None], FILTERS, z)[0]
    scale = bm.flux[k - 1, 4] * 1e-17 / phot[4]  # mass from the r band
    x = (wave - wave.mean()) / np.ptp(wave)
    spec = resample(wobs, flam.astype(float), wave)[0] * scale * (1 + 0.15 * x) / 1e-17
    err = spec / 30.0
    rng = np.random.default_rng(2)
    n = bm.flux.shape[0]
    bin_spec = np.full((n, wave.size), np.nan)
    bin_var = np.full((n, wave.size), np.nan)
    bin_spec[k - 1] = spec + rng.normal(size=wave.size) * err
    bin_var[k - 1] = err**2
    bms = replace(bm, wave=wave, bin_spec=bin_spec, bin_spec_var=bin_var)
    rd = setup["tmp"] / "rd" / f"bin_{k}.h5"
    kw = {"nwalkers": 40, "nsteps": 400, "burn": 250, "seed": 4}
    fit_bin_mcmc(k, bms, grid, rd, z, tmp_path / "phot.h5", model=setup["model"], **kw)
    fit_bin_mcmc(k, bms, grid, rd, z, tmp_path / "joint.h5", model=model,
                 spectrum=_section("spectrum", {"enabled": True, "order": 3, "del_wave": 10.0,
                                               "clip": 5.0}), **kw)
    ph, jt = read_fit_result(tmp_path / "phot.h5"), read_fit_result(tmp_path / "joint.h5")
    assert ph.n_spec == 0 and np.isnan(ph.chi2_spec)
    assert jt.n_spec > 0.8 * wave.size
    assert 0.6 < jt.chi2_spec / jt.n_spec < 1.5
    true = {"logzsol": truth[names.index("logzsol")],
            "age_mw": float(setup["model"].derived(truth[None])["mass_weighted_age"][0])}
    for name, tol in (("logzsol", 0.05), ("age_mw", 0.3)):
        p, q = jt.percentiles[name], ph.percentiles[name]
        assert p[0] - tol <= true[name] <= p[2] + tol, (name, p, true[name])
        assert (p[2] - p[0]) < 0.7 * (q[2] - q[0]), (name, p, q)
    # a bin without a spectrum (NaN) is fitted on its photometry alone
    fit_bin_mcmc(k + 1, bms, grid, setup["tmp"] / "rd" / f"bin_{k + 1}.h5", z,
                 tmp_path / "none.h5", model=setup["model"],
                 spectrum=_section("spectrum", {"enabled": True}),
                 nwalkers=16, nsteps=20, burn=10, seed=4)
    assert read_fit_result(tmp_path / "none.h5").n_spec == 0


# ----------------------------------------------------------------- free redshift
def test_free_redshift_photometry_matches_the_model_at_that_z(setup):
    from sedmap.fit.mcmc import PhotometryPosterior, mass_prior_from

    model, bm = setup["model"], setup["bm"]
    names = model.param_names
    pri = build_priors(names, {n: (-3.0, 3.0) for n in names})
    post = PhotometryPosterior(model, FILTERS, 0.02, bm.flux[0] * 1e-17,
                               bm.flux_var[0] * 1e-34, pri, mass_prior_from(8.5))
    post.free_redshift(Prior("redshift", 0.01, 0.03, form="gaussian", mu=0.02, sigma=0.005))
    assert post.ndim == len(post.free) + 2
    truth = setup["truth"][:3]
    full = np.column_stack([truth, np.full(3, 9.0)])
    for z in (0.0113, 0.0237, 0.0299):
        phot, _ = post.photometry(full, z=np.full(3, z))
        expect = model.photometry(truth, FILTERS, z).astype(float) * 1e9
        np.testing.assert_allclose(phot, expect, rtol=2e-3)
    # the distance matters: 0.0237 is 0.15 dex fainter than 0.02
    ratio = post.photometry(full, z=np.full(3, 0.0237))[0] / post.photometry(full,
                                                                         z=np.full(3, 0.02))[0]
    assert np.all((ratio > 0.6) & (ratio < 0.8))


def test_free_redshift_widens_the_mass_by_the_distance_uncertainty(setup, tmp_path):
    """With z free under a prior of sigma 0.005 at z = 0.02 (broad bands cannot
    pin z better: its posterior is the prior), the luminosity distance adds about
    2 sigma_z / (z ln 10) = 0.22 dex to log M* in quadrature (0.17 measured),
    the samples follow the M ~ d_L^2 ridge, and the truth stays inside."""
    k, z = 8, setup["z"]
    rd = setup["tmp"] / "rd" / f"bin_{k}.h5"
    kw = {"nwalkers": 40, "nsteps": 500, "burn": 250, "seed": 6, "model": setup["model"]}
    fit_bin_mcmc(k, setup["bm"], setup["grid"], rd, z, tmp_path / "fixed.h5", **kw)
    fit_bin_mcmc(k, setup["bm"], setup["grid"], rd, z, tmp_path / "free.h5",
                 free_redshift=_section("free_redshift", {"enabled": True, "sigma": 0.005,
                                                          "max_shift": 0.015}), **kw)
    fixed, free = read_fit_result(tmp_path / "fixed.h5"), read_fit_result(tmp_path / "free.h5")
    assert "redshift" in free.param_names and "redshift" not in fixed.param_names
    pz = free.percentiles["redshift"]
    assert abs(pz[1] - z) < 0.003 and 0.003 < 0.5 * (pz[2] - pz[0]) < 0.006
    m_fixed, m_free = fixed.percentiles["log_mstar"], free.percentiles["log_mstar"]
    half, half0 = 0.5 * (m_free[2] - m_free[0]), 0.5 * (m_fixed[2] - m_fixed[0])
    added = np.sqrt(half**2 - half0**2)   # the width the redshift adds, in quadrature
    assert 0.12 < added < 0.3, (m_free, m_fixed)
    assert m_free[0] - 0.05 <= setup["log_mstar"][k - 1] <= m_free[2] + 0.05
    # log M* follows the redshift in the samples (the distance)
    s = free.samples
    c = np.corrcoef(s[:, free.param_names.index("redshift")],
                    s[:, free.param_names.index("log_mstar")])[0, 1]
    assert c > 0.7, c


def test_rdsps_intervals_are_calibrated_on_truths_drawn_from_the_prior(tmp_path):
    """Simulation-based calibration: 300 bins whose truths are drawn from the
    fit's prior (the grid's own draw density, another seed), at S/N 20. Then
    every parameter's 68% intervals must cover about 68% of the truths; a
    likelihood with the wrong variances, weights or percentiles would not
    (binomial sd 0.027). Needs enough models per posterior: 80k models in 5
    free dimensions give a median effective sample size near 100 (at 30k in
    7 dimensions it is 5, and the intervals cover only about 0.47)."""
    from sedmap.models import draw_parameters

    mc = load_config()["models"]
    mc.update(n_models=80000, chunk_size=20000, seed=11, dust_emission=False)
    mc["wavelength"]["R"] = 100
    mc["params"].update(dust1=[0.0, 1.0], dust2=[0.0, 1.0], log_age=[-0.5, 1.1],
                        dust_index=-0.7, gas_logu=-2.5)
    grid = read_model_grid(build_grid(mc, tmp_path / "grid.h5", progress=False))
    model = model_from_config(mc)
    n, z = 300, 0.02
    truth = draw_parameters({**mc, "seed": 99, "n_models": n}, model)
    rng = np.random.default_rng(3)
    mass = 10 ** rng.uniform(7.5, 9.0, n)
    bm = noisy_bins(model, truth, mass, z, rng, (15, 20))
    run_rdsps(bm, grid, z, tmp_path / "rd", progress=False)
    res = [read_fit_result(tmp_path / "rd" / f"bin_{k}.h5") for k in range(1, n + 1)]
    assert np.median([r.effective_sample_size for r in res]) > 50
    values = {name: truth[:, j] for j, name in enumerate(model.param_names)
              if name not in ("dust_index", "gas_logu")}  # those two are fixed
    values["log_mstar"] = np.log10(mass * model.derived(truth)["surviving_mass"])
    for name, t in values.items():
        p = np.array([r.percentiles[name] for r in res])
        cover = np.mean((t >= p[:, 0]) & (t <= p[:, 2]))
        assert 0.58 <= cover <= 0.78, (name, cover)


def test_one_chi2_definition_with_calibration_errors(setup, tmp_path):
    """RDSPS and MCMC report the chi^2 of the variance they fit with: the binned
    flux's, plus (sys_err^2 + calib_err_b^2) f^2. The bands' zero-point errors
    (FILTERS.calib_err) reach both fits: with 5% in every band the reported chi^2
    of the same best model falls as the formula says."""
    import copy

    from sedmap.fit.driver import band_sys_err

    bm = copy.deepcopy(setup["bm"])
    k, z = 5, setup["z"]
    bm.filters = Filters(list(bm.filters.name), bm.filters.pivot_aa,
                         bm.filters.psf_fwhm_arcsec, np.full(12, 0.05))
    s = band_sys_err(bm.filters, 0.02)
    np.testing.assert_allclose(s, np.hypot(0.02, 0.05))
    run_rdsps(bm, setup["grid"], z, tmp_path / "rd", sys_err=0.02, progress=False)
    rd = read_fit_result(tmp_path / "rd" / f"bin_{k}.h5")
    f, v = bm.flux[k - 1], bm.flux_var[k - 1]
    chi2 = np.sum((f - rd.bestfit_photometry) ** 2 / (v + (s * f) ** 2))
    assert rd.chi2 == pytest.approx(chi2, rel=1e-6)
    plain = np.sum((f - rd.bestfit_photometry) ** 2 / v)
    assert plain > 1.5 * chi2        # the errors' floor matters at S/N 20
    fit_bin_mcmc(k, bm, setup["grid"], tmp_path / "rd" / f"bin_{k}.h5", z, tmp_path / "mc.h5",
                 nwalkers=20, nsteps=60, burn=30, seed=2, sys_err=0.02, model=setup["model"])
    mc = read_fit_result(tmp_path / "mc.h5")
    chi2 = np.sum((f - mc.bestfit_photometry) ** 2 / (v + (s * f) ** 2))
    assert mc.chi2 == pytest.approx(chi2, rel=1e-6)
    assert mc.prior_width == rd.prior_width and rd.prior_width["log_mstar"] > 0


def test_rdsps_stores_a_compact_summary_of_its_posterior(setup):
    """200 systematic draws: the stored models' weights are counts / 200, the ESS is
    that of the full posterior, and the stored draws reproduce its percentiles."""
    from sedmap.fit.driver import STORED_DRAWS
    from sedmap.fit.rdsps import weighted_percentiles

    for k in (1, 7, 13):
        r = read_fit_result(setup["tmp"] / "rd" / f"bin_{k}.h5")
        assert r.samples.shape[0] <= STORED_DRAWS
        np.testing.assert_allclose(r.weights * STORED_DRAWS, np.round(r.weights * STORED_DRAWS),
                                   atol=1e-4)
        assert np.isfinite(r.ess) and r.effective_sample_size == r.ess
        j = r.param_names.index("log_mstar")
        p = weighted_percentiles(r.samples[:, j:j + 1], r.weights)[:, 0]
        full = r.percentiles["log_mstar"]
        assert np.all(np.abs(p - full) < 0.1 + 0.5 * (full[2] - full[0])), (p, full)


def test_population_prior_needs_enough_bins_and_says_so(setup, tmp_path, caplog):
    """With fewer than MIN_POPULATION_BINS unflagged bins the population prior is not
    estimated: the fits keep the configured priors (the same bytes as without it), a
    warning is logged and population_prior.json records why; MCMC then reads no
    moved priors."""
    import copy
    import logging

    from sedmap.fit.driver import MIN_POPULATION_BINS, POPULATION_FILE, read_population_priors

    bm = copy.deepcopy(setup["bm"])
    bm.flag = np.where(np.arange(bm.n_bin) < MIN_POPULATION_BINS - 1, 0, 1).astype(np.int32)
    priors = {"log_tau": {"form": "gaussian", "mu": -0.4, "sigma": 0.3}}
    with caplog.at_level(logging.WARNING, logger="sedmap.fit.driver"):
        run_rdsps(bm, setup["grid"], setup["z"], tmp_path / "on", priors=priors,
                  progress=False,
                  population=_section("population_prior", {"enabled": True, "widths": True}))
    assert any("at least" in r.message for r in caplog.records)
    rec = json.loads((tmp_path / "on" / POPULATION_FILE).read_text())
    assert rec["priors"] == {} and rec["n_bins"] == MIN_POPULATION_BINS - 1 and rec["skipped"]
    assert read_population_priors(tmp_path / "on" / POPULATION_FILE) == {}
    run_rdsps(bm, setup["grid"], setup["z"], tmp_path / "off", priors=priors, progress=False)
    for k in (1, 5, 20):
        assert ((tmp_path / "on" / f"bin_{k}.h5").read_bytes()
                == (tmp_path / "off" / f"bin_{k}.h5").read_bytes())


def _short_posterior(setup, k=0):
    from sedmap.fit.driver import grid_ranges
    from sedmap.fit.mcmc import PhotometryPosterior, initial_walkers, mass_prior_from

    rd = read_fit_result(setup["tmp"] / "rd" / f"bin_{k + 1}.h5")
    model, bm = setup["model"], setup["bm"]
    pri = build_priors(model.param_names, grid_ranges(setup["grid"]))
    lmf = rd.samples[:, rd.param_names.index("log_mass_formed")]
    post = PhotometryPosterior(model, FILTERS, setup["z"], bm.flux[k] * bm.fscale,
                               bm.flux_var[k] * bm.fscale**2, pri,
                               mass_prior_from(float(np.median(lmf))))
    cols = [rd.param_names.index(n) for n in model.param_names]
    p0 = initial_walkers(post, rd.samples[:, cols], rd.weights, lmf, 24,
                         np.random.default_rng(0))
    return post, p0


def test_mcmc_chain_grows_to_n_tau_autocorrelation_times(setup):
    """The chain grows past nsteps until it is n_tau autocorrelation times long after
    burn-in (the ESS then rests on a trustworthy tau); capped by max_steps, the bin
    says it did not get there."""
    from sedmap.fit.mcmc import run_mcmc

    post, p0 = _short_posterior(setup)
    out = run_mcmc(post, p0, 60, 20, seed=2, n_tau=8, max_steps=3000)
    tau = np.nanmax(out["autocorr_time"])
    assert out["converged"] and out["n_steps"] > 60
    assert out["n_steps"] - 20 >= 8 * tau and out["n_tau"] == pytest.approx(
        (out["n_steps"] - 20) / tau)
    assert out["ess"] == pytest.approx(24 * (out["n_steps"] - 20) / tau)
    assert out["samples"].shape[0] <= 24 * (out["n_steps"] - 20)
    capped = run_mcmc(post, p0, 60, 20, seed=2, n_tau=50, max_steps=90)
    assert capped["n_steps"] == 90 and not capped["converged"] and capped["n_tau"] < 50
    fixed = run_mcmc(post, p0, 60, 20, seed=2, n_tau=0, max_steps=3000)
    assert fixed["n_steps"] == 60 and fixed["converged"]


def test_mcmc_moves_are_a_registry(setup):
    from sedmap.fit.mcmc import MOVES, run_mcmc, sampler_moves

    assert {"de", "stretch"} <= set(MOVES)
    assert [type(m).__name__ for m, _ in sampler_moves("de", 8, np.zeros(8))] == \
        ["BinDEMove", "BinSnookerMove"]
    post, p0 = _short_posterior(setup)
    with pytest.raises(InputError, match="unknown MCMC moves 'gibbs'"):
        run_mcmc(post, p0, 30, 10, seed=1, moves="gibbs")


@pytest.mark.parametrize("move", ["BinDEMove", "BinSnookerMove", "BinStretchMove"])
def test_bin_moves_sample_a_known_posterior(move):
    """Each bin-wise move alone, on two bins whose posteriors are known Gaussians (one
    narrow axis, one broad, 5 dex apart): every bin's sample has its own mean and
    the right widths within 3%. (emcee's DESnookerMove gives widths 4-5% too small
    on the same test: its projection is not the snooker update's.)"""
    import emcee

    from sedmap.fit import mcmc as M

    nd, nw = 4, 24
    sig = np.array([1.0, 0.1, 2.0, 1.0])
    mus = np.array([np.zeros(nd), np.full(nd, 5.0)])

    def lp(theta):
        d = theta[:, :-1] - mus[np.rint(theta[:, -1]).astype(int)]
        return -0.5 * np.sum((d / sig) ** 2, axis=1)

    rng = np.random.default_rng(0)
    p0 = np.concatenate([np.column_stack([m + 0.1 * rng.normal(size=(nw, nd)), np.full(nw, j)])
                         for j, m in enumerate(mus)])
    mv = getattr(M, move)(nd, np.full(nd, 1e-4))
    s = emcee.EnsembleSampler(2 * nw, nd + 1, lp, vectorize=True, moves=[(mv, 1.0)])
    s.random_state = np.random.RandomState(1).get_state()
    s.run_mcmc(p0, 12000, skip_initial_state_check=True)
    ch = s.get_chain(discard=2000)
    for j in range(2):
        c = ch[:, j * nw:(j + 1) * nw, :nd].reshape(-1, nd)
        assert np.all(np.abs(c.mean(0) - mus[j]) < 0.1 * sig + 0.02), c.mean(0)
        np.testing.assert_allclose(c.std(0), sig, rtol=0.03)
        assert np.all(ch[:, j * nw:(j + 1) * nw, -1] == j)  # the slot never changes


def test_stacked_bins_keep_their_own_chains(setup):
    """Three bins in one stacked ensemble (one SPS call per half-step for all of them):
    each bin's walkers stay with its own data (their masses a dex or more apart stay
    apart), and each bin's posterior is the one it gets alone, within the chains'
    Monte Carlo error (medians within 0.35 of the 68% width); every bin has its own
    autocorrelation time (NaN for a parameter where a walker never moved, as emcee's)."""
    from sedmap.fit.mcmc import run_mcmc, run_mcmc_stacked

    pairs = [_short_posterior(setup, k) for k in (0, 3, 7)]
    kw = {"nsteps": 700, "burn": 300, "n_tau": 0}
    stacked = run_mcmc_stacked([p for p, _ in pairs], [p0 for _, p0 in pairs], seed=5, **kw)
    for (post, p0), st in zip(pairs, stacked):
        alone = run_mcmc(post, p0, seed=6, **kw)
        i = st["names"].index("log_mstar")
        a, b = st["percentiles"][:, i], alone["percentiles"][:, i]
        assert abs(a[1] - b[1]) < 0.35 * (b[2] - b[0]), (a, b)
        assert 0.6 < (a[2] - a[0]) / (b[2] - b[0]) < 1.6, (a, b)
        assert np.isfinite(st["autocorr_time"]).any()
    medians = [st["percentiles"][1, st["names"].index("log_mstar")] for st in stacked]
    lo_hi = [st["samples"][:, st["names"].index("log_mstar")] for st in stacked]
    # no walker of one bin wandered into another's posterior
    for j, m in enumerate(medians):
        others = [x for i, x in enumerate(medians) if i != j]
        assert np.all(np.abs(lo_hi[j] - m) < min(abs(o - m) for o in others) / 2 + 0.5)
    assert len({round(float(np.nanmax(st["autocorr_time"])), 3) for st in stacked}) == 3


def test_stacked_posterior_shared_pass_equals_bin_by_bin(setup):
    """Bins sharing their priors (all but the mass prior's range) are evaluated in one
    pass; it gives each bin's own log posterior and derived quantities, as the
    bin-by-bin loop does, including vectors outside a bin's mass range."""
    from sedmap.fit.mcmc import StackedPosterior

    pairs = [_short_posterior(setup, k) for k in (0, 3, 7)]
    stack = StackedPosterior([p for p, _ in pairs])
    assert stack.shared
    theta = np.concatenate([np.column_stack([p0, np.full(len(p0), j)])
                            for j, (_, p0) in enumerate(pairs)])
    theta[::7, -2] += 4.0  # outside that bin's mass prior (+-3 dex)
    lp, der = stack.evaluate(theta)
    stack.shared = False
    lp_loop, der_loop = stack.evaluate(theta)
    assert np.isinf(lp[::7]).all() and np.isfinite(lp[1::7]).all()
    np.testing.assert_allclose(lp, lp_loop, rtol=1e-12)
    np.testing.assert_allclose(der, der_loop, rtol=1e-12)
    for j, (post, _) in enumerate(pairs):  # and each bin's own posterior
        sel = theta[:, -1] == j
        np.testing.assert_allclose(lp[sel], post(theta[sel, :-1]), rtol=1e-12)


def test_mcmc_result_records_chain_length_and_convergence(setup):
    out = setup["tmp"] / "conv.h5"
    fit_bin_mcmc(5, setup["bm"], setup["grid"], setup["tmp"] / "rd" / "bin_5.h5", setup["z"],
                 out, nwalkers=24, nsteps=60, burn=20, seed=3, n_tau=50, max_steps=120,
                 model=setup["model"])
    r = read_fit_result(out)  # capped: 100 steps after burn-in are not 50 tau here
    assert r.converged == 0 and r.n_tau < 50 and r.n_steps == 120
    assert r.effective_sample_size == pytest.approx(
        24 * (r.n_steps - 20) / np.nanmax(r.autocorr_time))
