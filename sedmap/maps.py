"""Maps stage: per-bin fit results -> property maps with WCS.

* Bin-space maps (``MAPSPACE='BIN'``): p16/p50/p84 of every parameter and
  derived quantity, the bin's value repeated on its pixels.
* ``NAME_CONSTRAINT`` (bin space): how much the data narrowed each quantity
  relative to its prior, ``1 - posterior 68% width / prior 68% width``
  (:mod:`sedmap.fit.constraint`); a bin is *constrained* in a quantity when
  this is at least ``maps.constraint_min``. NaN where the bin's percentiles rest
  on fewer than :data:`MIN_ESS` independent samples (an RDSPS grid too coarse for
  the bin's S/N: the interval is the grid's spacing, not what the data allow).
  ``BIN_ID`` and ``FIT_FLAG`` (NaN outside the bins).
* Pixel-space maps (``MAPSPACE='PIXEL'``) of the extensive quantities (log
  stellar mass, log SFR, log dust mass): the bin's total is shared among its
  pixels in proportion to their flux in a chosen band (``maps.split``). The
  share of pixel p in bin b is ``g_p / sum_b g``, with
  ``g_p = max(f_p, 0.1 <f>_b, sigma_p)``: the pixel's flux, floored at a
  tenth of the bin's mean pixel flux and at its own 1-sigma error (a pixel
  measured at S/N < 1 counts as holding its noise; equal shares if all of a
  bin's are <= 0). Noise or a star's mask cannot then give a pixel a
  non-positive or vanishing share, the shares of a bin sum to 1 (the bin total
  is exact), the share's own error stays below 0.43 dex, and
  ``log X_pix = log X_bin + log10(share_p)`` with
  ``sigma_pix^2 = sigma_bin^2 + (sigma_f,pix / (g_p ln 10))^2``, ``sigma_bin =
  (p84 - p16) / 2``. ``NAME_PIX_FLOOR`` is 1 on the pixels whose share used
  the floor.
"""

import numpy as np

from .config import default_split
from .errors import InputError
from .fit.constraint import constraint
from .fit.methods import get_method
from .io import MapSet, PropertyMap
from .quantities import QUANTITIES

#: FITS unit of each quantity's map (sedmap.quantities)
UNITS = {k: q.unit for k, q in QUANTITIES.items()}
EXTENSIVE = ("log_mstar", "log_sfr", "log_mdust")
#: a pixel's share of its bin is floored at this fraction of the bin's mean pixel flux
SHARE_FLOOR = 0.1
#: default least constraint (1 - posterior / prior 68% width) of a constrained bin
CONSTRAINT_MIN = 0.5
#: fewest independent samples (``FitResult.effective_sample_size``) whose 68% interval
#: measures how much the data narrowed a quantity; below it ``NAME_CONSTRAINT`` is NaN
MIN_ESS = 5.0
#: quantities the constraint summary reports (a user's first maps)
SUMMARY = ("log_mstar", "log_sfr", "age_mw", "logzsol", "av", "log_ssfr")


def _ext(name, suffix):
    return f"{name.upper()}_{suffix}"


