"""Sky background and background rms of one image.

Two passes, so that the sources do not bias the sky:

1. a quick first pass (SEP's own ``sep.Background`` mesh, same box size;
   with ``estimator="mean"`` a ``Background2D`` with the mean);
   SEP (``sep.extract``, ``segmentation_map=True``) finds the sources in the
   first-pass background-subtracted image at ``nsigma`` times the first-pass
   rms, and their segments, dilated by ``dilate`` pixels to cover the faint
   wings, become the source mask;
2. a plane fitted to the unmasked pixels (one sigma-clipping iteration) is
   taken out, photutils ``Background2D`` (sigma-clipped median and standard
   deviation in boxes of ``box_size`` pixels, a ``filter_size`` median
   filter over the box grid, cubic-spline interpolation) measures the rest,
   and the plane is added back. Without the plane, the median filter over
   the box grid biases the edge boxes of a sky gradient by half a box step.

NaN and inf pixels are never used (they get interpolated background values).
If the source mask leaves too few pixels for the requested boxes, the box
filter accepts more masked boxes, and as a last resort the background is the
sigma-clipped constant of the unmasked pixels.
"""

import warnings

import numpy as np
import sep
from astropy.stats import SigmaClip, sigma_clipped_stats
from photutils.background import Background2D, MeanBackground, MedianBackground, StdBackgroundRMS
from scipy import ndimage

from ..constants import MAD_TO_SIGMA

__all__ = ["estimate_background", "source_mask"]

#: Default box size, pixels (cut-outs of a few arcmin hold only a few such boxes).
DEFAULT_BOX = 64
#: SEP working-buffer size (pixels), large enough for a galaxy filling a frame.
_PIXSTACK = 3_000_000


_ESTIMATORS = {"median": MedianBackground, "mean": MeanBackground}


def _background2d(data, box, mask, filter_size, sigma, estimator="median"):
    """``Background2D`` -> (bkg, rms) maps; None when no box has enough pixels."""
    for exclude in (10.0, 50.0, 90.0):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                b = Background2D(data, box, mask=mask, filter_size=filter_size,
                                 sigma_clip=SigmaClip(sigma=sigma, maxiters=10),
                                 bkg_estimator=_ESTIMATORS[estimator](),
                                 bkg_rms_estimator=StdBackgroundRMS(),
                                 exclude_percentile=exclude)
            return np.asarray(b.background, dtype=np.float64), \
                np.asarray(b.background_rms, dtype=np.float64)
        except ValueError:
            continue
    return None


def _clip_factor(sigma):
    """Std of a unit Gaussian truncated at +-sigma (what a clipped std measures)."""
    from scipy.special import erf

    inside = erf(sigma / np.sqrt(2.0))
    return float(np.sqrt(1.0 - 2.0 * sigma * np.exp(-0.5 * sigma**2)
                         / np.sqrt(2.0 * np.pi) / inside))


def _first_pass(clean, bad, box, sigma):
    """Quick SEP background mesh -> (bkg, rms) maps (for source detection only)."""
    img = np.ascontiguousarray(np.where(bad, 0.0, clean))
    try:
        b = sep.Background(img, mask=np.ascontiguousarray(bad), bw=box[1], bh=box[0],
                           fw=3, fh=3)
        return np.asarray(b.back(), dtype=np.float64), np.asarray(b.rms(), dtype=np.float64)
    except Exception:  # noqa: BLE001 -- SEP raises bare Exception (e.g. every box masked)
        return _constant(clean, bad, sigma)


def _plane(clean, mask, sigma, step=4):
    """Least-squares plane a + b x + c y through the unmasked pixels, clipped once."""
    ny, nx = clean.shape
    y, x = np.mgrid[0:ny:step, 0:nx:step]
    z = clean[::step, ::step]
    ok = ~mask[::step, ::step]
    if ok.sum() < 10:
        ok = ~mask
        y, x = np.mgrid[0:ny, 0:nx]
        z = clean
        if ok.sum() < 3:
            return np.zeros(clean.shape)
    x, y, z = x[ok] / nx - 0.5, y[ok] / ny - 0.5, z[ok]
    design = np.column_stack([np.ones_like(x), x, y])
    coef = np.zeros(3)
    keep = np.ones(z.size, dtype=bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], z[keep], rcond=None)[0]
        res = z - design @ coef
        mad = MAD_TO_SIGMA * np.median(np.abs(res[keep] - np.median(res[keep])))
        if not mad > 0:
            break
        keep = np.abs(res) < sigma * mad
        if keep.sum() < 3:
            break
    xx = (np.arange(nx) / nx - 0.5)[None, :]
    yy = (np.arange(ny) / ny - 0.5)[:, None]
    return coef[0] + coef[1] * xx + coef[2] * yy


def _constant(data, mask, sigma, estimator="median"):
    """Sigma-clipped (median or mean, std) of the unmasked pixels, as maps."""
    good = ~mask
    if not np.any(good):
        return np.zeros(data.shape), np.zeros(data.shape)
    mean, med, std = sigma_clipped_stats(data[good], sigma=sigma, maxiters=10)
    level = mean if estimator == "mean" else med
    return np.full(data.shape, float(level)), np.full(data.shape, float(std))


