"""Snakemake entry of rule rdsps: every bin against the model grid, in one job.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_rdsps, run_script


def body(p, i, o, w):
    run_rdsps(i.binmap, i.grid, p.z, o[0], p.fit,
              confhash=p.confhash)


run_script(snakemake, body)
