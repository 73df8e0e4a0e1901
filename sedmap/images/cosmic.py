"""Cosmic-ray cleaning of a single image (median filter + sigma clip).

The idea is the one of the HST/STIS and WFPC2 single-image rejection (and of
L.A.Cosmic's fine-structure test): a pixel is a cosmic-ray hit when

1. it exceeds the local median (a ``size`` x ``size`` median filter, which a
   hit of a few pixels does not move) by more than ``nsigma`` times the
   noise, and
2. it is sharper than any PSF: its neighbours do not share the excess. The
   mean of its four edge-neighbours, minus the local median, must be below
   ``sharp`` (default 0.35) times its own excess. A point source of
   FWHM >= 2 px gives >= 0.47 there whatever its sub-pixel centre (0.47 when
   centred on a pixel, 0.54 on an edge, 0.61 on a corner), a one-pixel hit
   ~0 and a hit split evenly over two pixels 0.25. Longer tracks are peeled
   off from their ends over the ``niter`` passes. In the wings of a source
   the inner neighbour is brighter than the pixel, so wings never pass.

Flagged pixels are replaced by the local median. The noise is ``sqrt(var)``
(its 3x3 median, so that a hit does not inflate it) when a variance map is
given, else the larger of a model ``a + b * local level`` (sky/read noise plus
Poisson, in any native unit) fitted to the image itself (:func:`noise_model`)
and the robust spread (1.4826 MAD) of the ``size`` x ``size`` box, which
grows in structured regions (galaxy cores, stars) and so protects them even
where the fitted Poisson slope is poorly constrained. At very low counts
(< ~50 per pixel) the Poisson tail is longer than a Gaussian's, and a few
sky pixels per 10^4 can pass ``nsigma=5``: CR cleaning is meant for CCD
images, not photon-counting ones (GALEX).

Only pixels that can pass both tests (``data - mean4 > (1 - sharp) nsigma
sigma``) get the median computed, so a 2048x1489 frame takes well under a
second.
"""

import numpy as np
from astropy.stats import sigma_clipped_stats
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from ..constants import MAD_TO_SIGMA

__all__ = ["clean_cosmic_rays", "noise_model"]

_SAMPLE = 40_000  # pixels used to fit the noise model
_CLIP3 = 0.9865783925581086  # std of a unit Gaussian clipped at +-3 sigma


def _windows(img, rows, cols, size):
    """The ``size`` x ``size`` neighbourhoods of the given pixels, shape (n, size**2)."""
    h = size // 2
    view = sliding_window_view(np.pad(img, h, mode="reflect"), (size, size))
    return view[rows, cols].reshape(rows.size, size * size)


def _mean4(img):
    """Mean of the 4 edge-neighbours of every pixel."""
    p = np.pad(img, 1, mode="edge")
    return 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])


def noise_model(img, good, size=5, seed=0):
    """Fit ``var(img - median_size(img)) = a + b * level`` (b >= 0) on a pixel sample.

    ``level`` is the local median. Returns (a, b). Poisson plus read/sky noise
    is linear in the level in any native unit; the fit is done on
    3-sigma-clipped variances (corrected for the clipping) in 16 level bins.
    (The MAD would be biased low here: the pixel that *is* the median of its
    own box gives an exact zero residual.)
    """
    rows, cols = np.nonzero(good)
    if rows.size == 0:
        return 0.0, 0.0
    if rows.size > _SAMPLE:
        pick = np.random.default_rng(seed).choice(rows.size, _SAMPLE, replace=False)
        rows, cols = rows[pick], cols[pick]
    level = np.median(_windows(img, rows, cols, size), axis=1)
    resid = img[rows, cols] - level
    edges = np.unique(np.quantile(level, np.linspace(0.0, 1.0, 17)))
    which = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, max(edges.size - 2, 0))
    lev, var, wt = [], [], []
    for k in range(max(edges.size - 1, 1)):
        r = resid[which == k]
        if r.size < 20:
            continue
        std = sigma_clipped_stats(r, sigma=3.0, maxiters=5)[2] / _CLIP3
        lev.append(np.median(level[which == k]))
        var.append(std**2)
        wt.append(r.size)
    if not var:
        return float(np.var(resid)), 0.0
    lev, var, wt = map(np.asarray, (lev, var, wt))
    if lev.size >= 2 and np.ptp(lev) > 0:
        design = np.column_stack([np.ones_like(lev), lev]) * np.sqrt(wt)[:, None]
        a, b = np.linalg.lstsq(design, var * np.sqrt(wt), rcond=None)[0]
        if b < 0:
            a, b = np.average(var, weights=wt), 0.0
    else:
        a, b = float(var.mean()), 0.0
    # never below the quietest bin: a fit with b > 0 can push a under the sky floor
    a = max(float(a), float(var.min()) - float(b) * float(lev[np.argmin(var)]))
    return a, float(b)


