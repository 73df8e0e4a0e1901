"""Snakemake entry of rule model_grid: build one model-grid HDF5 file.

Thin on purpose: it reads the rule's params (never the global config),
sends logging to the rule's log file and calls the library.
"""

import logging
import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

# Use this checkout's library (the repository root is the parent of scripts/).
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.models import build_grid

logging.basicConfig(
    filename=snakemake.log[0],
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
logging.captureWarnings(True)
log = logging.getLogger("sedmap.scripts.model_grid")

try:
    path = build_grid(
        dict(snakemake.params.models),
        snakemake.output[0],
        config_hash=snakemake.params.confhash,
        progress=False,
    )
except Exception:
    log.exception("model grid failed")
    raise
log.info("model grid written: %s", path)
