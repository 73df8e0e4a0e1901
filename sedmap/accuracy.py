"""Accuracy report: recovered vs true properties of the mock galaxy, per bin.

The truth per bin comes from the mock's truth maps binned with the same bin
map: log M*, log SFR and the dust mass are summed in linear units; logZ and A_V
are averaged with the true stellar mass as weight, the mass-weighted age with the
mass formed (``LOG_MASS_FORMED``, as the fits weight it) where the truth has it,
and the DL07 parameters (log U_min, log gamma, log q_PAH) with the dust mass. The
dust maps are in the truth only where the mock's bands see the dust
(``sedmap.mock.truth.DUST_TRUTH_MIN_REST_AA``); a quantity the grid holds fixed
(every bin's posterior of zero width) is left out of the report, as is the
redshift of fits that held it at the galaxy's (:func:`redshift_truth` gives every bin
the mock's one ``Z``).
"""


import numpy as np

from .constants import MAD_TO_SIGMA
from .io.jsonfile import write_json

QUANTITIES = {  # report name: (truth map, fit quantity)
    "log_mass": ("LOG_MASS", "log_mstar"),
    "log_sfr": ("LOG_SFR", "log_sfr"),
    "age_mw": ("AGE_MW", "age_mw"),
    "logz": ("LOGZ", "logzsol"),
    "av": ("AV", "av"),
    "log_mdust": ("LOG_MDUST", "log_mdust"),
    "log_umin": ("LOG_UMIN", "log_umin"),
    "log_gamma": ("LOG_GAMMA", "log_gamma"),
    "log_qpah": ("LOG_QPAH", "log_qpah"),
    "redshift": ("Z", "redshift"),  # fits with a free redshift; the truth's one Z
}
#: truth maps summed over a bin (log10 of extensive quantities)
EXTENSIVE = ("LOG_MASS", "LOG_SFR", "LOG_MDUST")
#: truth maps averaged over a bin with the stellar mass ("LOG_MASS"), the mass formed
#: ("LOG_MASS_FORMED", where the truth has it, else the stellar mass) or the dust
#: mass ("LOG_MDUST") as weight
WEIGHTED = {"AGE_MW": "LOG_MASS_FORMED", "LOGZ": "LOG_MASS", "AV": "LOG_MASS",
            "LOG_UMIN": "LOG_MDUST", "LOG_GAMMA": "LOG_MDUST", "LOG_QPAH": "LOG_MDUST"}
#: every truth map the report reads (the mock's truth.fits has those of its bands)
TRUTH_MAPS = EXTENSIVE + tuple(WEIGHTED) + ("LOG_MASS_FORMED",)


def bin_truth(binmap, truth_maps):
    """Truth per bin from per-pixel truth maps.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
    truth_maps : dict of ndarray (ny, nx)
        LOG_MASS (log Msun), LOG_SFR (log Msun/yr), AGE_MW (Gyr), LOGZ, AV;
        optionally LOG_MASS_FORMED (log Msun), the weight of AGE_MW; LOG_MDUST (log
        Msun) and the dust-mass-weighted LOG_UMIN, LOG_GAMMA, LOG_QPAH (dex).

    Returns
    -------
    dict of ndarray (n_bin,), the keys of ``truth_maps`` but LOG_MASS_FORMED
    """
    n_bin = int(binmap.max())
    inside = binmap > 0
    idx = binmap[inside] - 1

    def weight(log_map):
        return np.nan_to_num(10 ** log_map[inside])

    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for key in (k for k in EXTENSIVE if k in truth_maps):
            out[key] = np.log10(np.bincount(idx, weights=weight(truth_maps[key]),
                                            minlength=n_bin))
        for key, wkey in WEIGHTED.items():
            if key not in truth_maps:
                continue
            w = weight(truth_maps[wkey if wkey in truth_maps else "LOG_MASS"])
            value = truth_maps[key][inside]
            out[key] = np.bincount(idx, weights=w * value, minlength=n_bin) / \
                np.bincount(idx, weights=w, minlength=n_bin)
    return out


def redshift_truth(n_bin, z):
    """The truth entry ``Z`` of :func:`compare` for a mock at one redshift ``z``: every
    one of the ``n_bin`` bins at ``z`` (the fits of a free redshift are judged
    against it)."""
    return {"Z": np.full(int(n_bin), float(z))}


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
        if np.all(p[:, 2] <= p[:, 0]):  # held fixed by the grid: nothing was fitted
            continue
        d = p[:, 1] - t
        half = 0.5 * (p[:, 2] - p[:, 0])
        pull = d[half > 0] / half[half > 0]
        out[qname] = {"bias": float(np.mean(d)), "scatter": float(np.std(d)),
                      "coverage68": float(np.mean((t >= p[:, 0]) & (t <= p[:, 2]))),
                      "pull_spread": float(MAD_TO_SIGMA * np.median(np.abs(pull - np.median(pull))))
                      if pull.size else float("nan"),
                      "pull_median": float(np.median(pull)) if pull.size else float("nan"),
                      "n_bins": len(rows)}
    return out


def write_report(path, report):
    """Write the JSON report atomically (sorted keys, stable bytes)."""
    return write_json(report, path)
