"""Extreme and non-finite pixels of one band, found and repaired before PSF matching.

A single bad value (a hot pixel, a 1e30 from a broken reduction, a -1e30
fill value) is spread by the matching kernel over every pixel within the
kernel's reach and ruins the band there. :func:`repair_outliers` finds such
pixels on the band's native grid, before reprojection and convolution, and
replaces them by the median of their neighbourhood.

A finite pixel is an extreme outlier when all three tests hold (``med``: the
median of the valid pixels of the ``size`` x ``size`` box around it, the
pixel itself left out; ``excess = data - med``):

1. **Significant**: ``|excess| > nsigma * (s + sqrt(v))``, with ``s`` the
   robust scatter (1.4826 MAD) of the box and ``v`` the median variance of
   the box (the pixel's own variance is left out: a bad value often has a
   bad variance too).
2. **Sharper than any PSF**: ``|excess| > sharp * m8``, with ``m8`` the
   median of ``|neighbour - med|`` over the 8 neighbours. A star or galaxy
   nucleus shares its excess with its neighbours (a PSF of FWHM 1 pixel,
   centred on a pixel, puts 15% of its peak in each edge neighbour, so its
   m8 is about 8% of its excess and the default ``sharp = 50`` leaves it be);
   a bad value shares nothing. Up to three adjacent bad pixels (a 2x2
   block) still pass, since the median ignores three bright neighbours.
3. **Extreme**: ``|data| > ceiling * p999``, with ``p999`` the 99.9th
   percentile of ``|data|`` over the band's valid pixels: the pixel is far
   above (default 10 times) nearly every other pixel of the image, galaxy
   core included. This keeps faint, sharp noise spikes of photon-counting
   images (single GALEX photons) out.

Together they flag values no astrophysical source gives, and leave bright
galaxy cores and stars alone; moderate cosmic rays are the business of
:mod:`.cosmic`. Non-finite data or variance in a pixel the band does not
mask is repaired the same way. Pixels the band already masks (NaN in a
calibrated image) are left to the mask.

Repaired pixels get ``med`` as data and the median variance of the box as
variance; their number is returned (``BandImage.meta['n_outlier']``, the
``NOUTLIER`` key of the matched band image) and logged.
"""

import logging
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..constants import MAD_TO_SIGMA

__all__ = ["find_outliers", "repair_outliers"]

log = logging.getLogger(__name__)

_BATCH = 1 << 16  # candidate pixels per batch of box medians


def _windows(img, rows, cols, size):
    """``size`` x ``size`` neighbourhoods of the pixels (rows, cols), shape (n, size**2);
    NaN beyond the image."""
    h = size // 2
    view = sliding_window_view(np.pad(img, h, constant_values=np.nan), (size, size))
    return view[rows, cols].reshape(rows.size, size * size)


def _extreme(value, clean, vclean, rows, cols, size, nsigma, sharp):
    """Tests 1 and 2 for the pixels (rows, cols) of value ``value``; bool array."""
    centre = size * size // 2
    box = _windows(clean, rows, cols, size)
    box[:, centre] = np.nan  # the pixel itself is left out
    vbox = _windows(vclean, rows, cols, size)
    vbox[:, centre] = np.nan
    near = np.delete(_windows(clean, rows, cols, 3), 4, axis=1)
    with warnings.catch_warnings():  # all-NaN boxes (isolated pixels) give NaN: not flagged
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(box, axis=1)
        scatter = MAD_TO_SIGMA * np.nanmedian(np.abs(box - med[:, None]), axis=1)
        noise = scatter + np.sqrt(np.nanmedian(vbox, axis=1))
        m8 = np.nanmedian(np.abs(near - med[:, None]), axis=1)
    excess = np.abs(value - med)
    hit = (excess > nsigma * noise) & (excess > sharp * m8)
    return hit & np.isfinite(med) & np.isfinite(m8)  # an isolated pixel has no box