def bin_space_maps(binmap, results):
    """Dict of PropertyMap: p16/p50/p84 of every quantity, on the bins' pixels.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
    results : list of FitResult, result k-1 for bin k
    """
    names = []
    for r in results:
        for n in r.percentiles:
            if n not in names:
                names.append(n)
    n_bin = int(binmap.max())
    if len(results) != n_bin:
        raise InputError(f"{len(results)} fit results for {n_bin} bins", path="fits/",
                         fix="run the fit stage for every bin")
    out = {}
    lookup = np.concatenate([[0], np.arange(n_bin)])  # bin id -> row
    inside = binmap > 0
    for name in names:
        table = np.full((n_bin, 3), np.nan)
        for k, r in enumerate(results):
            if not r.flag and name in r.percentiles:
                table[k] = r.percentiles[name]
        for j, suf in enumerate(("P16", "P50", "P84")):
            img = np.full(binmap.shape, np.nan, np.float32)
            img[inside] = table[lookup[binmap[inside]], j]
            out[_ext(name, suf)] = PropertyMap(img, UNITS.get(name, ""), "BIN")
    for name in names:  # how much the data narrowed each quantity (fit.constraint)
        table = np.full(n_bin, np.nan)
        for k, r in enumerate(results):
            # an ESS of NaN (unknown: MCMC without autocorrelation times) is let pass
            few = r.effective_sample_size < MIN_ESS
            c = constraint(r.percentiles, r.prior_width) if not (r.flag or few) else {}
            if name in c:
                table[k] = c[name]
        if np.isfinite(table).any():
            img = np.full(binmap.shape, np.nan, np.float32)
            img[inside] = table[lookup[binmap[inside]]]
            out[_ext(name, "CONSTRAINT")] = PropertyMap(img, "", "BIN")
    flag = np.full(binmap.shape, np.nan, np.float32)
    flag[inside] = np.array([r.flag for r in results], np.float32)[lookup[binmap[inside]]]
    out["FIT_FLAG"] = PropertyMap(flag, "", "BIN")
    ids = np.where(inside, binmap, np.nan).astype(np.float32)
    out["BIN_ID"] = PropertyMap(ids, "", "BIN")
    # how many independent samples each bin's percentiles rest on, and for MCMC bins
    # the longest integrated autocorrelation time (steps; a chain shorter than 50 of
    # them gives a tau that is a lower bound and an ESS that is an upper one)
    ess = np.array([r.effective_sample_size if not r.flag else np.nan for r in results])
    out["ESS"] = PropertyMap(np.where(inside, ess[lookup[binmap]], np.nan).astype(np.float32),
                             "", "BIN")
    tau = np.array([np.nanmax(r.autocorr_time) if get_method(r.method).chains and not r.flag
                    and r.autocorr_time is not None and np.isfinite(r.autocorr_time).any()
                    else np.nan for r in results])
    if np.isfinite(tau).any():
        out["MCMC_TAU_MAX"] = PropertyMap(
            np.where(inside, tau[lookup[binmap]], np.nan).astype(np.float32), "", "BIN")
    # the chain's length after burn-in in autocorrelation times, and whether it reached
    # fit.mcmc.n_tau (1) or stopped at fit.mcmc.max_steps (0); NaN: not an MCMC bin
    ntau = np.array([r.n_tau if get_method(r.method).chains and not r.flag and r.converged >= 0
                     else np.nan for r in results])
    if np.isfinite(ntau).any():
        conv = np.array([float(r.converged) if np.isfinite(t) else np.nan
                         for r, t in zip(results, ntau)])
        for key, table in (("MCMC_N_TAU", ntau), ("MCMC_CONVERGED", conv)):
            out[key] = PropertyMap(
                np.where(inside, table[lookup[binmap]], np.nan).astype(np.float32), "", "BIN")
    return out


def constraint_summary(maps, threshold=CONSTRAINT_MIN):
    """Per quantity, how much of the galaxy its fits constrain (``NAME_CONSTRAINT >=
    threshold``): the fraction of the fitted pixels, the fraction of the fitted bins,
    and the bins' median constraint.

    Returns ``{name: {"fraction": pixels, "bin_fraction": bins, "median": C}}``.
    """
    fitted = np.asarray(maps["FIT_FLAG"].data) == 0
    ids = np.asarray(maps["BIN_ID"].data)
    first = np.zeros(ids.shape, bool)  # one pixel per fitted bin
    _, idx = np.unique(np.where(fitted, ids, -1).ravel(), return_index=True)
    first.flat[idx] = True
    first &= fitted
    out = {}
    for name in SUMMARY:
        key = _ext(name, "CONSTRAINT")
        if key not in maps or not fitted.any():
            continue
        c = np.nan_to_num(np.asarray(maps[key].data), nan=-np.inf)
        per_bin = c[first]
        ok = per_bin[np.isfinite(per_bin)]
        out[name] = {"fraction": float(np.mean(c[fitted] >= threshold)),
                     "bin_fraction": float(np.mean(per_bin >= threshold)),
                     "median": float(np.median(ok)) if ok.size else float("nan")}
    return out


