"""Atomic writers of the mock's files: FITS HDU lists and clean WCS headers (YAML
through :func:`sedmap.io.yamlfile.write_yaml`)."""

from pathlib import Path

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
