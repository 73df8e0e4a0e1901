"""Snakemake entry of rule fluxmap: region, star masks, Galactic extinction -> fluxmap.fits.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_script


def body(p, i, o, w):
    from sedmap.images.pipeline import build_flux_cube

    build_flux_cube(list(i.matched), list(i.cal), p.psfs, p.galaxy,
                    p.images, o.fluxmap, plot_dir=Path(o.plot).parent,
                    confhash=p.confhash)


run_script(snakemake, body)