def clean_cosmic_rays(data, var=None, nsigma=5.0, size=5, niter=2, sharp=0.35):
    """Find single-image cosmic-ray hits and replace them by the local median.

    Parameters
    ----------
    data : array_like (ny, nx)
        Image (any units); NaN pixels are left alone.
    var : array_like (ny, nx), optional
        Variance of ``data``; without it a noise model ``a + b * level`` is
        fitted to the image (:func:`noise_model`).
    nsigma : float
        Detection threshold above the local median, in noise sigma.
    size : int
        Side of the median-filter box (odd, >= 3).
    niter : int
        Passes; each pass can flag pixels next to the previous pass's
        replacements, so that short tracks are peeled off from their ends.
    sharp : float
        Largest neighbour excess, as a fraction of the pixel's own excess, of
        a hit (see the module docstring); lower is more conservative.

    Returns
    -------
    cleaned : ndarray (ny, nx), float64
    cr_mask : ndarray (ny, nx) of bool
        True where a hit was replaced.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"clean_cosmic_rays needs a 2-D image, got shape {data.shape}")
    size = int(size)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 3, got {size}")
    bad = ~np.isfinite(data)
    cr = np.zeros(data.shape, dtype=bool)
    if bad.all():
        return data.copy(), cr
    work = np.where(bad, np.median(data[~bad]), data)
    if var is None:
        a, b = noise_model(work, ~bad, size)
        v = None
    else:
        v = np.asarray(var, dtype=np.float64)
        v = np.where(np.isfinite(v) & (v > 0), v, np.inf)
        vmin = ndimage.minimum_filter(v, size=3)

    for _ in range(max(1, int(niter))):
        mean4 = _mean4(work)
        # A hit satisfies work - mean4 > (1 - sharp) * nsigma * sigma: cheap pre-selection.
        if v is None:
            floor2 = np.maximum(a + b * mean4, a) * 0.5
        else:
            floor2 = vmin
        cand = (work - mean4) ** 2 * ((work > mean4) & ~bad & ~cr) \
            > ((1.0 - sharp) * nsigma) ** 2 * floor2
        rows, cols = np.nonzero(cand)
        if rows.size == 0:
            break
        win = _windows(work, rows, cols, size)
        med = np.median(win, axis=1)
        excess = work[rows, cols] - med
        if v is None:
            spread = MAD_TO_SIGMA * np.median(np.abs(win - med[:, None]), axis=1)
            noise2 = np.maximum(np.maximum(a + b * med, a), spread**2)
        else:
            noise2 = np.median(_windows(v, rows, cols, 3), axis=1)
        hit = (excess > nsigma * np.sqrt(noise2)) & (mean4[rows, cols] - med < sharp * excess)
        if not hit.any():
            break
        rows, cols, med = rows[hit], cols[hit], med[hit]
        cr[rows, cols] = True
        work[rows, cols] = med

    cleaned = data.copy()
    cleaned[cr] = work[cr]
    return cleaned, cr
