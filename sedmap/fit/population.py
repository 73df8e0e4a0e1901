"""A galaxy-wide (empirical-Bayes) prior: the priors' centres and widths, from all bins.

One bin's photometry barely constrains the shape of its old star formation
history, so its posterior follows the prior (for the continuity SFH, a
constant SFR, with the prior's full width). All the bins of a galaxy together
constrain the population they come from much better.
:func:`population_estimate` maximises the marginal likelihood of every bin's
data over the centres ``mu`` (and, optionally, the widths ``sigma``) of the
Gaussian and Student-t priors (type-II maximum likelihood; ``nu`` and the
ranges stay as configured), from each bin's weighted posterior samples
(RDSPS's) reweighted by ``p_(mu, sigma)(theta) / p_0(theta)``.

The fits then use the priors with the estimated centres and widths
(``fit.population_prior``): a hierarchical model whose population parameters
are fixed at their maximum-likelihood values.
"""

import numpy as np
from scipy import stats
from scipy.special import gammaln

from ..errors import InputError

#: prior forms whose centre (and width) the population estimate moves
FORMS = ("gaussian", "student_t")


def population_estimate(samples, weights, priors, *, grid=None, grid_log_weight=None,
                        max_shift=1.0, widths=False, min_width=0.2, max_iter=200):
    """Maximum-marginal-likelihood centres (and widths) of the priors, from many bins.

    The marginal likelihood of all bins as a function of the centres ``mu`` and
    widths ``sigma`` is estimated by importance sampling of each bin's posterior
    samples, ``sum_b log sum_k w_bk p_(mu,sigma)(theta_bk) / p_0(theta_bk)``,
    and maximised with L-BFGS-B (analytic gradient).

    With ``grid``, the priors are those the grid represents: ``p_(mu,sigma)`` is
    normalised over the grid's models, ``sum_j g_j p(theta_j) / p_0(theta_j)``
    (``g`` the grid's importance weights), not over the parameter space. All
    bins share one finite grid, whose clumps and gaps near the centre would
    otherwise enter every bin's term alike: with 1000 bins, a 4% excess of
    models near the centre is worth 40 in log likelihood, and pulls the widths
    away from the population's. Normalised on the grid, the excess cancels.

    Parameters
    ----------
    samples : list of ndarray (k_b, n)
        Each bin's posterior samples of the n parameters (same order as ``priors``).
    weights : list of ndarray (k_b,)
        Their normalised posterior weights, computed under ``priors``.
    priors : list of sedmap.fit.priors.Prior
        The priors the weights were computed with; only those of ``FORMS`` move
        (the others are returned as NaN).
    grid : ndarray (n_grid, n), optional
        The parameters of every model of the grid the samples come from.
    grid_log_weight : ndarray (n_grid,), optional
        The grid models' log importance weights under ``priors`` (prior over
        draw density, up to a constant; None: all equal).
    max_shift : float
        The centres stay within this many (configured) prior widths of where
        they were, and inside the ranges: the samples were drawn under the old
        priors, and further away the importance weights rest on a few tail samples.
    widths : bool
        Estimate the widths too. They may only shrink, to ``min_width`` times the
        configured ones at least: a population narrower than the prior is what
        all the bins can show; a wider one would rest on the old prior's tails.
    min_width : float
    max_iter : int

    Returns
    -------
    centres, sigmas : ndarray (n,)
        The new ``mu`` and ``sigma`` of each prior (NaN where it does not move).
    n_iter : int
        Optimiser iterations.
    """
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    if len(samples) != len(weights) or not samples:
        raise InputError("the population prior needs the posteriors of at least one bin",
                         path="fit.population_prior", fix="check that the bins were fitted")
    movable = [j for j, p in enumerate(priors) if p.form in FORMS]
    centres, sigmas = np.full(len(priors), np.nan), np.full(len(priors), np.nan)
    if not movable:
        return centres, sigmas, 0
    mu0, sig0, nu, lo, hi = _form_arrays(priors, movable)
    m = len(movable)
    th = [np.asarray(s, float)[:, movable] for s in samples]
    lw0 = [np.log(np.clip(np.asarray(w, float), 1e-300, None))
           - log_density(t, mu0, sig0, nu, lo, hi)[0] for t, w in zip(th, weights)]

    if grid is not None:
        tg = np.asarray(grid, float)[:, movable]
        gw = (np.zeros(len(tg)) if grid_log_weight is None
              else np.asarray(grid_log_weight, float))
        gw = gw - log_density(tg, mu0, sig0, nu, lo, hi)[0]

    def objective(x):
        mu, sig = x[:m], np.exp(x[m:])
        f, g = 0.0, np.zeros(2 * m)
        for t, lw in zip(th, lw0):
            lp, dmu, dls = _untruncated(t, mu, sig, nu, grad=True)
            a = lw + lp
            norm = logsumexp(a)
            r = np.exp(a - norm)
            f -= norm
            g[:m] -= r @ dmu
            g[m:] -= r @ dls
        # each bin's prior normalised on the grid (the truncation then cancels), or
        # on its range
        if grid is not None:
            lp, dmu, dls = _untruncated(tg, mu, sig, nu, grad=True)
            a = gw + lp
            norm = logsumexp(a)
            r = np.exp(a - norm)
            dz_mu, dz_ls = r @ dmu, r @ dls
        else:
            norm, dz_mu, dz_ls = _log_truncation(mu, sig, nu, lo, hi)
        f += len(th) * norm
        g[:m] += len(th) * dz_mu
        g[m:] += len(th) * dz_ls
        return f, g

    bounds = list(zip(np.maximum(lo, mu0 - max_shift * sig0),
                      np.minimum(hi, mu0 + max_shift * sig0)))
    ls0 = np.log(sig0)
    bounds += [(l0 + np.log(min_width), l0) if widths else (l0, l0) for l0 in ls0]
    res = minimize(objective, np.concatenate([mu0, ls0]), jac=True, method="L-BFGS-B",
                   bounds=bounds, options={"maxiter": int(max_iter)})
    centres[movable], sigmas[movable] = res.x[:m], np.where(widths, np.exp(res.x[m:]), sig0)
    return centres, sigmas, int(res.nit)


