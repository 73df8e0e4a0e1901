"""Snakemake entry of rule image_grid: pixel scale and target PSF of the common grid.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_script


def body(p, i, o, w):
    from sedmap.images.pipeline import common_grid

    common_grid(list(i.cal), p.psfs, o[0],
                pixel_scale=p.pixel_scale, target_psf_fwhm=p.target_psf_fwhm)


run_script(snakemake, body)
