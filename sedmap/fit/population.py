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

With ``covariance``, the Gaussian priors are estimated as one multivariate
Gaussian (their correlations too), written as the priors' ``correlation``
entry (:class:`sedmap.priors.Correlation`).

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
                        max_shift=1.0, widths=False, min_width=0.2, covariance=False,
                        max_iter=200):
    """Maximum-marginal-likelihood centres (and widths, and correlations) of the priors.

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

    With ``covariance``, the Gaussian priors become one multivariate Gaussian
    whose correlations are estimated too (Student-t priors stay independent).
    A galaxy's parameters are rarely independent across its bins (age,
    metallicity and dust all follow radius); a population prior that knows it
    narrows each bin's posterior along the correlation, where independent
    priors leave it prior-wide. Its covariance is ``S C S``: ``S`` the marginal
    widths (bounded like ``widths``) and ``C`` a correlation matrix with
    Cholesky factor of unit rows (``B`` row-normalised, ``B`` lower triangular
    with unit diagonal, its strict lower entries free). It needs ``grid``
    (a truncated multivariate Gaussian has no closed-form normalisation).

    Parameters
    ----------
    samples : list of ndarray (k_b, n)
        Each bin's posterior samples of the n parameters (same order as ``priors``).
    weights : list of ndarray (k_b,)
        Their normalised posterior weights, computed under ``priors``.
    priors : list of sedmap.priors.Prior
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
    covariance : bool
        Estimate the correlations of the Gaussian priors.
    max_iter : int

    Returns
    -------
    centres, sigmas : ndarray (n,)
        The new ``mu`` and ``sigma`` of each prior (NaN where it does not move).
    n_iter : int
        Optimiser iterations.
    correlation : dict or None
        With ``covariance`` (and two or more Gaussian priors): ``{"names": [...],
        "matrix": ndarray (m, m)}``, the correlation matrix of those priors.
    """
    from scipy.optimize import minimize

    if len(samples) != len(weights) or not samples:
        raise InputError("the population prior needs the posteriors of at least one bin",
                         path="fit.population_prior", fix="check that the bins were fitted")
    movable = [j for j, p in enumerate(priors) if p.form in FORMS]
    centres, sigmas = np.full(len(priors), np.nan), np.full(len(priors), np.nan)
    if not movable:
        return centres, sigmas, 0, None
    mu0, sig0, nu, lo, hi = _form_arrays(priors, movable)
    m = len(movable)
    joint = ([i for i, j in enumerate(movable) if priors[j].form == "gaussian"]
             if covariance else [])
    if len(joint) < 2:
        joint = []
    if joint and grid is None:
        raise InputError("a population prior with covariance needs the model grid",
                         path="fit.population_prior.covariance",
                         fix="pass the grid (RDSPS does) or set covariance: false")
    dens = _Density(nu, joint)
    th = [np.asarray(s, float)[:, movable] for s in samples]
    lw0 = [np.log(np.clip(np.asarray(w, float), 1e-300, None))
           - log_density(t, mu0, sig0, nu, lo, hi)[0] for t, w in zip(th, weights)]
    if grid is not None:
        tg = np.asarray(grid, float)[:, movable]
        gw = (np.zeros(len(tg)) if grid_log_weight is None
              else np.asarray(grid_log_weight, float))
        gw = gw - log_density(tg, mu0, sig0, nu, lo, hi)[0]

    def objective(x):
        f, g = 0.0, np.zeros_like(x)
        for t, lw in zip(th, lw0):
            norm, grad = dens.log_mean(t, lw, x)
            f -= norm
            g -= grad
        # each bin's prior normalised on the grid (the truncation then cancels), or
        # on its range
        if grid is not None:
            norm, grad = dens.log_mean(tg, gw, x)
        else:
            norm, dz_mu, dz_ls = _log_truncation(x[:m], np.exp(x[m:2 * m]), nu, lo, hi)
            grad = np.concatenate([dz_mu, dz_ls])
        return f + len(th) * norm, g + len(th) * grad

    bounds = list(zip(np.maximum(lo, mu0 - max_shift * sig0),
                      np.minimum(hi, mu0 + max_shift * sig0)))
    ls0 = np.log(sig0)
    bounds += [(l0 + np.log(min_width), l0) if widths else (l0, l0) for l0 in ls0]
    bounds += [(-10.0, 10.0)] * dens.n_corr  # correlations within +-0.995
    x0 = np.concatenate([mu0, ls0, np.zeros(dens.n_corr)])
    res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": int(max_iter)})
    centres[movable] = res.x[:m]
    sigmas[movable] = np.where(widths, np.exp(res.x[m:2 * m]), sig0)
    correlation = None
    if joint:
        c = dens.corr_factor(res.x[2 * m:])[0]
        correlation = {"names": [priors[movable[i]].name for i in joint], "matrix": c @ c.T}
    return centres, sigmas, int(res.nit), correlation


class _Density:
    """The population priors' log density and its gradient, for the objective.

    Parameters ``x`` = (mu (m), log sigma (m), the correlation factor's free
    entries): independent Gaussian/Student-t densities for the columns not in
    ``joint``, one multivariate Gaussian for those in it (untruncated: the
    objective normalises on the grid).
    """

    def __init__(self, nu, joint):
        self.nu, self.m = nu, len(nu)
        self.joint = list(joint)
        self.indep = [i for i in range(self.m) if i not in self.joint]
        self.tri = np.tril_indices(len(self.joint), -1)
        self.n_corr = len(self.tri[0])

    def corr_factor(self, b):
        """Cholesky factor (nj, nj) of the correlation matrix: unit-diagonal lower
        triangular ``B`` with strict lower entries ``b``, its rows normalised; and
        the rows' norms (nj, 1)."""
        B = np.eye(len(self.joint))
        B[self.tri] = b
        norms = np.linalg.norm(B, axis=1, keepdims=True)
        return B / norms, norms

    def log_mean(self, t, lw, x):
        """``log sum_k exp(lw_k + log p_x(t_k))`` and its gradient with respect to x."""
        from scipy.linalg import solve_triangular
        from scipy.special import logsumexp

        m, ii, jj = self.m, self.indep, self.joint
        mu, ls = x[:m], x[m:2 * m]
        sig = np.exp(ls)
        a = np.array(lw, float)
        if ii:
            lp, dmu, dls = _untruncated(t[:, ii], mu[ii], sig[ii], self.nu[ii], grad=True)
            a += lp
        if jj:
            C, norms = self.corr_factor(x[2 * m:])
            L = sig[jj][:, None] * C
            z = solve_triangular(L, (t[:, jj] - mu[jj]).T, lower=True).T
            a += (-0.5 * np.sum(z * z, axis=1) - np.sum(np.log(np.diag(L)))
                  - 0.5 * len(jj) * np.log(2 * np.pi))
        norm = logsumexp(a)
        r = np.exp(a - norm)
        g = np.zeros_like(x)
        if ii:
            g[ii], g[m + np.array(ii)] = r @ dmu, r @ dls
        if jj:
            ez, ezz = r @ z, (z * r[:, None]).T @ z
            linv_t = solve_triangular(L, np.eye(len(jj)), lower=True).T  # L^-T
            g[jj] = linv_t @ ez
            G = np.tril(linv_t @ (ezz - np.eye(len(jj))))  # d/dL of E[log p]
            g[m + np.array(jj)] = sig[jj] * np.sum(G * C, axis=1)
            H = sig[jj][:, None] * G  # d/dC
            g[2 * m:] = ((H - np.sum(H * C, axis=1, keepdims=True) * C) / norms)[self.tri]
        return norm, g


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
