"""Snakemake entry of rule fit_bin: one bin's posterior (MCMC for selected bins, else RDSPS).

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_fit_bin, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    run_fit_bin(snakemake.wildcards.bin, snakemake.input.binmap, snakemake.input.grid,
                Path(snakemake.input.rdsps) / f"bin_{snakemake.wildcards.bin}.h5", p.z,
                snakemake.output[0], p.fit, confhash=p.confhash)
except Exception:
    log.exception("rule fit_bin failed")
    raise
