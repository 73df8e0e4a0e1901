"""Atomic writers of the mock's files: FITS HDU lists, YAML, clean WCS headers."""

from pathlib import Path

import yaml
from astropy.io import fits

from ..io.atomic import atomic_path


def _clean_wcs_header(wcs):
    h = wcs.to_header()
    for key in ("DATEREF", "MJDREFI", "MJDREFF", "MJDREF", "MJD-OBS", "DATE-OBS"):
        h.remove(key, ignore_missing=True, remove_all=True)
    return h


def _write_hdul(hdus, path):
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")
    return Path(path)


def _write_yaml(data, path):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return Path(path)
