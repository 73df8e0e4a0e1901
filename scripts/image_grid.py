"""Snakemake entry of rule image_grid: pixel scale and target PSF of the common grid.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))

from sedmap.stages import snakemake_logging

log = snakemake_logging(snakemake)
p = snakemake.params
try:
    from sedmap.images.pipeline import common_grid

    common_grid(list(snakemake.input.cal), p.psfs, snakemake.output[0],
                pixel_scale=p.pixel_scale, target_psf_fwhm=p.target_psf_fwhm)
except Exception:
    log.exception("rule image_grid failed")
    raise