def log_density(t, mu, sig, nu, lo, hi, grad=False):
    """Summed log density of Gaussian (``nu`` = inf) or Student-t priors truncated to
    [lo, hi], at samples t (k, n); with ``grad``, also its derivatives (k, n) with
    respect to each ``mu`` and ``log sigma``. (``Prior.logpdf`` leaves out the
    normalisation, which is constant in a fit but not here.)"""
    lp, dmu, dls = _untruncated(t, mu, sig, nu, grad)
    lz, dz_mu, dz_ls = _log_truncation(mu, sig, nu, lo, hi)
    if not grad:
        return lp - lz, None, None
    return lp - lz, dmu - dz_mu, dls - dz_ls


def _untruncated(t, mu, sig, nu, grad=False):
    """Summed log density (k,) of the untruncated priors, and its derivatives (k, n)."""
    d = (t - mu) / sig
    gauss = ~np.isfinite(nu)
    nn = np.where(gauss, 1.0, nu)
    const = np.where(gauss, -0.5 * np.log(2 * np.pi),
                     gammaln(0.5 * (nn + 1)) - gammaln(0.5 * nn) - 0.5 * np.log(nn * np.pi))
    d2 = d * d
    lp = np.where(gauss, -0.5 * d2, -0.5 * (nn + 1) * np.log1p(d2 / nn)) + const - np.log(sig)
    if not grad:
        return lp.sum(axis=1), None, None
    u = np.where(gauss, d, (nn + 1) * d / (nn + d2))  # -d log f / d d
    return lp.sum(axis=1), u / sig, u * d - 1.0


def _log_truncation(mu, sig, nu, lo, hi):
    """log of the priors' mass inside [lo, hi], summed, and its derivatives (n,) with
    respect to each ``mu`` and ``log sigma``."""
    gauss = ~np.isfinite(nu)
    nn = np.where(gauss, 1.0, nu)
    a, b = (lo - mu) / sig, (hi - mu) / sig
    z = _std(gauss, nn, "cdf", b) - _std(gauss, nn, "cdf", a)
    pa = np.where(np.isfinite(a), _std(gauss, nn, "pdf", a), 0.0)
    pb = np.where(np.isfinite(b), _std(gauss, nn, "pdf", b), 0.0)
    aa, bb = np.where(np.isfinite(a), a, 0.0), np.where(np.isfinite(b), b, 0.0)
    return np.sum(np.log(z)), (pa - pb) / (sig * z), (aa * pa - bb * pb) / z


def _std(gauss, nu, fn, x):
    """The standard normal's (where ``gauss``) or Student-t's ``fn`` ('cdf', 'pdf') at x."""
    return np.where(gauss, getattr(stats.norm, fn)(x), getattr(stats.t, fn)(x, nu))


def reweight(samples, weights, priors, centres, sigmas=None):
    """Weights of one bin's samples under the priors moved to ``centres`` (and
    ``sigmas``), normalised."""
    movable = [j for j, p in enumerate(priors) if p.form in FORMS]
    w = np.asarray(weights, float)
    if not movable:
        return w / w.sum()
    t = np.asarray(samples, float)[:, movable]
    mu0, sig0, nu, lo, hi = _form_arrays(priors, movable)
    sig = sig0 if sigmas is None else np.asarray(sigmas, float)[movable]
    lw = (np.log(np.clip(w, 1e-300, None))
          + log_density(t, np.asarray(centres, float)[movable], sig, nu, lo, hi)[0]
          - log_density(t, mu0, sig0, nu, lo, hi)[0])
    return _normalised(lw)


def moved_priors(priors, centres, sigmas=None):
    """The moved priors as a ``fit.priors``-style dict {name: {form, mu, sigma, ...}}."""
    out = {}
    for j, (p, c) in enumerate(zip(priors, centres)):
        if p.form in FORMS:
            kw = {k: float(v) for k, v in p.kw.items()}
            kw["mu"] = float(c)
            if sigmas is not None:
                kw["sigma"] = float(sigmas[j])
            out[p.name] = {"form": p.form, **kw, "min": p.lo, "max": p.hi}
    return out


def _form_arrays(priors, movable):
    mu = np.array([priors[j].kw["mu"] for j in movable], float)
    sig = np.array([priors[j].kw["sigma"] for j in movable], float)
    nu = np.array([priors[j].kw.get("nu", np.inf) if priors[j].form == "student_t"
                   else np.inf for j in movable], float)
    lo = np.array([priors[j].lo for j in movable], float)
    hi = np.array([priors[j].hi for j in movable], float)
    return mu, sig, nu, lo, hi


def _normalised(lw):
    w = np.exp(lw - np.max(lw))
    return w / w.sum()


__all__ = ["FORMS", "log_density", "moved_priors", "population_estimate", "reweight"]
