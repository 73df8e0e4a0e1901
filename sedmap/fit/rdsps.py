"""RDSPS: fit every bin against the whole model grid at once.

For bin i and model j, with weights w = 1 / (sigma^2 + (sys_err f)^2), the
mass normalisation s that minimises chi^2 is analytic::

    s_ij = sum_b f_ib m_jb w_ib / sum_b m_jb^2 w_ib
    chi2_ij = sum_b f_ib^2 w_ib - (sum_b f_ib m_jb w_ib)^2 / sum_b m_jb^2 w_ib

so all bins x all models are two matrix products. The posterior over the
grid (whose models were drawn uniformly from the priors' ranges) has weights
exp(-(chi2 - chi2_min)/2) (or Student-t likelihoods) over the models below the
``chi2_percentile``-th percentile of chi^2. Percentiles (p16, p50, p84) of every parameter are
weighted percentiles computed in the parameter's own space (log quantities
in log), unlike piXedfit, which computes log-parameter errors in linear space.
"""

import numpy as np

from ..constants import AV_PER_TAU_V, FLAG_BAD_SED, FLAG_NO_FIT
from ..errors import InputError
from ..progress import progress as progress_bar
from ..stats import LEVELS, weighted_percentiles  # noqa: F401 (LEVELS: public here too)

#: the lowest specific SFR a fit reports, 1/yr (log sSFR = -14)
SSFR_FLOOR = 1e-14


