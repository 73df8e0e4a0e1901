"""Snakemake entry of rule binning: flux cube -> bin map (checkpoint: the bins decide the fan-out).

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_binning, run_script


def body(p, i, o, w):
    spectra = list(i.specphoto)  # [specphoto.fits] with ifs.enabled, else []
    run_binning(i.fluxmap, o.binmap, p.binning, confhash=p.confhash,
                specphoto_path=spectra[0] if spectra else None)


run_script(snakemake, body)
