"""Maps stage: per-bin fit results -> property maps with WCS.

* Bin-space maps (``MAPSPACE='BIN'``): p16/p50/p84 of every parameter and
  derived quantity, the bin's value repeated on its pixels.
* Pixel-space maps (``MAPSPACE='PIXEL'``) of the extensive quantities (log
  stellar mass, log SFR, log dust mass): the bin's total is shared among its
  pixels in proportion to their flux in a chosen band,
  ``log X_pix = log X_bin + log10(f_pix / f_bin)``, with
  ``sigma_pix^2 = sigma_bin^2 + (sigma_f,pix / (f_pix ln 10))^2`` where
  ``sigma_bin = (p84 - p16) / 2``. Pixels with a non-positive flux in that band
  are NaN.
"""

import numpy as np

from .errors import InputError
from .io import MapSet, PropertyMap

UNITS = {
    "log_mstar": "dex(solMass)", "log_mass_formed": "dex(solMass)",
    "log_sfr": "dex(solMass / yr)", "log_ssfr": "dex(1 / yr)", "log_mdust": "dex(solMass)",
    "age_mw": "Gyr", "av": "mag", "logzsol": "dex", "log_age": "dex(Gyr)",
    "log_tau": "dex(Gyr)", "log_t0": "dex(Gyr)", "dust1": "", "dust2": "", "dust_index": "",
    "gas_logu": "dex", "gas_logz": "dex", "log_umin": "dex", "log_gamma": "dex",
    "log_qpah": "dex", "log_alpha": "dex", "log_beta": "dex",
}
EXTENSIVE = ("log_mstar", "log_sfr", "log_mdust")
DEFAULT_SPLIT = {"log_mstar": "sdss_z", "log_sfr": "galex_nuv", "log_mdust": "wise_w2"}


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
    flag = np.full(binmap.shape, -1, np.float32)
    flag[inside] = np.array([r.flag for r in results], np.float32)[lookup[binmap[inside]]]
    out["FIT_FLAG"] = PropertyMap(flag, "", "BIN")
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
        ``{quantity: band}``; defaults to ``DEFAULT_SPLIT`` restricted to the cube's bands.
    """
    user = split is not None
    split = dict(split if user else DEFAULT_SPLIT)
    out = {}
    inside = binmap > 0
    n_bin = int(binmap.max())
    lookup = np.concatenate([[0], np.arange(n_bin)])
    for name, band in split.items():
        if band not in filters:
            if not user:
                continue
            raise InputError(f"maps.split band '{band}' for {name} is not in the cube",
                             path="maps.split", fix=f"use one of {filters}")
        b = filters.index(band)
        f, e = flux[b], flux_err[b]
        fbin = np.bincount(binmap[inside] - 1, weights=f[inside], minlength=n_bin)
        table = np.full((n_bin, 3), np.nan)
        for k, r in enumerate(results):
            if not r.flag and name in r.percentiles:
                table[k] = r.percentiles[name]
        if np.all(np.isnan(table)):
            continue
        rows = lookup[binmap]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(inside & (f > 0), f / fbin[rows], np.nan)
            p50 = table[rows, 1] + np.log10(ratio)
            sig_bin = 0.5 * (table[rows, 2] - table[rows, 0])
            sig = np.sqrt(sig_bin**2 + (e / (f * np.log(10))) ** 2)
        p50 = np.where(inside, p50, np.nan)
        for suf, img in (("P16", p50 - sig), ("P50", p50), ("P84", p50 + sig)):
            out[_ext(name, f"PIX_{suf}")] = PropertyMap(img.astype(np.float32),
                                                       UNITS.get(name, ""), "PIXEL")
    return out


def make_map_set(galaxy, wcs, binmap, results, flux=None, flux_err=None, filters=None,
                 split=None, confhash=None):
    """All maps of one galaxy as a ``sedmap.io.MapSet``."""
    maps = bin_space_maps(binmap, results)
    if flux is not None:
        maps.update(pixel_space_maps(binmap, results, flux, flux_err, list(filters), split))
    return MapSet(galaxy=galaxy, wcs=wcs, maps=maps, config_hash=confhash or "none")
