"""Snakemake entry of rule rdsps: every bin against the model grid, in one job.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_rdsps, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    run_rdsps(snakemake.input.binmap, snakemake.input.grid, p.z, snakemake.output[0], p.fit,
              confhash=p.confhash)
except Exception:
    log.exception("rule rdsps failed")
    raise
