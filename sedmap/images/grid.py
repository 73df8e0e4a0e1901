"""The common pixel grid: a TAN stamp centred on the galaxy, and reprojection onto it."""

import numpy as np
from astropy.wcs import WCS

from ..errors import InputError


def target_grid(ra, dec, pixscale, size_arcsec):
    """WCS and shape of the common grid: TAN, north up, east left, centred on (ra, dec).

    Parameters
    ----------
    ra, dec : float
        Centre, degrees.
    pixscale : float
        Arcsec per pixel.
    size_arcsec : float
        Side of the square stamp, arcsec; the number of pixels is made odd so
        that (ra, dec) falls on the centre of the central pixel.

    Returns
    -------
    wcs : astropy.wcs.WCS
    shape : tuple (ny, nx)
    """
    if pixscale <= 0 or size_arcsec <= 0:
        raise InputError(f"bad grid: pixscale={pixscale}, size={size_arcsec} arcsec",
                         path="images", fix="give positive values")
    n = int(np.ceil(size_arcsec / pixscale))
    n += 1 - n % 2
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.crpix = [(n + 1) / 2.0, (n + 1) / 2.0]
    w.wcs.cdelt = [-pixscale / 3600.0, pixscale / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w, (n, n)