def derived_columns(params, names, derived, scale):
    """Physical quantities of models scaled by ``scale`` (Msun formed).

    Returns a dict of (k,) arrays: log_mstar (log Msun), log_sfr (log Msun/yr,
    100 Myr; at least ``SSFR_FLOOR`` times the stellar mass: broad bands cannot
    tell a lower SFR from none, and a log of a vanishing SFR would put the
    posterior's tail tens of dex down), log_ssfr (log 1/yr), age_mw (Gyr), log_mdust
    (log Msun), av (mag,
    diffuse A_V = 1.086 dust2), log_mass_formed.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "log_mass_formed": np.log10(scale),
            "log_mstar": np.log10(scale * derived["surviving_mass"]),
            "log_sfr": np.log10(np.maximum(scale * derived["sfr_100myr"],
                                           SSFR_FLOOR * scale * derived["surviving_mass"])),
            "age_mw": derived["mass_weighted_age"],
            "log_mdust": np.log10(scale * derived["dust_mass"]),
        }
        out["log_ssfr"] = out["log_sfr"] - out["log_mstar"]
    if "dust2" in names:
        out["av"] = AV_PER_TAU_V * params[:, names.index("dust2")]
    return out


def chi2_scale(flux, var, model_phot, sys_err=0.0):
    """chi^2 and best scale of every (bin, model) pair.

    Parameters
    ----------
    flux, var : ndarray (n_bin, n_band)
    model_phot : ndarray (n_model, n_band)
        Model fluxes per unit scale.
    sys_err : float
        Fractional systematic error added in quadrature.

    Returns
    -------
    chi2, scale : ndarray (n_bin, n_model)
    """
    w = 1.0 / (var + (sys_err * flux) ** 2)
    m = np.asarray(model_phot, float)
    a = (flux * w) @ m.T
    b = w @ (m**2).T
    c = np.sum(flux**2 * w, axis=1)[:, None]
    s = a / b
    chi2 = c - a * s
    neg = s <= 0
    chi2[neg] = np.broadcast_to(c, chi2.shape)[neg]
    s[neg] = np.nan
    return chi2, s


def fit_rdsps(flux, var, model_phot, params, param_names, derived, *, sys_err=0.0,
              chi2_percentile=10.0, max_samples=2000, bin_chunk=None, likelihood="gaussian",
              nu=3.0, log_prior=None, progress=False):
    """Fit all bins against the grid.

    Parameters
    ----------
    flux, var : ndarray (n_bin, n_band)
        Observed fluxes and variances (same units as ``model_phot`` x scale).
    model_phot : ndarray (n_model, n_band)
        Model photometry per Msun formed at the galaxy's redshift.
    params : ndarray (n_model, n_param)
    param_names : list of str
    derived : dict of ndarray (n_model,)
        The grid's derived quantities (per Msun formed).
    sys_err : float
        Fractional systematic error floor.
    chi2_percentile : float
        Models below this percentile of chi^2 (per bin) enter the posterior.
    likelihood : {'gaussian', 'student_t'}
        Weights exp(-chi2/2), or the Student-t likelihood with ``nu`` degrees of
        freedom (at each model's best scale).
    log_prior : ndarray (n_model,), optional
        Log prior density of each model relative to the grid's (uniform) draw
        density: the posterior weights are multiplied by exp(log_prior)
        (importance weighting), so ``fit.priors`` act on RDSPS too.
    max_samples : int
        Most weighted samples kept per bin (the highest weights).

    Returns
    -------
    list of dict, one per bin, with keys: names, percentiles (3, n), samples
    (k, n), weights (k,), best (index, scale, chi2), chi2_min, flag.
    Bins whose SED is all NaN or has a zero/NaN variance get flag=2 and no fit.
    """
    flux = np.asarray(flux, float)
    var = np.asarray(var, float)
    n_bin, nb = flux.shape
    if model_phot.shape[1] != nb:
        raise InputError(f"the model photometry has {model_phot.shape[1]} bands, the bins "
                         f"{nb}", path="fit", fix="rebuild the grid photometry for these "
                         "filters")
    good = np.all(np.isfinite(flux) & np.isfinite(var) & (var > 0), axis=1)
    names = list(param_names)
    n_mod = model_phot.shape[0]
    if bin_chunk is None:
        bin_chunk = max(1, int(2.5e7 // n_mod))
    keep = max(1, int(np.ceil(n_mod * chi2_percentile / 100.0)))
    results = [None] * n_bin
    idx_good = np.flatnonzero(good)
    for s0 in progress_bar(range(0, idx_good.size, bin_chunk), desc="RDSPS", unit="chunk",
                           disable=not progress):
        rows = idx_good[s0:s0 + bin_chunk]
        chi2, scale = chi2_scale(flux[rows], var[rows], model_phot, sys_err)
        part = np.argpartition(chi2, keep - 1, axis=1)[:, :keep]
        for r, i in enumerate(rows):
            sel = part[r]
            sel = sel[np.isfinite(scale[r, sel])]
            if sel.size == 0:  # no model fits with a positive mass (e.g. negative fluxes)
                results[i] = {"flag": FLAG_NO_FIT}
                continue
            c = chi2[r, sel]
            if likelihood == "student_t":
                # heavier tails than a Gaussian (piXedfit's choice for RDSPS): outlying
                # bands and a sparse grid do not collapse the posterior onto one model
                sig2 = var[i] + (sys_err * flux[i]) ** 2
                res2 = (flux[i] - scale[r, sel, None] * model_phot[sel]) ** 2 / sig2
                lnl = -0.5 * (nu + 1) * np.log1p(res2 / nu).sum(axis=1)
                w = np.exp(lnl - lnl.max())
            else:
                w = np.exp(-0.5 * (c - c.min()))
            if log_prior is not None:
                lp = log_prior[sel]
                w = w * np.exp(lp - np.max(lp[np.isfinite(lp)], initial=0.0))
                if not np.any(w > 0):
                    results[i] = {"flag": FLAG_NO_FIT}
                    continue
            if sel.size > max_samples:
                top = np.argpartition(-w, max_samples - 1)[:max_samples]
                sel, w, c = sel[top], w[top], c[top]
            order = np.argsort(sel)
            sel, w, c = sel[order], w[order], c[order]
            dcols = derived_columns(params[sel], names, {k: v[sel] for k, v in derived.items()},
                                    scale[r, sel])
            all_names = names + list(dcols)
            samples = np.column_stack([params[sel]] + [dcols[k] for k in dcols])
            finite = np.all(np.isfinite(samples), axis=0)  # e.g. dust mass w/o dust emission
            samples = samples[:, finite]
            all_names = [n for n, f in zip(all_names, finite) if f]
            pct = weighted_percentiles(samples, w)
            best = int(np.argmin(c))
            results[i] = {"names": all_names, "percentiles": pct, "samples": samples,
                          "weights": w / w.sum(), "best_index": int(sel[best]),
                          "best_scale": float(scale[r, sel[best]]), "chi2_min": float(c[best]),
                          "flag": 0}
    for i in np.flatnonzero(~good):
        results[i] = {"flag": FLAG_BAD_SED}
    return results
