"""Benchmark: RDSPS (1000 bins x 100k models x 12 bands) and one MCMC bin
(the default fit.mcmc settings: 100 walkers, differential-evolution moves, the
chain grown to 50 autocorrelation times after burn-in, at most 6000 steps), each
against a baseline timed in the same run.

* RDSPS baseline: the two bare matrix products of the same shapes that the
  analytic mass normalisation needs.
* MCMC baseline: one batched SPS call for as many models as the chain evaluated,
  at once.

Last line: JSON with rdsps_s_1000x100k, mcmc_s_per_bin, mcmc_steps, mcmc_n_tau.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from sedmap.config import load_config
from sedmap.filters import pivot_wavelengths
from sedmap.fit import fit_bin_mcmc, run_rdsps
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


def main():
    with tempfile.TemporaryDirectory() as d:
        t_mcmc, r = bench_mcmc(Path(d))
    t_rdsps = bench_rdsps()
    print(json.dumps({"rdsps_s_1000x100k": round(t_rdsps, 3), "mcmc_s_per_bin": round(t_mcmc, 3),
                      "mcmc_steps": r.n_steps, "mcmc_n_tau": round(r.n_tau, 1)}))


if __name__ == "__main__":
    main()
