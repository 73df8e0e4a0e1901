"""Snakemake entry of rule specphoto: IFS cube + flux map -> specphoto.fits.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_ifs, run_script


def body(p, i, o, w):
    run_ifs(p.cube, i.fluxmap, o[0], p.ifs, confhash=p.confhash)


run_script(snakemake, body)
