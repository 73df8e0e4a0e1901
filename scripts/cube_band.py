"""Snakemake entry of rule cube_band: IFS cube -> one synthetic band image.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_cube_bands, run_script


def body(p, i, o, w):
    run_cube_bands(i.cube, [w.band], Path(o[0]).parent, p.ifs, confhash=p.confhash)


run_script(snakemake, body)
