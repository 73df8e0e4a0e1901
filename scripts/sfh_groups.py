"""Snakemake entry of rule sfh_groups: per-bin fits -> groups of similar SFHs.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import bin_result_paths, run_script, run_sfh_groups


def body(p, i, o, w):
    run_sfh_groups(i.fluxmap, i.binmap, bin_result_paths(i.binmap, i.rdsps, i.fits),
                   o.groups, p.cfg, confhash=p.confhash, plot_path=o.plot)


run_script(snakemake, body)
