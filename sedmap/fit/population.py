"""A galaxy-wide (empirical-Bayes) prior: the centres of the priors, from all bins.

One bin's photometry barely constrains the shape of its old star formation
history, so its posterior follows the prior's centre (for the continuity SFH,
a constant SFR). All the bins of a galaxy together constrain that centre much
better. :func:`population_centres` estimates it by maximising the marginal
likelihood of every bin's data over the centres ``mu`` of the Gaussian and
Student-t priors (type-II maximum likelihood; the widths and ``nu`` stay as
configured), from each bin's weighted posterior samples (RDSPS's) reweighted
by ``p_mu(theta) / p_0(theta)``.

The fits then use the priors with the new centres (``fit.population_prior``):
a hierarchical model whose population parameters are fixed at their
maximum-likelihood values.
"""

import numpy as np

from ..errors import InputError
from .priors import Prior

#: prior forms whose centre the population estimate moves
FORMS = ("gaussian", "student_t")


def population_centres(samples, weights, priors, *, max_shift=1.0, max_iter=200):
    """Maximum-marginal-likelihood centres of the priors, from many bins' posteriors.

    The marginal likelihood of all bins, as a function of the centres ``mu``, is
    estimated by importance sampling of each bin's posterior samples,
    ``sum_b log sum_k w_bk p_mu(theta_bk) / p_0(theta_bk)``, and maximised with
    L-BFGS-B (analytic gradient).

    Parameters
    ----------
    samples : list of ndarray (k_b, n)
        Each bin's posterior samples of the n parameters (same order as ``priors``).
    weights : list of ndarray (k_b,)
        Their normalised posterior weights, computed under ``priors``.
    priors : list of sedmap.fit.priors.Prior
        The priors the weights were computed with; only those of ``FORMS`` move
        (the others are returned as NaN).
    max_shift : float
        The centres stay within this many prior widths (``sigma``) of where they
        were, and inside the ranges: the samples were drawn under the old priors,
        and further away the importance weights rest on a few tail samples.
    max_iter : int

    Returns
    -------
    centres : ndarray (n,)
        The new ``mu`` of each prior (NaN where it does not move).
    n_iter : int
        Optimiser iterations.
    """
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    if len(samples) != len(weights) or not samples:
        raise InputError("the population prior needs the posteriors of at least one bin",
                         path="fit.population_prior", fix="check that the bins were fitted")
    movable = [j for j, p in enumerate(priors) if p.form in FORMS]
    out = np.full(len(priors), np.nan)
    if not movable:
        return out, 0
    mu0, sig, nu = _form_arrays(priors, movable)
    moving = [priors[j] for j in movable]
    th = [np.asarray(s, float)[:, movable] for s in samples]
    lw0 = [np.log(np.clip(np.asarray(w, float), 1e-300, None)) - _log_prior(moving, mu0, t)
           for t, w in zip(th, weights)]

    def objective(mu):
        f, g = 0.0, np.zeros(mu.size)
        for t, lw in zip(th, lw0):
            a = lw + _log_prior(moving, mu, t)
            norm = logsumexp(a)
            r = np.exp(a - norm)
            f -= norm
            g -= r @ _dlogpdf(t, mu, sig, nu)
        return f, g

    lo = np.maximum([priors[j].lo for j in movable], mu0 - max_shift * sig)
    hi = np.minimum([priors[j].hi for j in movable], mu0 + max_shift * sig)
    res = minimize(objective, mu0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)),
                   options={"maxiter": int(max_iter)})
    out[movable] = res.x
    return out, int(res.nit)


def reweight(samples, weights, priors, centres):
    """Weights of one bin's samples under the priors moved to ``centres``, normalised."""
    movable = [j for j, p in enumerate(priors) if p.form in FORMS]
    w = np.asarray(weights, float)
    if not movable:
        return w / w.sum()
    t = np.asarray(samples, float)[:, movable]
    moving = [priors[j] for j in movable]
    lw = (np.log(np.clip(w, 1e-300, None))
          + _log_prior(moving, np.asarray(centres)[movable], t)
          - _log_prior(moving, _form_arrays(priors, movable)[0], t))
    return _normalised(lw)


def moved_priors(priors, centres):
    """The priors as a ``fit.priors``-style dict {name: {form, mu, ...}} with new centres
    (only the moved ones)."""
    out = {}
    for p, c in zip(priors, centres):
        if p.form in FORMS:
            out[p.name] = {"form": p.form, **{k: float(v) for k, v in p.kw.items()},
                           "mu": float(c), "min": p.lo, "max": p.hi}
    return out


def _log_prior(moving, mu, t):
    """Sum over the moving priors of their log densities at samples t (k, n), with
    their centres at ``mu``. The truncation's normalisation, which changes with
    mu, is neglected: the ranges are taken to be wide compared with the widths."""
    return sum(Prior(p.name, p.lo, p.hi, p.form, **{**p.kw, "mu": float(m)}).logpdf(t[:, i])
               for i, (p, m) in enumerate(zip(moving, mu)))


def _dlogpdf(t, mu, sig, nu):
    """d/dmu of each parameter's log density, (k, n)."""
    d = (t - mu) / sig
    gauss = ~np.isfinite(nu)
    nn = np.where(gauss, 1.0, nu)
    return np.where(gauss, d / sig, (nn + 1) * d / (sig * (nn + d * d)))


def _form_arrays(priors, movable):
    mu = np.array([priors[j].kw["mu"] for j in movable], float)
    sig = np.array([priors[j].kw["sigma"] for j in movable], float)
    nu = np.array([priors[j].kw.get("nu", np.inf) if priors[j].form == "student_t"
                   else np.inf for j in movable], float)
    return mu, sig, nu


def _normalised(lw):
    w = np.exp(lw - np.max(lw))
    return w / w.sum()


__all__ = ["FORMS", "moved_priors", "population_centres", "reweight"]
