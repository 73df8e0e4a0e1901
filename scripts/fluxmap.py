"""Snakemake entry of rule fluxmap: region, star masks, Galactic extinction -> fluxmap.fits.

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
    from sedmap.images.pipeline import build_flux_cube

    build_flux_cube(list(snakemake.input.matched), list(snakemake.input.cal), p.psfs, p.galaxy,
                    p.images, snakemake.output.fluxmap, plot_dir=Path(snakemake.output.plot).parent,
                    confhash=p.confhash)
except Exception:
    log.exception("rule fluxmap failed")
    raise
