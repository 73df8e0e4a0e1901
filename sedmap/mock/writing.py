"""The mock's files: clean WCS headers; FITS written atomically through
:func:`sedmap.io.fits_utils.write_fits` (YAML through :func:`sedmap.io.yamlfile.write_yaml`)."""

from ..io.fits_utils import write_fits as _write_hdul  # noqa: F401 (the mock's writers use it)


def _clean_wcs_header(wcs):
    h = wcs.to_header()
    for key in ("DATEREF", "MJDREFI", "MJDREFF", "MJDREF", "MJD-OBS", "DATE-OBS"):
        h.remove(key, ignore_missing=True, remove_all=True)
    return h

