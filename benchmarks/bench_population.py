"""Benchmark: the population prior (``fit.population_prior``) on 200 bins x 100k
models x 12 bands, against the plain RDSPS pass timed in the same run.

* baseline: ``run_rdsps`` without the population prior (one pass);
* centres + widths: the estimate and the refit against the shared grid;
* regrid: the same with the second pass on 100k models drawn from the
  population priors (their photometry computed, in memory);
* covariance: regrid with the Gaussian priors' correlations estimated too
  (``covariance``).

Last line: JSON with rdsps_s, population_s, population_regrid_s,
population_covariance_s and the
median effective sample sizes per bin.
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from sedmap.config import load_config, section
from sedmap.filters import pivot_wavelengths
from sedmap.fit import run_rdsps
from sedmap.io import BinMap, Filters, read_fit_result, read_model_grid
from sedmap.models import build_grid, model_from_config

BANDS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
         "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
PRIORS = {"log_tau": {"form": "gaussian", "mu": 0.25, "sigma": 0.8},
          "logzsol": {"form": "gaussian", "mu": -0.9, "sigma": 0.8},
          "dust2": {"form": "gaussian", "mu": 1.5, "sigma": 1.0}}


def main():
    mc = load_config()["models"]
    mc.update(n_models=100_000, chunk_size=5000, dust_emission=False)
    mc["wavelength"]["R"] = 100
    n_bin, z, fscale = 200, 0.02, 1e-17
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        grid = read_model_grid(build_grid(mc, tmp / "grid.h5", progress=False))
        t_grid = time.perf_counter() - t
        model = model_from_config(mc)
        rng = np.random.default_rng(2)
        # one galaxy's bins: a narrow population inside the broad priors
        truth = np.column_stack([
            {"logzsol": rng.normal(-0.1, 0.1, n_bin), "log_age": rng.normal(0.9, 0.05, n_bin),
             "log_tau": rng.normal(0.3, 0.1, n_bin), "dust1": rng.uniform(0.2, 0.6, n_bin),
             "dust2": rng.normal(0.4, 0.1, n_bin).clip(0.05), "dust_index": np.full(n_bin, -0.7),
             "gas_logu": np.full(n_bin, -2.5)}[n] for n in model.param_names])
        flux = model.photometry(truth, BANDS, z).astype(float) * 1e9 / fscale
        err = flux / 15.0
        bm = BinMap(galaxy="b", binmap=np.arange(1, n_bin + 1).reshape(10, 20).astype(np.int32),
                    wcs=WCS(naxis=2), filters=Filters(BANDS, pivot_wavelengths(BANDS),
                                                      np.ones(12)),
                    flux=flux + rng.normal(size=flux.shape) * err, flux_var=err**2,
                    snr=flux / err, flag=np.zeros(n_bin, np.int32), fscale=fscale)
        times, ess = {}, {}
        for name, pop in (("rdsps", None),
                          ("population", {"enabled": True, "widths": True}),
                          ("population_regrid", {"enabled": True, "widths": True,
                                                 "regrid": True}),
                          ("population_covariance", {"enabled": True, "widths": True,
                                                     "regrid": True, "covariance": True})):
            t = time.perf_counter()
            if pop is not None:  # the fit.population_prior section, defaults filled
                pop = section("fit", {"population_prior": pop})["population_prior"]
            run_rdsps(bm, grid, z, tmp / name, priors=PRIORS, population=pop, progress=False)
            times[name] = time.perf_counter() - t
            ess[name] = float(np.median([read_fit_result(tmp / name / f"bin_{k}.h5")
                                         .effective_sample_size for k in range(1, n_bin + 1)]))
    base = times["rdsps"]
    print(f"model grid, 100k models (for scale): {t_grid:.2f} s")
    for name, sec in times.items():
        print(f"{name}: {sec:.2f} s ({sec / base:.2f}x the plain pass); median effective "
              f"sample size {ess[name]:.0f} models per bin")
    print(json.dumps({"rdsps_s": round(base, 3), "population_s": round(times["population"], 3),
                      "population_regrid_s": round(times["population_regrid"], 3),
                      "population_covariance_s": round(times["population_covariance"], 3),
                      "ess": {k: round(v, 1) for k, v in ess.items()}}))


if __name__ == "__main__":
    main()