def find_outliers(data, var, mask=None, *, size=5, nsigma=10.0, sharp=50.0, ceiling=10.0):
    """Extreme outliers and unmasked non-finite pixels of one band (module docstring).

    Parameters
    ----------
    data : ndarray (ny, nx)
        Flux per pixel (any unit).
    var : ndarray (ny, nx)
        Its variance (unit squared).
    mask : ndarray of bool (ny, nx), optional
        True where the pixel is already unusable; never flagged, and left out
        of the medians.
    size : int
        Side of the box, pixels (odd).
    nsigma, sharp, ceiling : float
        Thresholds of tests 1, 2 and 3.

    Returns
    -------
    bad : ndarray of bool (ny, nx)
        The pixels to repair.
    fill_data, fill_var : ndarray (n_bad,)
        Their replacements (box medians), in the order of ``np.nonzero(bad)``.
    """
    data = np.asarray(data, dtype=float)
    var = np.asarray(var, dtype=float)
    mask = np.zeros(data.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    nonfinite = ~mask & ~(np.isfinite(data) & np.isfinite(var))
    valid = ~mask & ~nonfinite
    bad = nonfinite.copy()
    if valid.any():
        p999 = np.percentile(np.abs(data[valid]), 99.9)
        cand = valid & (np.abs(data) > ceiling * p999)  # test 3 first: cheap, and rare
        clean = np.where(valid, data, np.nan)
        vclean = np.where(valid, var, np.nan)
        rows, cols = np.nonzero(cand)
        for s in range(0, rows.size, _BATCH):  # bounded memory if many pass test 3
            r, c = rows[s:s + _BATCH], cols[s:s + _BATCH]
            bad[r, c] = _extreme(data[r, c], clean, vclean, r, c, size, nsigma, sharp)
    rows, cols = np.nonzero(bad)
    fill_d = np.full(rows.size, np.nan)
    fill_v = np.full(rows.size, np.nan)
    if rows.size:
        keep = valid & ~bad
        box = _windows(np.where(keep, data, np.nan), rows, cols, size)
        vbox = _windows(np.where(keep, var, np.nan), rows, cols, size)
        some = np.isfinite(box).any(axis=1) & np.isfinite(vbox).any(axis=1)
        fill_d[some] = np.nanmedian(box[some], axis=1)
        fill_v[some] = np.nanmedian(vbox[some], axis=1)
    return bad, fill_d, fill_v


def repair_outliers(band, **kwargs):
    """Replace a BandImage's extreme and non-finite pixels by their box medians, in place.

    A pixel whose box holds no valid pixel to fill it from is masked instead.
    ``band.meta['n_outlier']`` receives the number of pixels found (see
    :func:`find_outliers` for ``kwargs``); a warning names the band and the count.

    Returns
    -------
    int
        The number of pixels found.
    """
    mask = np.asarray(band.mask, dtype=bool) if band.mask is not None else None
    bad, fill_d, fill_v = find_outliers(band.data, band.var, mask, **kwargs)
    n = int(bad.sum())
    band.meta["n_outlier"] = n
    if n:
        data = np.array(band.data, dtype=float)
        var = np.array(band.var, dtype=float)
        rows, cols = np.nonzero(bad)
        worst = float(np.nanmax(np.abs(np.where(np.isfinite(data[rows, cols]),
                                                data[rows, cols], np.nan)), initial=np.nan))
        data[rows, cols], var[rows, cols] = fill_d, fill_v
        band.data, band.var = data, var
        empty = ~np.isfinite(fill_d) | ~np.isfinite(fill_v)
        if empty.any():
            new = np.zeros(data.shape, bool) if mask is None else mask.copy()
            new[rows[empty], cols[empty]] = True
            band.mask = new
        log.warning("%s: %d extreme or non-finite pixel(s) replaced by their local median "
                    "before PSF matching (largest |value| %.3g; NOUTLIER in the matched "
                    "band image)", band.filter, n, worst)
    return n
