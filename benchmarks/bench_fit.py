"""Benchmark: RDSPS (1000 bins x 100k models x 12 bands) and MCMC, each against a
baseline timed in the same run.

* RDSPS baseline: the two bare matrix products of the same shapes that the
  analytic mass normalisation needs.
* MCMC, the workflow's unit: one job of ``fit.bins_per_job`` (10) demo-like bins
  (continuity SFH, 12 bands, S/N 20-40, the demo's 32 walkers, chains grown to 50
  autocorrelation times) in one stacked ensemble, against the same bins fitted one
  by one (the former per-bin jobs): CPU-seconds per bin and the ratio. The bins'
  parameters are the demo mock's; a second job draws them from the continuity
  prior (bursty, extreme histories), the hard case.
* MCMC, a hard bin: the default fit.mcmc settings (100 walkers) on a delayed-tau
  bin at S/N 20 with wide uniform priors, whose tau is ~200-360 steps: it reaches
  max_steps (6000) before 50 tau and says so. Baseline: one batched SPS call for
  as many models as the chain evaluated, at once.

Last line: JSON with rdsps_s_1000x100k, mcmc_job_s_per_bin, mcmc_single_s_per_bin,
mcmc_job_speedup, mcmc_job_n_tau_min, mcmc_job_converged (fraction),
mcmc_prior_job_s_per_bin, mcmc_prior_job_n_tau_min, mcmc_prior_job_converged,
mcmc_hard_s, mcmc_hard_n_tau.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from sedmap.config import load_config
from sedmap.filters import pivot_wavelengths
from sedmap.fit import fit_bin_mcmc, fit_bins_mcmc, run_rdsps
from sedmap.fit.rdsps import fit_rdsps
from sedmap.io import BinMap, Filters, read_fit_result, read_model_grid
from sedmap.models import build_grid, model_from_config

BANDS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
         "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]


def bench_rdsps():
    rng = np.random.default_rng(0)
    n_mod, n_bin, nb = 100_000, 1000, 12
    phot = rng.random((n_mod, nb)) + 0.1
    params = rng.random((n_mod, 6))
    derived = {k: rng.random(n_mod) + 0.1 for k in ("surviving_mass", "sfr_100myr",
                                                     "mass_weighted_age", "dust_mass")}
    true = rng.integers(0, n_mod, n_bin)
    flux = phot[true] * 1e3 * (1 + 0.03 * rng.normal(size=(n_bin, nb)))
    var = (0.03 * flux) ** 2
    t = time.perf_counter()
    fit_rdsps(flux, var, phot, params, ["a", "b", "c", "d", "e", "dust2"], derived)
    t_rdsps = time.perf_counter() - t
    t = time.perf_counter()
    for s in range(0, n_bin, 250):  # the same chunking, products only
        w = 1 / var[s:s + 250]
        _ = (flux[s:s + 250] * w) @ phot.T
        _ = w @ (phot**2).T
    t_base = time.perf_counter() - t
    print(f"RDSPS 1000 bins x 100k models x 12 bands: {t_rdsps:.2f} s; bare products "
          f"{t_base:.2f} s; ratio {t_rdsps / t_base:.1f}")
    return t_rdsps


def bench_mcmc(tmp):
    mc = load_config()["models"]
    mc.update(n_models=5000, chunk_size=5000, dust_emission=False)
    mc["wavelength"]["R"] = 100
    grid = read_model_grid(build_grid(mc, tmp / "grid.h5", progress=False))
    model = model_from_config(mc)
    rng = np.random.default_rng(1)
    truth = np.array([[0.0, 0.8, 0.3, 0.5, 0.3, -0.7, -2.5]])
    flux = model.photometry(truth, BANDS, 0.02).astype(float) * 1e9 / 1e-17
    err = flux / 20
    bm = BinMap(galaxy="b", binmap=np.ones((1, 1), np.int32), wcs=WCS(naxis=2),
                filters=Filters(BANDS, pivot_wavelengths(BANDS), np.ones(12)),
                flux=flux + rng.normal(size=flux.shape) * err, flux_var=err**2,
                snr=flux / err, flag=np.zeros(1, np.int32))
    run_rdsps(bm, grid, 0.02, tmp / "rd", progress=False)
    m = load_config()["fit"]["mcmc"]
    t = time.perf_counter()
    fit_bin_mcmc(1, bm, grid, tmp / "rd" / "bin_1.h5", 0.02, tmp / "mc.h5",
                 nwalkers=m["nwalkers"], nsteps=m["nsteps"], burn=m["burn"], moves=m["moves"],
                 n_tau=m["n_tau"], max_steps=m["max_steps"], model=model)
    t_mcmc = time.perf_counter() - t
    r = read_fit_result(tmp / "mc.h5")
    p = np.repeat(truth, m["nwalkers"] * r.n_steps, axis=0)
    t = time.perf_counter()
    model.photometry(p, BANDS, 0.02)
    t_base = time.perf_counter() - t
    print(f"MCMC {m['nwalkers']} walkers x {r.n_steps} steps ({r.n_tau:.0f} tau after burn-in, "
          f"{'converged' if r.converged else 'capped'}, ESS {r.ess:.0f}): {t_mcmc:.2f} s; "
          f"the same {len(p)} models in one batch {t_base:.2f} s; ratio {t_mcmc / t_base:.1f}")
    return t_mcmc, r


#: The demo's population prior on the continuity ratios (fit.population_prior, as
#: its RDSPS stage estimates it from the demo's 133 bins, rounded): the priors the
#: demo's MCMC bins are fitted with
DEMO_POPULATION_PRIOR = {
    f"log_sfr_ratio_{k}": {"form": "student_t", "nu": 2.0, "mu": mu, "sigma": sigma}
    for k, (mu, sigma) in enumerate([(0.12, 0.06), (-0.1, 0.15), (-0.17, 0.07),
                                     (-0.15, 0.12), (-0.2, 0.13)], start=1)}


#: the job's chain cap: the demo's former fit.mcmc.max_steps (the demo now allows
#: 15000, so that its two slowest bins reach its 20 tau; a bin that cannot reach
#: 50 tau costs what the cap allows)
JOB_MAX_STEPS = 9000


def bench_mcmc_job(tmp, n_bin=10, truth_from="demo", one_by_one=True):
    """One job of bins fitted with the demo's models section and MCMC settings (a
    5000-model grid): the stacked ensemble against the same bins one by one,
    CPU-seconds per bin.

    ``truth_from``: ``demo`` draws each bin's parameters as the demo's mock makes
    them (its gradients at a radius of 0-3 scale lengths: declining histories,
    metallicity and dust) and fits them with the demo's population prior
    (:data:`DEMO_POPULATION_PRIOR`); ``prior`` draws them from the configured
    continuity prior (ratios 0 +- 0.3, Student-t with two degrees of freedom:
    bursty and extreme histories, many of whose ratios the bands leave to the
    prior's heavy tails) and fits them with it.
    """
    import yaml

    demo = yaml.safe_load(Path("config/galaxies/demo.yaml").read_text())
    cfg = load_config()
    mc = cfg["models"]
    mc.update({k: v for k, v in demo["models"].items() if k != "params"})
    mc["params"].update(demo["models"]["params"])
    mc.update(n_models=5000, chunk_size=5000, dust_emission=False)
    grid = read_model_grid(build_grid(mc, tmp / "grid.h5", progress=False))
    model = model_from_config(mc)
    rng = np.random.default_rng(3)
    truth = grid.params[rng.choice(grid.n_model, n_bin, replace=False)]
    if truth_from == "demo":
        radius = rng.uniform(0.0, 3.0, n_bin)  # scale lengths
        for name, (centre, slope) in demo["mock"]["settings"]["gradients"].items():
            if name in grid.param_names:
                truth[:, grid.param_names.index(name)] = centre + slope * radius
    flux = model.photometry(truth, BANDS, 0.02).astype(float) * 10 ** rng.uniform(8, 9, (n_bin, 1))
    err = flux / rng.uniform(20, 40, (n_bin, 1)) / 1e-17
    flux = flux / 1e-17
    bm = BinMap(galaxy="b", binmap=np.arange(1, n_bin + 1, dtype=np.int32).reshape(1, -1),
                wcs=WCS(naxis=2), filters=Filters(BANDS, pivot_wavelengths(BANDS), np.ones(12)),
                flux=flux + rng.normal(size=flux.shape) * err, flux_var=err**2,
                snr=flux / err, flag=np.zeros(n_bin, np.int32))
    priors = DEMO_POPULATION_PRIOR if truth_from == "demo" else None
    run_rdsps(bm, grid, 0.02, tmp / "rd", progress=False, priors=priors)
    m = dict(load_config()["fit"]["mcmc"], **demo["fit"]["mcmc"])
    kw = {"nwalkers": m["nwalkers"], "nsteps": m["nsteps"], "burn": m["burn"], "moves": m["moves"],
          "n_tau": 50.0, "max_steps": JOB_MAX_STEPS, "model": model,
          "sys_err": demo["fit"]["sys_err"], "priors": priors}
    bins = list(range(1, n_bin + 1))
    rd = [tmp / "rd" / f"bin_{k}.h5" for k in bins]
    t = time.process_time()
    fit_bins_mcmc(bins, bm, grid, rd, 0.02, [tmp / f"job_{k}.h5" for k in bins], **kw)
    t_job = (time.process_time() - t) / n_bin
    t_one = np.nan
    if one_by_one:
        t = time.process_time()
        for k in bins:
            fit_bin_mcmc(k, bm, grid, rd[k - 1], 0.02, tmp / f"one_{k}.h5", **kw)
        t_one = (time.process_time() - t) / n_bin
    job = [read_fit_result(tmp / f"job_{k}.h5") for k in bins]
    n_tau = min(r.n_tau for r in job)
    steps = [r.n_steps for r in job]
    print(f"MCMC job of {n_bin} bins, truths from the {truth_from} ({m['nwalkers']} walkers "
          f"each, 50 tau, at most {JOB_MAX_STEPS} steps): {t_job:.2f} CPU-s per bin stacked "
          f"(steps {min(steps)}-{max(steps)}, n_tau >= {n_tau:.0f}, "
          f"{sum(r.converged for r in job)}/{n_bin} converged; "
          f"{1000 * t_job * n_bin / sum(steps):.2f} CPU-s per bin per 1000 steps)"
          + (f"; one by one {t_one:.2f} CPU-s per bin; speed-up {t_one / t_job:.2f}"
             if one_by_one else ""))
    return t_job, t_one, n_tau, sum(r.converged for r in job) / n_bin


def main():
    with tempfile.TemporaryDirectory() as d:
        t_job, t_one, n_tau_job, conv_job = bench_mcmc_job(Path(d))
    with tempfile.TemporaryDirectory() as d:
        t_prior, _, n_tau_prior, conv_prior = bench_mcmc_job(Path(d), truth_from="prior",
                                                             one_by_one=False)
    with tempfile.TemporaryDirectory() as d:
        t_mcmc, r = bench_mcmc(Path(d))
    t_rdsps = bench_rdsps()
    print(json.dumps({"rdsps_s_1000x100k": round(t_rdsps, 3),
                      "mcmc_job_s_per_bin": round(t_job, 3),
                      "mcmc_single_s_per_bin": round(t_one, 3),
                      "mcmc_job_speedup": round(t_one / t_job, 2),
                      "mcmc_job_n_tau_min": round(n_tau_job, 1),
                      "mcmc_job_converged": conv_job,
                      "mcmc_prior_job_s_per_bin": round(t_prior, 3),
                      "mcmc_prior_job_n_tau_min": round(n_tau_prior, 1),
                      "mcmc_prior_job_converged": conv_prior,
                      "mcmc_hard_s": round(t_mcmc, 3), "mcmc_hard_n_tau": round(r.n_tau, 1)}))


if __name__ == "__main__":
    main()
