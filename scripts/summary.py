"""Snakemake entry of rule summary: maps.fits, profiles.fits (and a mock's
accuracy.json) -> summary.html for the report.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.report import write_summary
from sedmap.stages import run_script


def body(p, i, o, w):
    write_summary(o.html, w.galaxy, i.maps, i.profiles,
                  accuracy_path=i.accuracy[0] if i.accuracy else None, config_hash=p.confhash)


run_script(snakemake, body)
