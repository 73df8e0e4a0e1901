"""Segmentation, the galaxy region and foreground-star masks (SEP).

The galaxy region is built on the PSF-matched cube: each band is segmented
with SEP, the segment under the galaxy centre is kept, the bands are merged
(union), holes are filled and only the piece containing the centre stays.
Or the region is an ellipse given in the config.

Foreground stars are found in the sharpest native image (before PSF
matching, where stars and star-forming clumps still look different): SEP
sources (after removing light that is smooth on scales of 5 PSF FWHMs)
that are as compact as the PSF (half-light radius <= 1.3 x the PSF's)
and bright (S/N > ``min_snr``) are stars; a disc around each (``star_radius``:
brighter stars get larger discs) is removed from the region. Stars can also be listed in the
config (ra, dec, radius).
"""

import numpy as np
import sep
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy import ndimage

from ..constants import FWHM_TO_SIGMA
from ..errors import InputError

sep.set_extract_pixstack(5_000_000)
sep.set_sub_object_limit(4096)


def _sep_ready(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def unit_scale(err):
    """A power of two that brings the typical (median finite, positive) 1-sigma
    ``err`` near 1. SEP works in single precision in places: multiplying data and
    errors by it (exactly, a power of two) makes detection and photometry the same
    in any flux unit (errors of 1e-20 found nothing; of 1e20 overflowed), and
    leaves images in sane units bit for bit as they are."""
    err = np.asarray(err, float)
    finite = err[np.isfinite(err) & (err > 0)]
    return 2.0 ** -np.round(np.log2(np.median(finite))) if finite.size else 1.0


def segment(data, var, mask=None, thresh=2.0, minarea=5, deblend_cont=1.0):
    """SEP detection on one (background-subtracted) image.

    Parameters
    ----------
    data, var : ndarray (ny, nx)
        Flux and variance (any consistent units).
    thresh : float
        Detection threshold in units of the per-pixel error.
    deblend_cont : float
        SEP's deblending contrast; 1.0 (default) means no deblending, so a
        galaxy's clumps stay in the galaxy's segment.

    Returns
    -------
    objects : structured ndarray
    segmap : ndarray (ny, nx) of int (0 = sky, k = objects[k-1])
    """
    m = np.zeros(data.shape, bool) if mask is None else np.asarray(mask, bool)
    err = np.sqrt(np.where(np.isfinite(var) & (var > 0), var, np.inf))
    d = np.where(m | ~np.isfinite(data), 0.0, data)
    scale = unit_scale(err)  # S/N units: the same detection in any flux unit
    d, err = d * scale, err * scale
    return sep.extract(_sep_ready(d), thresh, err=_sep_ready(err), mask=m, minarea=minarea,
                       deblend_cont=deblend_cont, segmentation_map=True)


def galaxy_segment_region(cube, var, centre_xy, mask=None, thresh=2.0, minarea=5):
    """Union over bands of the segment under the galaxy centre, holes filled.

    Parameters
    ----------
    cube, var : ndarray (n_band, ny, nx)
    centre_xy : (float, float)
        Galaxy centre, pixel coordinates (0-based x, y).

    Returns
    -------
    region : ndarray (ny, nx) of bool
    """
    ny, nx = cube.shape[1:]
    cx, cy = round(float(centre_xy[0])), round(float(centre_xy[1]))
    if not (0 <= cx < nx and 0 <= cy < ny):
        raise InputError(f"the galaxy centre (pixel {cx}, {cy}) is outside the {nx}x{ny} stamp",
                         path="galaxy.ra/galaxy.dec", fix="check the coordinates")
    region = np.zeros((ny, nx), bool)
    for b in range(cube.shape[0]):
        m = None if mask is None else mask[b]
        _, seg = segment(cube[b], var[b], m, thresh=thresh, minarea=minarea)
        label = seg[cy, cx]
        if label == 0:  # centre not detected in this band: nearest segment within 3 px
            yy, xx = np.nonzero(seg)
            if yy.size == 0:
                continue
            d2 = (xx - cx) ** 2 + (yy - cy) ** 2
            k = np.argmin(d2)
            if d2[k] > 9:
                continue
            label = seg[yy[k], xx[k]]
        region |= seg == label
    if not region[cy, cx]:
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = cube[:, cy, cx] / np.sqrt(var[:, cy, cx])
        best = float(np.nanmax(snr)) if np.isfinite(snr).any() else float("nan")
        raise InputError(f"the galaxy is not detected at its centre (pixel {cx}, {cy}) in any "
                         f"band: its S/N there is at most {best:.1f} per pixel, against "
                         f"images.region.thresh {thresh:g} (method segmentation, minarea "
                         f"{minarea})", path="images",
                         fix="lower images.region.thresh or minarea, use images.region.method "
                             "ellipse, or check galaxy.ra/dec")
    region = ndimage.binary_fill_holes(region)
    lab, _ = ndimage.label(region)
    return lab == lab[cy, cx]


def ellipse_region(shape, centre_xy, a_pix, axis_ratio, pa_deg):
    """Elliptical region: semi-major axis ``a_pix`` (pixels), b/a, PA (deg, from +y to +x...
    i.e. north through east on a north-up, east-left grid)."""
    ny, nx = shape
    y, x = np.mgrid[:ny, :nx]
    dx, dy = x - centre_xy[0], y - centre_xy[1]
    t = np.deg2rad(pa_deg)
    # major axis at PA east of north: north = +y, east = -x on the common grid
    u = -dx * np.sin(t) + dy * np.cos(t)
    v = dx * np.cos(t) + dy * np.sin(t)
    return (u / a_pix) ** 2 + (v / (a_pix * axis_ratio)) ** 2 <= 1.0


def find_stars(band, min_snr=5.0, size_factor=1.3, thresh=3.0):
    """Point sources in a native-resolution ``BandImage`` -> (SkyCoord, S/N) of stars.

    A source is a star when its half-light radius is at most ``size_factor``
    times the PSF's (FWHM/2 for a Gaussian) and its S/N exceeds ``min_snr``.
    """
    # remove light smooth on scales of several PSFs (the galaxy's disc) so that
    # stars on top of it are measured against their local background
    d = np.where(band.mask | ~np.isfinite(band.data), 0.0, band.data)
    size = int(5 * band.psf_fwhm / band.pixscale) | 1
    err = np.sqrt(np.where(band.mask | ~(band.var > 0), np.inf, band.var))
    scale = unit_scale(err)  # S/N units (see unit_scale): any flux unit finds the same stars
    d, err = d * scale, err * scale
    d = _sep_ready(d - ndimage.median_filter(d, size=max(size, 5)))
    objs, _ = segment(d, err**2, band.mask, thresh=thresh, minarea=3, deblend_cont=0.005)
    if len(objs) == 0:
        return SkyCoord([], [], unit="deg"), np.zeros(0)
    rmax = np.full(len(objs), 2.0 * band.psf_fwhm / band.pixscale)  # 2 FWHM: all of a star
    r50, _ = sep.flux_radius(d, objs["x"], objs["y"], rmax, 0.5, subpix=5)
    flux, ferr, _ = sep.sum_circle(d, objs["x"], objs["y"], 3.0 * band.psf_fwhm / band.pixscale,
                                   err=_sep_ready(err))
    r50_psf = 0.5 * band.psf_fwhm / band.pixscale
    star = (r50 <= size_factor * r50_psf) & (flux > min_snr * ferr) & (r50 > 0)
    ra, dec = band.wcs.celestial.pixel_to_world_values(objs["x"][star], objs["y"][star])
    return (SkyCoord(np.atleast_1d(ra), np.atleast_1d(dec), unit="deg"),
            np.atleast_1d(flux[star] / ferr[star]))


def star_radius(snr, fwhm, floor_fwhm=1.0):
    """Mask radius (arcsec) of a star of native S/N ``snr`` on a grid with PSF ``fwhm``:
    where its Gaussian profile falls to 1/10 of the noise of one native
    detection, ``sigma sqrt(2 ln(10 snr))``, and at least ``floor_fwhm`` FWHM."""
    sigma = fwhm * FWHM_TO_SIGMA
    r = sigma * np.sqrt(2 * np.log(np.maximum(10 * np.asarray(snr, float), 1.0)))
    return np.maximum(r, floor_fwhm * fwhm)


def star_mask(stars, wcs, shape, radius_arcsec):
    """Discs of ``radius_arcsec`` (scalar or per star) around ``stars`` on the grid ``wcs``."""
    mask = np.zeros(shape, bool)
    if len(stars) == 0:
        return mask
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
    x, y = wcs.celestial.world_to_pixel_values(stars.ra.deg, stars.dec.deg)
    r = np.broadcast_to(np.asarray(radius_arcsec, dtype=float) / scale, np.shape(x))
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for xi, yi, ri in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(r)):
        mask |= (xx - xi) ** 2 + (yy - yi) ** 2 <= ri**2
    return mask
