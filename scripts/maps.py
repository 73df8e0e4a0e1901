"""Snakemake entry of rule maps: per-bin fits -> maps.fits and plots.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_maps, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    run_maps(snakemake.input.fluxmap, snakemake.input.binmap, list(snakemake.input.fits),
             snakemake.output.maps, p.maps, confhash=p.confhash,
             plot_dir=Path(snakemake.output.plot).parent)
except Exception:
    log.exception("rule maps failed")
    raise
