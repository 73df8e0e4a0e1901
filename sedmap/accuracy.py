"""Accuracy report: recovered vs true properties of the mock galaxy, per bin.

The truth per bin comes from the mock's truth maps binned with the same bin
map: log M* and log SFR are summed in linear units; logZ and A_V are averaged
with the true stellar mass as weight, and the mass-weighted age with the mass
formed (``LOG_MASS_FORMED``, as the fits weight it) where the truth has it.
"""


import numpy as np

from .io.jsonfile import write_json

QUANTITIES = {  # report name: (truth map, fit quantity)
    "log_mass": ("LOG_MASS", "log_mstar"),
    "log_sfr": ("LOG_SFR", "log_sfr"),
    "age_mw": ("AGE_MW", "age_mw"),
    "logz": ("LOGZ", "logzsol"),
    "av": ("AV", "av"),
}


def bin_truth(binmap, truth_maps):
    """Truth per bin from per-pixel truth maps.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
    truth_maps : dict of ndarray (ny, nx)
        LOG_MASS (log Msun), LOG_SFR (log Msun/yr), AGE_MW (Gyr), LOGZ, AV;
        optionally LOG_MASS_FORMED (log Msun), the weight of AGE_MW.

    Returns
    -------
    dict of ndarray (n_bin,)
    """
    n_bin = int(binmap.max())
    inside = binmap > 0
    idx = binmap[inside] - 1

    def total(log_map):
        return np.bincount(idx, weights=np.nan_to_num(10 ** log_map[inside]), minlength=n_bin)

    mass = total(truth_maps["LOG_MASS"])
    out = {"LOG_MASS": np.log10(mass)}
    with np.errstate(divide="ignore"):
        out["LOG_SFR"] = np.log10(total(truth_maps["LOG_SFR"]))
    w = np.nan_to_num(10 ** truth_maps["LOG_MASS"][inside])
    formed = truth_maps.get("LOG_MASS_FORMED")
    wf = w if formed is None else np.nan_to_num(10 ** formed[inside])
    for key in ("AGE_MW", "LOGZ", "AV"):
        if key in truth_maps:
            ww = wf if key == "AGE_MW" else w
            out[key] = np.bincount(idx, weights=ww * truth_maps[key][inside],
                                   minlength=n_bin) / np.bincount(idx, weights=ww,
                                                                  minlength=n_bin)
    return out


def compare(truth, results):
    """bias, scatter and 68% coverage of every quantity for one fit method, and the
    robust spread (1.4826 MAD) and median of the pulls, (p50 - truth) / ((p84 -
    p16) / 2): a spread near 1 where the intervals have the right width, whatever
    the bias (a coverage below 0.68 with a spread near 1 and a median pull far
    from 0 is a bias, not intervals too narrow).

    Parameters
    ----------
    truth : dict of ndarray (n_bin,), from :func:`bin_truth`
    results : dict {bin_id: FitResult}
        The bins fitted with this method (a subset is fine).
    """
    out = {}
    ids = sorted(results)
    for qname, (tkey, fkey) in QUANTITIES.items():
        if tkey not in truth:
            continue
        rows = [(truth[tkey][k - 1], results[k].percentiles[fkey]) for k in ids
                if not results[k].flag and fkey in results[k].percentiles
                and np.isfinite(truth[tkey][k - 1])]
        if not rows:
            continue
        t = np.array([r[0] for r in rows])
        p = np.array([r[1] for r in rows])
        d = p[:, 1] - t
        half = 0.5 * (p[:, 2] - p[:, 0])
        pull = d[half > 0] / half[half > 0]
        out[qname] = {"bias": float(np.mean(d)), "scatter": float(np.std(d)),
                      "coverage68": float(np.mean((t >= p[:, 0]) & (t <= p[:, 2]))),
                      "pull_spread": float(1.4826 * np.median(np.abs(pull - np.median(pull))))
                      if pull.size else float("nan"),
                      "pull_median": float(np.median(pull)) if pull.size else float("nan"),
                      "n_bins": len(rows)}
    return out


def write_report(path, report):
    """Write the JSON report atomically (sorted keys, stable bytes)."""
    return write_json(report, path)
