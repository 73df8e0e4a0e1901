"""Snakemake entry of rule mock: generate the mock galaxy (raw images, truth, bands.yaml).

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_mock, run_script


def body(p, i, o, w):
    run_mock(p.settings, p.galaxy, Path(o.bands).parent,
             models_config=p.models, grid=p.grid)


run_script(snakemake, body)
