"""Snakemake entry of rule match_band: reprojection onto the common grid and PSF matching.

Thin on purpose: it reads the rule's params (never the global config) and
calls the library.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
from sedmap.stages import run_script


def body(p, i, o, w):
    from sedmap.images.pipeline import match

    match(i.cal, p.psf, i.grid, o[0],
          ra=p.galaxy["ra"], dec=p.galaxy["dec"], stamp_arcsec=p.stamp_arcsec,
          ref_path=i.get("ref"), realign=p.realign, confhash=p.confhash,
          stamp_center=p.stamp_center)


run_script(snakemake, body)