def pixel_space_maps(binmap, results, flux, flux_err, filters, split=None):
    """Dict of PropertyMap: extensive quantities shared among pixels by band flux.

    Parameters
    ----------
    flux, flux_err : ndarray (n_band, ny, nx)
        The flux cube and its 1-sigma errors.
    filters : list of str
        Band names of the cube.
    split : dict, optional
        ``{quantity: band}``; quantities left out get the band
        :func:`sedmap.config.default_split` picks from ``filters``.
    """
    split = {**default_split(filters), **dict(split or {})}
    out = {}
    inside = binmap > 0
    n_bin = int(binmap.max())
    lookup = np.concatenate([[0], np.arange(n_bin)])
    for name, band in split.items():
        if band not in filters:
            raise InputError(f"maps.split band '{band}' for {name} is not in the cube",
                             path="maps.split", fix=f"use one of {filters}")
        b = filters.index(band)
        f = np.nan_to_num(np.asarray(flux[b], float))
        e = np.nan_to_num(np.asarray(flux_err[b], float))
        g, floored = split_weights(binmap, f, e)
        gbin = np.bincount(binmap[inside] - 1, weights=g[inside], minlength=n_bin)
        table = np.full((n_bin, 3), np.nan)
        for k, r in enumerate(results):
            if not r.flag and name in r.percentiles:
                table[k] = r.percentiles[name]
        if np.all(np.isnan(table)):
            continue
        rows = lookup[binmap]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(inside, g / gbin[rows], np.nan)
            p50 = table[rows, 1] + np.log10(share)
            sig_bin = 0.5 * (table[rows, 2] - table[rows, 0])
            sig = np.sqrt(sig_bin**2 + (e / (g * np.log(10))) ** 2)
        p50 = np.where(inside, p50, np.nan)
        for suf, img in (("P16", p50 - sig), ("P50", p50), ("P84", p50 + sig)):
            out[_ext(name, f"PIX_{suf}")] = PropertyMap(img.astype(np.float32),
                                                       UNITS.get(name, ""), "PIXEL")
        out[_ext(name, "PIX_FLOOR")] = PropertyMap(
            np.where(inside, floored, np.nan).astype(np.float32), "", "PIXEL")
    return out


def split_weights(binmap, flux, flux_err=None, floor=SHARE_FLOOR):
    """Positive weights that share each bin's extensive quantities among its pixels.

    ``g_p = max(f_p, floor * <f>_b, sigma_p)``, ``<f>_b`` the bin's mean pixel
    flux and ``sigma_p`` the pixel's 1-sigma error (``flux_err``; 0 if None); a
    pixel whose floor is <= 0 too gets weight 1, as do all pixels of its bin.
    Returns ``(g, floored)``: ``g`` (ny, nx) (0 outside the bins) and the mask of
    the pixels that took a floor.
    """
    inside = binmap > 0
    n_bin = int(binmap.max()) if inside.any() else 0
    idx = binmap[inside] - 1
    npix = np.bincount(idx, minlength=n_bin)
    mean = np.bincount(idx, weights=flux[inside], minlength=n_bin) / np.maximum(npix, 1)
    fi = flux[inside]
    sig = np.zeros_like(fi) if flux_err is None else np.asarray(flux_err)[inside]
    lo = np.maximum(floor * mean[idx], sig)
    gi = np.maximum(fi, lo)
    bad = np.bincount(idx, weights=(gi <= 0).astype(float), minlength=n_bin) > 0
    gi = np.where(bad[idx], 1.0, gi)   # a bin with any non-positive weight: equal shares
    g = np.zeros(binmap.shape)
    floored = np.zeros(binmap.shape, bool)
    g[inside] = gi
    floored[inside] = bad[idx] | (fi < lo)
    return g, floored


def make_map_set(galaxy, wcs, binmap, results, flux=None, flux_err=None, filters=None,
                 split=None, confhash=None, constraint_min=CONSTRAINT_MIN, bin_flags=None):
    """All maps of one galaxy as a ``sedmap.io.MapSet``, with the constraint summary
    (:func:`constraint_summary`) at ``constraint_min``; ``bin_flags`` (the bin map's
    ``BINS.flag``, bin k at k-1) adds the ``BIN_FLAG`` map (1 = LOW_SNR)."""
    maps = bin_space_maps(binmap, results)
    if bin_flags is not None:
        inside = binmap > 0
        img = np.full(binmap.shape, np.nan, np.float32)
        img[inside] = np.asarray(bin_flags, np.float32)[binmap[inside] - 1]
        maps["BIN_FLAG"] = PropertyMap(img, "", "BIN")
    if flux is not None:
        maps.update(pixel_space_maps(binmap, results, flux, flux_err, list(filters), split))
    return MapSet(galaxy=galaxy, wcs=wcs, maps=maps, config_hash=confhash or "none",
                  summary=constraint_summary(maps, threshold=constraint_min),
                  constraint_min=float(constraint_min))
