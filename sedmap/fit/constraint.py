"""How much the data narrowed each quantity relative to its prior.

For every fitted parameter and derived quantity, the *constraint* of a bin is

    C = 1 - (p84 - p16)_posterior / (p84 - p16)_prior

(0: the posterior is as wide as the prior, the data told nothing; 1: a
point). The prior's 68% width is that of the same quantity over the models
drawn from the fit's prior (the model grid, importance-weighted to the
configured ``fit.priors``).

Extensive quantities (stellar mass, mass formed, SFR, dust mass) scale with
the normalisation, which every fit sets from the data. Their prior width is
therefore taken at a fixed observed flux: the spread over the prior's models
of ``log X - log F_b``, X per unit mass formed and F_b the model's flux in
the bin's highest-S/N band b. One band fixes the normalisation and nothing
else; C then measures what the rest of the SED adds (for the mass, the
mass-to-light ratio; for the SFR, its ratio to that band's light).

With the population prior (``fit.population_prior``) the reference is still
the configured prior: narrowing that comes from the other bins counts as
constraint, as it is data, not assumption.
"""

import numpy as np

from ..stats import weighted_percentiles
from .rdsps import derived_columns

__all__ = ["EXTENSIVE", "bin_prior_widths", "constraint", "prior_widths"]

#: quantities that scale with the fitted normalisation (log, per unit mass formed)
EXTENSIVE = ("log_mstar", "log_mass_formed", "log_sfr", "log_mdust")

#: the most grid models used for the prior widths (the grid's draws are random, so
#: the first ones are a fair sample)
MAX_MODELS = 100_000


def _width(values, weights):
    q = weighted_percentiles(values, weights, (16.0, 84.0))
    return q[1] - q[0]


def prior_widths(params, param_names, derived, model_phot, log_prior=None,
                 max_models=MAX_MODELS):
    """68% widths of every quantity over the prior's models.

    Parameters
    ----------
    params : ndarray (n_model, n_param)
    param_names : list of str
    derived : dict of ndarray (n_model,)
        The grid's derived quantities per Msun formed.
    model_phot : ndarray (n_model, n_band)
        Model fluxes per Msun formed at the galaxy's redshift (any unit).
    log_prior : ndarray (n_model,), optional
        Log importance weight of each model (the fit's prior over the grid's
        draw density), as RDSPS uses.

    Returns
    -------
    intensive : dict name -> float
        Width of each parameter and intensive derived quantity (age_mw in Gyr,
        log_ssfr and log quantities in dex, av in mag).
    extensive : dict name -> ndarray (n_band,)
        Width (dex) of ``log X - log F_b`` for each band b.
    """
    n = min(int(params.shape[0]), int(max_models))
    params = np.asarray(params[:n], float)
    phot = np.asarray(model_phot[:n], float)
    if log_prior is None:
        w = np.ones(n)
    else:
        lp = np.asarray(log_prior[:n], float)
        w = np.exp(lp - np.max(lp[np.isfinite(lp)], initial=0.0))
        w = np.where(np.isfinite(w), w, 0.0)
    cols = derived_columns(params, list(param_names),
                           {k: np.asarray(v[:n]) for k, v in derived.items()}, np.ones(n))
    intensive = {}
    for j, name in enumerate(param_names):
        intensive[name] = params[:, j]
    for name, v in cols.items():
        if name not in EXTENSIVE:
            intensive[name] = v
    names = [k for k, v in intensive.items() if np.all(np.isfinite(v))]
    widths = _width(np.column_stack([intensive[k] for k in names]), w)
    out_int = {k: float(x) for k, x in zip(names, widths)}
    with np.errstate(divide="ignore", invalid="ignore"):
        logf = np.log10(phot)
    ok = np.all(np.isfinite(logf), axis=1)
    out_ext = {}
    for name in EXTENSIVE:
        v = cols.get(name)
        if v is None or not np.all(np.isfinite(v[ok])):
            continue
        out_ext[name] = _width(v[ok, None] - logf[ok], w[ok])
    return out_int, out_ext


def bin_prior_widths(intensive, extensive, flux, var):
    """One bin's prior widths: the intensive ones, and the extensive ones at its
    highest-S/N band (``flux``, ``var``: the bin's (n_band,) fluxes and variances)."""
    snr = np.where(var > 0, flux / np.sqrt(np.where(var > 0, var, 1.0)), -np.inf)
    b = int(np.argmax(np.nan_to_num(snr, nan=-np.inf)))
    return {**intensive, **{k: float(v[b]) for k, v in extensive.items()}}


def constraint(percentiles, prior_width):
    """``{name: C}`` of one bin: 1 - posterior 68% width / prior 68% width, for every
    quantity with both (``percentiles``: name -> [p16, p50, p84])."""
    out = {}
    for name, pw in (prior_width or {}).items():
        p = percentiles.get(name)
        if p is None or not pw > 0:
            continue
        out[name] = float(1.0 - (p[2] - p[0]) / pw)
    return out
