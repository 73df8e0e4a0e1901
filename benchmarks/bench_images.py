"""Benchmark: the imaging stage on the demo's 12 mock bands (calibrate, grid,
match, flux cube), serially in one process. The mock is made first (not timed).

Baseline, timed in the same run: reading the 12 raw files with astropy.

Last line: JSON with images_s.
"""

import json
import tempfile
import time
from pathlib import Path

import yaml
from astropy.io import fits

from sedmap.config import load_config
from sedmap.images import pipeline as P
from sedmap.mock import make_mock


def main():
    cfg = load_config(Path(__file__).resolve().parents[1] / "config/galaxies/demo.yaml")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        man = make_mock({}, tmp / "mock", models_config=cfg["models"], progress=False)
        with open(man["bands"]) as fh:
            bands = yaml.safe_load(fh)["bands"]
        t = time.perf_counter()
        for b in bands:
            with fits.open(b["file"]) as h:
                _ = [x.data for x in h]
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        psfs = [{k: b[k] for k in P.PSF_KEYS if k in b} for b in bands]
        cal = [P.calibrate({k: v for k, v in b.items() if k not in P.PSF_KEYS},
                           tmp / f"{b['filter']}_cal.fits") for b in bands]
        grid = P.common_grid(cal, psfs, tmp / "grid.json")
        g = cfg["galaxy"]
        matched = [P.match(c, p, grid, tmp / f"{i}_m.fits", ra=g["ra"], dec=g["dec"],
                           stamp_arcsec=cfg["images"]["stamp_arcsec"])
                   for i, (c, p) in enumerate(zip(cal, psfs))]
        P.build_flux_cube(matched, cal, psfs, g, cfg["images"], tmp / "fluxmap.fits")
        t_img = time.perf_counter() - t
    print(f"imaging stage, 12 bands: {t_img:.1f} s; reading the raw files {t_read:.3f} s")
    print(json.dumps({"images_s": round(t_img, 2)}))


if __name__ == "__main__":
    main()
