"""Snakemake entry of rule accuracy: recovered vs true properties of the mock, per bin.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_accuracy, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    rd = sorted(Path(snakemake.input.rdsps).glob("bin_*.h5"))
    run_accuracy(snakemake.input.truth, snakemake.input.binmap, rd, list(snakemake.input.fits),
                 snakemake.output.json, plot_path=snakemake.output.plot)
except Exception:
    log.exception("rule accuracy failed")
    raise
