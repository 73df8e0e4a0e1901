"""Weighted statistics of posterior samples, shared by the fits and the figures."""

import numpy as np

#: the percentiles every product reports: p16, p50, p84
LEVELS = (16.0, 50.0, 84.0)


def weighted_percentiles(values, weights, levels=LEVELS):
    """Weighted percentiles of each column of ``values`` (k, p) -> (len(levels), p).

    Uses the midpoint rule on the weighted CDF, interpolated linearly.
    """
    values = np.atleast_2d(values)
    order = np.argsort(values, axis=0)
    v = np.take_along_axis(values, order, axis=0)
    w = np.asarray(weights, float)[order]
    cw = np.cumsum(w, axis=0) - 0.5 * w
    cw /= w.sum(axis=0)
    out = np.empty((len(levels), values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.interp(np.asarray(levels) / 100.0, cw[:, j], v[:, j])
    return out