def source_mask(resid, rms, bad, nsigma=2.0, dilate=2, minarea=5, ellipse_scale=0.0):
    """Pixels belonging to sources in a background-subtracted image.

    Parameters
    ----------
    resid : ndarray
        Background-subtracted image (NaN allowed where ``bad``).
    rms : ndarray or float
        Background rms (same units).
    bad : ndarray of bool
        Pixels to ignore.
    nsigma : float
        Detection threshold in units of ``rms`` (SEP, 3x3 matched filter).
    dilate : int
        The segments are grown by this many pixels.
    minarea : int
        Minimum number of pixels of a source.
    ellipse_scale : float
        Also mask, around every source of 50 pixels or more, the ellipse of
        this many times its second-moment semi-axes (0: off).

    Returns
    -------
    ndarray of bool
    """
    img = np.where(bad, 0.0, resid).astype(np.float64)
    err = np.broadcast_to(np.asarray(rms, dtype=np.float64), img.shape)
    sub = (slice(None, None, 4), slice(None, None, 4))
    good_err = err[sub][~bad[sub] & np.isfinite(err[sub]) & (err[sub] > 0)]
    if good_err.size == 0:  # noise-free image: nothing to threshold against
        return np.zeros(img.shape, dtype=bool)
    floor = max(float(np.median(good_err)) * 1e-3, np.finfo(float).tiny)
    err = np.ascontiguousarray(np.where(np.isfinite(err) & (err > floor), err, floor))
    img = np.ascontiguousarray(img)
    if sep.get_extract_pixstack() < _PIXSTACK:
        sep.set_extract_pixstack(_PIXSTACK)
    try:
        objs, seg = sep.extract(img, nsigma, err=err, mask=np.ascontiguousarray(bad),
                                minarea=minarea, segmentation_map=True, deblend_cont=1.0)
        found = seg > 0
        if ellipse_scale > 0 and len(objs):
            # the faint wings of an extended galaxy reach far beyond its isophote:
            # mask the ellipse of ellipse_scale x its second-moment size as well
            big = objs["npix"] >= 50
            if big.any():
                wings = np.zeros(img.shape, dtype=bool)
                o = objs[big]
                sep.mask_ellipse(wings, o["x"], o["y"], o["a"], o["b"], o["theta"],
                                 r=ellipse_scale)
                found |= wings
    except Exception:  # noqa: BLE001 -- SEP's bare Exception: buffer overflow on huge objects
        smooth = ndimage.uniform_filter(img, 3)
        found = smooth > nsigma * err / 3.0
    if dilate > 0 and found.any():
        found = ndimage.binary_dilation(found, iterations=int(dilate))
    return found


def estimate_background(data, mask=None, box_size=DEFAULT_BOX, filter_size=3, nsigma=2.0,
                        sigma_clip=3.0, dilate=2, estimator="median", ellipse_scale=0.0):
    """Smooth sky background and its rms, with the sources masked.

    Parameters
    ----------
    data : array_like (ny, nx)
        Image, sky included; NaN/inf pixels are ignored.
    mask : array_like of bool, optional
        Extra pixels to ignore (True = bad).
    box_size : int or (int, int)
        Box size of the background mesh, pixels; capped at the image size.
    filter_size : int
        Median filter over the box grid (odd).
    nsigma : float
        Source-detection threshold of the source mask, in background rms.
    sigma_clip : float
        Sigma of the clipping inside each box.
    dilate : int
        Pixels by which the source segments are grown.
    estimator : {"median", "mean"}
        Statistic of the sigma-clipped pixels in each box. Use "mean" for
        photon-counting images with a few counts per pixel (GALEX), where the
        median of a Poisson distribution is biased (it is 0 below ~0.7 counts).

    Returns
    -------
    bkg, rms : ndarray (ny, nx), float64
        Background and background rms per pixel (interpolated under sources and
        bad pixels).
    """
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {sorted(_ESTIMATORS)}, got {estimator!r}")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"estimate_background needs a 2-D image, got shape {data.shape}")
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    box = np.broadcast_to(np.atleast_1d(np.asarray(box_size, dtype=int)), (2,))
    box = (max(1, min(int(box[0]), data.shape[0])), max(1, min(int(box[1]), data.shape[1])))
    if bad.all():
        return np.zeros(data.shape), np.zeros(data.shape)
    clean = np.where(bad, np.nan, data)

    if estimator == "median":
        bkg, rms = _first_pass(clean, bad, box, sigma_clip)
    else:  # SEP's mode estimator fails on sparse counts: same statistic in both passes
        first = _background2d(clean, box, bad, filter_size, sigma_clip, estimator)
        bkg, rms = first if first is not None else _constant(clean, bad, sigma_clip, estimator)
    both = bad | source_mask(clean - bkg, rms, bad, nsigma=nsigma, dilate=dilate,
                             ellipse_scale=ellipse_scale)
    if both.all():
        both = bad
    plane = _plane(clean, both, sigma_clip)
    resid = clean - plane
    final = _background2d(resid, box, both, filter_size, sigma_clip, estimator)
    if final is None:
        final = _constant(resid, both, sigma_clip, estimator)
    return final[0] + plane, final[1] / _clip_factor(sigma_clip)
