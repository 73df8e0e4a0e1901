"""Radial profiles of the resolved properties against R/R_e.

The galaxy's light in a reference band (the reddest at or below 2.5 um, the
stellar mass's best tracer among the bands; else the bluest) gives the geometry:
the centre is the configured position (``galaxy.ra``/``dec``), the axis ratio
and position angle are the light's second moments inside the region
(:func:`photutils.morphology.data_properties`), and R_e is the semi-major axis
of the ellipse that holds half the region's light in that band.

Each annulus (``step`` R_e wide) averages the pixels of S/N-complete bins
(``BIN_FLAG`` = 0) that were fitted:

* surface densities of stellar mass and SFR (Msun/kpc^2, Msun/yr/kpc^2): the
  sum of the pixel maps (``*_PIX_P50``) over the annulus's area; their 16-84%
  band sums the pixels' P16 and P84, as if every pixel's error were shared
  (the pixels of a bin share theirs): an upper bound on the scatter;
* the intensive quantities (mass-weighted age, log Z/Zsun, A_V, log sSFR): the
  stellar-mass-weighted mean of the bins' P16, P50 and P84.
"""

import astropy.units as u
import numpy as np
from astropy.table import Table

from .errors import InputError

#: intensive quantities averaged per annulus: column, maps.fits stem, unit
INTENSIVE = (("age_mw", "AGE_MW", "Gyr"), ("logzsol", "LOGZSOL", "dex"),
             ("av", "AV", "mag"), ("log_ssfr", "LOG_SSFR", "dex(1/yr)"))

#: surface densities: column, maps.fits pixel-map stem, unit of the linear density
DENSITIES = (("log_sigma_mstar", "LOG_MSTAR_PIX", "solMass/kpc2"),
             ("log_sigma_sfr", "LOG_SFR_PIX", "solMass/(yr kpc2)"))


def reference_band(pivots_aa):
    """Index of the reference band: the reddest pivot <= 25000 AA, else the bluest."""
    pivots_aa = np.asarray(pivots_aa, float)
    ok = np.flatnonzero(pivots_aa <= 25000.0)
    return int(ok[np.argmax(pivots_aa[ok])]) if ok.size else int(np.argmin(pivots_aa))


def galaxy_geometry(image, region, centre_xy):
    """Axis ratio, position angle and half-light semi-major axis of ``image``.

    Parameters
    ----------
    image : ndarray (ny, nx)
        Flux of the reference band (any linear unit).
    region : ndarray (ny, nx) bool
        The galaxy's pixels.
    centre_xy : (float, float)
        Centre, 0-based pixel coordinates.

    Returns
    -------
    dict with ``q`` (b/a), ``theta`` (rad, major axis from +x), ``r_e_pix`` (the
    half-light semi-major axis, pixels), ``radius`` (ndarray (ny, nx): each
    pixel's elliptical radius, semi-major axis, pixels), ``centre`` (x, y).
    """
    from photutils.morphology import data_properties

    img = np.where(region & np.isfinite(image), np.clip(image, 0.0, None), 0.0)
    if not np.any(img > 0):
        raise InputError("the reference band has no positive flux inside the region",
                         fix="check the region (images.region) and the band's calibration")
    props = data_properties(img, mask=~region)
    q = float(np.clip(1.0 - props.ellipticity.value, 0.05, 1.0))
    theta = float(props.orientation.to_value(u.rad))
    if not (np.isfinite(q) and np.isfinite(theta)):  # a degenerate light distribution
        q, theta = 1.0, 0.0
    yy, xx = np.indices(img.shape, dtype=float)
    dx, dy = xx - centre_xy[0], yy - centre_xy[1]
    major = dx * np.cos(theta) + dy * np.sin(theta)
    minor = -dx * np.sin(theta) + dy * np.cos(theta)
    radius = np.hypot(major, minor / q)
    order = np.argsort(radius[region])
    cum = np.cumsum(img[region][order])
    r_e = float(radius[region][order][np.searchsorted(cum, 0.5 * cum[-1])])
    return {"q": q, "theta": theta, "r_e_pix": max(r_e, 0.5) if np.isfinite(r_e) else 0.5,
            "radius": radius,
            "centre": (float(centre_xy[0]), float(centre_xy[1]))}


