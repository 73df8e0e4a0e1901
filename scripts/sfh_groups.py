"""Snakemake entry of rule sfh_groups: per-bin fits -> groups of similar SFHs.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_sfh_groups, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    run_sfh_groups(snakemake.input.fluxmap, snakemake.input.binmap, list(snakemake.input.fits),
                   p.sfh, snakemake.output.groups, p.cfg, confhash=p.confhash,
                   plot_path=snakemake.output.plot)
except Exception:
    log.exception("rule sfh_groups failed")
    raise
