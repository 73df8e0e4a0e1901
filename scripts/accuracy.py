"""Snakemake entry of rule accuracy: recovered vs true properties of the mock, per bin.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import job_files, run_accuracy, run_script


def body(p, i, o, w):
    rd = sorted(Path(i.rdsps).glob("bin_*.h5"))
    run_accuracy(i.truth, i.binmap, rd, job_files(i.fits),
                 o.json, plot_path=o.plot)


run_script(snakemake, body)
