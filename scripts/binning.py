"""Snakemake entry of rule binning: flux cube -> bin map (checkpoint: the bins decide the fan-out).

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_binning, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    run_binning(snakemake.input.fluxmap, snakemake.output.binmap, p.binning,
                confhash=p.confhash, plot_path=snakemake.output.plot)
except Exception:
    log.exception("rule binning failed")
    raise
