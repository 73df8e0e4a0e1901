"""Snakemake entry of rule fit_job: the fits of one job's bins with fit.method (MCMC:
in one stacked ensemble) -> fits/job_J/bin_K.h5.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.io.paths import bin_file
from sedmap.stages import run_fit_job, run_script


def body(p, i, o, w):
    out = Path(o[0])
    run_fit_job(p.bins, i.binmap, i.grid, i.rdsps, p.z, [bin_file(out, k) for k in p.bins],
                p.fit, confhash=p.confhash, grid_hash=p.grid_hash)


run_script(snakemake, body)
