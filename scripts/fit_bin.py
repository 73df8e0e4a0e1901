"""Snakemake entry of rule fit_bin: one bin's posterior (MCMC for selected bins, else RDSPS).

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_fit_bin, run_script


def body(p, i, o, w):
    run_fit_bin(w.bin, i.binmap, i.grid,
                Path(i.rdsps) / f"bin_{w.bin}.h5", p.z,
                o[0], p.fit, confhash=p.confhash, grid_hash=p.grid_hash)


run_script(snakemake, body)
