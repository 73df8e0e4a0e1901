"""Sky geometry of the mock: tangent-plane coordinates, the bands' native WCS, fine
sub-pixel grids, block sums and Gaussian PSF convolution."""

import numpy as np
from astropy.wcs import WCS
from scipy.ndimage import gaussian_filter

from ..constants import ARCSEC_PER_RAD, FWHM_TO_SIGMA
from .survey_base import band_option


def _gnomonic(ra, dec, ra0, dec0):
    """Standard coordinates (xi east, eta north), arcsec, of (ra, dec) about (ra0, dec0)."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD


def _inverse_gnomonic(xi, eta, ra0, dec0):
    """(ra, dec) in degrees of standard coordinates (arcsec) about (ra0, dec0)."""
    x, y = np.asarray(xi) / ARCSEC_PER_RAD, np.asarray(eta) / ARCSEC_PER_RAD
    d0 = np.radians(dec0)
    den = np.cos(d0) - y * np.sin(d0)
    ra = np.degrees(np.arctan2(x, den)) + ra0
    dec = np.degrees(np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, den)))
    return np.mod(ra, 360.0), dec


def _tan_wcs(ra, dec, pixscale, shape, rotation_deg=0.0):
    """TAN WCS centred on (ra, dec) at the middle of ``shape``; +y axis at PA rotation_deg."""
    ny, nx = shape
    th = np.radians(rotation_deg)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.cdelt = [-pixscale / 3600.0, pixscale / 3600.0]
    w.wcs.pc = [[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    return w


def band_wcs(cfg, band):
    """Native WCS and shape (ny, nx) of a band's image.

    The image is centred ``offset_arcsec`` (east, north) from the galaxy,
    its +y axis at position angle ``rotation_deg``, and large enough to
    contain the whole common stamp with a margin.
    """
    off = np.asarray(band_option(band, "offset_arcsec"), dtype=float)
    th = np.radians(band_option(band, "rotation_deg"))
    side = (cfg["stamp_arcsec"] * (abs(np.cos(th)) + abs(np.sin(th)))
            + 2 * np.hypot(*off) + 2 * max(6.0, 2 * band["psf_fwhm"]))
    n = int(np.ceil(side / band["pixscale"]))
    n += 1 - n % 2
    ra, dec = _inverse_gnomonic(off[0], off[1], cfg["ra"], cfg["dec"])
    return _tan_wcs(float(ra), float(dec), band["pixscale"], (n, n),
                    band_option(band, "rotation_deg")), (n, n)


def _fine_coords(wcs, shape, k, ra0, dec0):
    """Standard coordinates (arcsec) of the centres of the k x k sub-pixels of an image."""
    ny, nx = shape
    xs = (np.arange(nx * k) + 0.5) / k - 0.5
    ys = (np.arange(ny * k) + 0.5) / k - 0.5
    xx, yy = np.meshgrid(xs, ys)
    ra, dec = wcs.wcs_pix2world(xx, yy, 0)
    return _gnomonic(ra, dec, ra0, dec0)


def _block_sum(a, k):
    """Sum over k x k blocks of the last two axes."""
    if k == 1:
        return a
    *lead, ny, nx = a.shape
    return a.reshape(*lead, ny // k, k, nx // k, k).sum(axis=(-3, -1))


def _psf_convolve(img, fwhm_arcsec, sub_pixscale):
    """Convolve the last two axes with a circular Gaussian (zero outside the image)."""
    s = fwhm_arcsec * FWHM_TO_SIGMA / sub_pixscale
    sigma = (0,) * (img.ndim - 2) + (s, s)
    return gaussian_filter(img, sigma, mode="constant", cval=0.0, truncate=5.0)


def _sub_factor(pixscale, fine):
    return max(1, int(np.ceil(pixscale / fine - 1e-9)))
