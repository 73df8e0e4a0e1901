"""Snakemake entry of rule calibrate_band: one band's raw image -> calibrated band image.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_script


def body(p, i, o, w):
    from sedmap.images.pipeline import calibrate

    calibrate(p.spec, o[0], confhash=p.confhash)


run_script(snakemake, body)
