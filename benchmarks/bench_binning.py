"""Benchmark: SED-similarity binning of a 500 x 500 x 12 mock cube.

Baseline, timed in the same run: one vectorised pass over the whole cube that
computes every pixel's reduced chi-square against one seed SED (the work of
one full-image step as piXedfit does it at every annulus).

Last line: JSON with binning_s_500.
"""

import json
import time

import numpy as np

from sedmap.binning import _chi2_red, bin_sed_similarity


def cube(n=500, nb=12, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n]
    r = np.hypot(x - n / 2, y - n / 2)
    prof = np.exp(-r / (n / 10))
    shape = np.linspace(0.5, 1.5, nb)[:, None, None] ** (1 + r / n)
    truth = 200 * prof * shape
    var = np.ones_like(truth)
    return truth + rng.normal(size=truth.shape), var, r < n / 2.2


def main():
    flux, var, region = cube()
    t = time.perf_counter()
    binmap, flag = bin_sed_similarity(flux, var, region, sn_threshold=10.0)
    t_bin = time.perf_counter() - t
    f = np.moveaxis(flux, 0, -1).reshape(-1, flux.shape[0])
    v = np.moveaxis(var, 0, -1).reshape(-1, flux.shape[0])
    t = time.perf_counter()
    _chi2_red(f, v, f[0], v[0])
    t_base = time.perf_counter() - t
    print(f"SED binning 500x500x12: {t_bin:.2f} s, {binmap.max()} bins "
          f"({int((flag > 0).sum())} flagged); one full-image chi2 pass {t_base:.3f} s; "
          f"binning = {t_bin / t_base:.0f} full-image passes")
    print(json.dumps({"binning_s_500": round(t_bin, 3)}))


if __name__ == "__main__":
    main()