def radial_profiles(maps, region, geometry, pixel_kpc, step=0.25, r_max=4.0, min_pixels=3):
    """Radial profiles of the maps against R/R_e (see the module docstring).

    Parameters
    ----------
    maps : dict
        maps.fits extension name -> (ny, nx) ndarray (``BIN_FLAG``, the pixel maps
        ``LOG_MSTAR_PIX_P16/50/84``, ``LOG_SFR_PIX_*`` and the bin maps
        ``AGE_MW_P*``, ``LOGZSOL_P*``, ``AV_P*``, ``LOG_SSFR_P*``; absent ones are
        left out).
    region : ndarray (ny, nx) bool
    geometry : dict
        :func:`galaxy_geometry` of the reference band (with ``band``, its index).
    pixel_kpc : float
        Pixel side, kpc (proper, at the galaxy's redshift).
    step, r_max : float
        Annulus width and outer edge, in R_e.
    min_pixels : int
        Fewest usable pixels an annulus needs to be kept.

    Returns
    -------
    astropy.table.Table, one row per annulus: ``r_lo``, ``r_hi``, ``r_mid``
    (R/R_e), ``r_kpc`` (the middle, semi-major axis), ``n_pix``, and per
    quantity ``<col>_p16``, ``<col>_p50``, ``<col>_p84`` with units; ``meta``
    holds the geometry (``R_E_PIX``, ``R_E_KPC``, ``AXRATIO``, ``PA_DEG``,
    ``REFBAND``).
    """
    geo = geometry
    rr = geo["radius"] / geo["r_e_pix"]
    mass = maps.get("LOG_MSTAR_PIX_P50")
    if mass is None:
        raise InputError("the maps have no LOG_MSTAR_PIX_P50 (pixel stellar masses)",
                         fix="make maps.fits with the photometry (the maps stage does)")
    use = region & np.isfinite(mass)
    if "BIN_FLAG" in maps:
        use &= maps["BIN_FLAG"] == 0
    w_mass = np.where(use, 10.0 ** np.where(use, mass, 0.0), 0.0)
    edges = np.arange(0.0, r_max + 0.5 * step, step)
    area = pixel_kpc**2
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = use & (rr >= lo) & (rr < hi)
        n = int(sel.sum())
        if n < min_pixels:
            continue
        row = {"r_lo": lo, "r_hi": hi, "r_mid": 0.5 * (lo + hi),
               "r_kpc": 0.5 * (lo + hi) * geo["r_e_pix"] * pixel_kpc, "n_pix": n}
        for col, stem, _ in DENSITIES:
            for s in ("p16", "p50", "p84"):
                m = maps.get(f"{stem}_{s.upper()}")
                v = m[sel][np.isfinite(m[sel])] if m is not None else np.zeros(0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    row[f"{col}_{s}"] = (np.log10(np.sum(10.0**v) / (v.size * area))
                                         if v.size and area > 0 else np.nan)
        wts = w_mass[sel]
        for col, stem, _ in INTENSIVE:
            for s in ("p16", "p50", "p84"):
                m = maps.get(f"{stem}_{s.upper()}")
                ok = np.isfinite(m[sel]) if m is not None else np.zeros(n, bool)
                row[f"{col}_{s}"] = (float(np.sum(m[sel][ok] * wts[ok]) / np.sum(wts[ok]))
                                     if ok.any() and np.sum(wts[ok]) > 0 else np.nan)
        rows.append(row)
    return _table(rows, {"R_E_PIX": geo["r_e_pix"], "R_E_KPC": geo["r_e_pix"] * pixel_kpc,
                         "AXRATIO": geo["q"], "PA_DEG": float(np.degrees(geo["theta"])),
                         "REFBAND": int(geo.get("band", -1)), "PIXKPC": float(pixel_kpc)})


def empty_profiles(pixel_kpc, note):
    """A profile table with no annuli and no geometry (NaN), ``meta["NOTE"]`` saying
    why none could be made."""
    nan = float("nan")
    return _table([], {"R_E_PIX": nan, "R_E_KPC": nan, "AXRATIO": nan, "PA_DEG": nan,
                       "REFBAND": -1, "PIXKPC": float(pixel_kpc), "NOTE": str(note)})


def _table(rows, meta):
    """The profile table of ``rows`` (dicts) with units, and ``meta``."""
    names = ["r_lo", "r_hi", "r_mid", "r_kpc", "n_pix"]
    units = {"r_kpc": "kpc"}
    for col, _, unit in DENSITIES:
        names += [f"{col}_{s}" for s in ("p16", "p50", "p84")]
        units.update({f"{col}_{s}": f"dex({unit})" for s in ("p16", "p50", "p84")})
    for col, _, unit in INTENSIVE:
        names += [f"{col}_{s}" for s in ("p16", "p50", "p84")]
        units.update({f"{col}_{s}": unit for s in ("p16", "p50", "p84")})
    table = Table(rows=[[r[n] for n in names] for r in rows] or None, names=names,
                  dtype=[int if n == "n_pix" else float for n in names])
    for n, unit in units.items():
        table[n].unit = unit
    table.meta.update(meta)
    return table


def showcase_bins(binmap, radius_re, usable):
    """Three bins to show: the one nearest the centre, the one nearest R_e and the
    outermost, among ``usable`` bin ids (S/N-complete and fitted), by the mean
    R/R_e of their pixels.

    Parameters
    ----------
    binmap : ndarray (ny, nx) int
        Bin ids (0 outside).
    radius_re : ndarray (ny, nx)
        Each pixel's elliptical radius in R_e.
    usable : iterable of int

    Returns
    -------
    list of (bin_id, mean R/R_e, label), distinct bins, inner to outer.
    """
    usable = sorted(set(int(b) for b in usable))
    if not usable:
        return []
    ids = np.asarray(binmap).ravel()
    n = int(ids.max()) + 1
    count = np.bincount(ids, minlength=n)
    mean_r = np.bincount(ids, weights=np.asarray(radius_re, float).ravel(), minlength=n) \
        / np.maximum(count, 1)
    r = mean_r[usable]
    picks = [("centre", int(np.argmin(r))), ("R_e", int(np.argmin(np.abs(r - 1.0)))),
             ("outskirts", int(np.argmax(r)))]
    out, seen = [], set()
    for label, i in picks:
        if usable[i] not in seen:
            seen.add(usable[i])
            out.append((usable[i], float(r[i]), label))
    return out
