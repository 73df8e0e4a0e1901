"""Snakemake entry of rule binmap_plot: binmap.fits -> plots/binmap.png.

Thin on purpose: it calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_binmap_plot, run_script


def body(p, i, o, w):
    run_binmap_plot(i.binmap, o.plot)


run_script(snakemake, body)
