"""Snakemake entry of rule mock: generate the mock galaxy (raw images, truth, bands.yaml).

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import run_mock, snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    run_mock(p.settings, p.galaxy, Path(snakemake.output.bands).parent,
             models_config=p.models)
except Exception:
    log.exception("rule mock failed")
    raise
