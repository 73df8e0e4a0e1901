"""Snakemake entry of rule maps: per-bin fits -> maps.fits and plots.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import bin_result_paths, run_maps, run_script


def body(p, i, o, w):
    run_maps(i.fluxmap, i.binmap, bin_result_paths(i.binmap, i.rdsps, i.fits),
             o.maps, p.maps, confhash=p.confhash, plot_dir=Path(o.plot).parent,
             profiles_path=o.profiles, cosmology=p.cosmology)


run_script(snakemake, body)
