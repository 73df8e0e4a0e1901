"""Priors of the fit parameters, each truncated to its range.

Forms (all vectorised over walkers/models, log densities up to a constant):

==============  =======================================================
``uniform``     flat on [min, max]
``uniform_linear``  flat in 10**x on [min, max]: for a log10 parameter,
                a prior flat in the linear quantity (e.g. age, as in
                BAGPIPES' parametric SFHs); density ~ 10**x
``gaussian``    N(mu, sigma) truncated to [min, max]
``gamma``       Gamma(k, theta) of (x - min), truncated to [min, max]
``student_t``   Student-t(nu, mu, sigma) truncated to [min, max]
``tabulated``   linear interpolation of a table (x, pdf), 0 outside it
``joint_mass``  Gaussian whose mean follows log stellar mass:
                mu = mu0 + slope (log_mstar - pivot) (e.g. the
                mass-metallicity relation), truncated to [min, max]
==============  =======================================================

Config form (``fit.priors``)::

    logzsol: {form: gaussian, mu: -0.3, sigma: 0.4}
    dust2:   {form: gamma, k: 2.0, theta: 0.4}
    log_age: {form: uniform_linear}
    logzsol: {form: joint_mass, mu0: 0.0, slope: 0.3, pivot: 10.5, sigma: 0.3}

Ranges come from the model grid (``models.params``); a prior never widens them.

Gaussian priors may also be correlated: the reserved key ``correlation`` of a
priors dict, ``{names: [...], matrix: [[...]]}``, makes the Gaussian priors of
``names`` one multivariate Gaussian with their ``mu`` and ``sigma`` and that
correlation matrix (:class:`Correlation`). The population prior
(``fit.population_prior.covariance``) writes it.
"""

import numpy as np
from scipy import special

from .errors import InputError

#: reserved key of a priors dict: correlations between Gaussian priors
CORRELATION = "correlation"

FORMS = ("uniform", "uniform_linear", "gaussian", "gamma", "student_t", "tabulated", "joint_mass")


class Prior:
    """A truncated prior of one parameter.

    Parameters
    ----------
    name : str
    lo, hi : float
        Range (the grid's).
    form : str
        One of ``FORMS``.
    **kw
        The form's parameters (see the module docstring).
    """

    def __init__(self, name, lo, hi, form="uniform", **kw):
        if form not in FORMS:
            raise InputError(f"unknown prior form '{form}' for {name}",
                             path=f"fit.priors.{name}", fix=f"use one of {', '.join(FORMS)}")
        if not hi > lo:
            raise InputError(f"prior range [{lo}, {hi}] of {name} is empty",
                             path=f"fit.priors.{name}", fix="use min < max")
        self.name, self.lo, self.hi, self.form, self.kw = name, float(lo), float(hi), form, kw
        need = {"gaussian": ("mu", "sigma"), "gamma": ("k", "theta"),
                "student_t": ("mu", "sigma", "nu"), "tabulated": ("x", "pdf"),
                "joint_mass": ("mu0", "slope", "pivot", "sigma")}.get(form, ())
        missing = [k for k in need if k not in kw]
        if missing:
            raise InputError(f"prior '{form}' of {name} lacks {missing}",
                             path=f"fit.priors.{name}", fix=f"give {', '.join(need)}")
        if form == "tabulated":
            x = np.asarray(kw["x"], float)
            p = np.asarray(kw["pdf"], float)
            if x.ndim != 1 or x.size != p.size or np.any(np.diff(x) <= 0) or np.any(p < 0):
                raise InputError(f"tabulated prior of {name}: x must increase and pdf be >= 0",
                                 path=f"fit.priors.{name}", fix="fix the table")
            self._x, self._p = x, p

    def logpdf(self, x, log_mstar=None):
        """Log prior density at ``x`` (ndarray); -inf outside [lo, hi]."""
        x = np.asarray(x, dtype=float)
        inside = (x >= self.lo) & (x <= self.hi)
        kw = self.kw
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.form == "uniform":
                lp = np.zeros_like(x)
            elif self.form == "uniform_linear":
                lp = np.log(10.0) * (x - self.hi)
            elif self.form == "gaussian":
                lp = -0.5 * ((x - kw["mu"]) / kw["sigma"]) ** 2
            elif self.form == "gamma":  # scipy.stats.gamma.logpdf, in closed form
                k, theta = kw["k"], kw["theta"]
                y = x - self.lo
                lp = (special.xlogy(k - 1.0, y) - y / theta - special.gammaln(k)
                      - k * np.log(theta))
            elif self.form == "student_t":  # scipy.stats.t.logpdf, in closed form
                nu, sigma = kw["nu"], kw["sigma"]
                lp = (special.gammaln(0.5 * (nu + 1)) - special.gammaln(0.5 * nu)
                      - 0.5 * np.log(nu * np.pi) - np.log(sigma)
                      - 0.5 * (nu + 1) * np.log1p(((x - kw["mu"]) / sigma) ** 2 / nu))
            elif self.form == "tabulated":
                lp = np.log(np.interp(x, self._x, self._p, left=0.0, right=0.0))
            else:  # joint_mass
                if log_mstar is None:
                    raise ValueError("joint_mass prior needs log_mstar")
                mu = kw["mu0"] + kw["slope"] * (np.asarray(log_mstar) - kw["pivot"])
                lp = -0.5 * ((x - mu) / kw["sigma"]) ** 2
        return np.where(inside, lp, -np.inf)

    def sample(self, rng, n):
        """Draws from the (truncated) prior; joint_mass draws uniformly. For starting points."""
        if self.form in ("uniform", "joint_mass"):
            return rng.uniform(self.lo, self.hi, n)
        grid = np.linspace(self.lo, self.hi, 2001)
        p = np.exp(self.logpdf(grid, log_mstar=None) if self.form != "joint_mass" else 0)
        cdf = np.concatenate([[0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(grid))])
        if cdf[-1] <= 0:
            raise InputError(f"prior of {self.name} has no mass inside [{self.lo}, {self.hi}]",
                             path=f"fit.priors.{self.name}", fix="move it into the range")
        return np.interp(rng.uniform(0, cdf[-1], n), cdf, grid)


def param_ranges(params_section, names, values=None):
    """{name: (lo, hi)} of the model parameters ``names`` from the ``models.params``
    section: a [min, max] pair, or a held value given a tiny width (1e-6); a name the
    section leaves out takes the range of its column of ``values`` (n_model, n_name)."""
    out = {}
    for i, name in enumerate(names):
        given = (params_section or {}).get(name)
        if isinstance(given, (list, tuple)):
            lo, hi = float(given[0]), float(given[1])
        elif given is not None:
            lo = hi = float(given)
        elif values is not None:
            lo, hi = float(np.min(values[:, i])), float(np.max(values[:, i]))
        else:
            raise InputError(f"the model needs a range for {name}.",
                             path=f"models.params.{name}", fix="give [min, max] or a value.")
        if hi <= lo:
            lo, hi = lo - 1e-6, hi + 1e-6
        out[name] = (lo, hi)
    return out


def build_priors(names, ranges, priors_section=None):
    """Priors for ``names`` with grid ``ranges`` {name: (lo, hi)} and the config overrides."""
    priors_section = dict(priors_section or {})
    priors_section.pop(CORRELATION, None)
    unknown = sorted(set(priors_section) - set(names))
    if unknown:
        raise InputError(f"priors given for parameters the model does not have: {unknown}",
                         path="fit.priors", fix=f"use names from {list(names)}")
    out = []
    for name in names:
        lo, hi = ranges[name]
        # a parameter the section leaves out keeps the grid's range, uniform
        kw = dict(priors_section[name]) if name in priors_section else {}
        cmin, cmax = kw.pop("min", lo), kw.pop("max", hi)
        if cmin < lo - 1e-12 or cmax > hi + 1e-12:
            raise InputError(f"prior range of {name} [{cmin}, {cmax}] is outside the model "
                             f"grid's [{lo}, {hi}]", path=f"fit.priors.{name}",
                             fix="keep priors inside models.params, or rebuild the grid")
        out.append(Prior(name, cmin, cmax, **kw))
    return out


class Correlation:
    """Correlated Gaussian priors: a multivariate Gaussian truncated to their ranges.

    Parameters
    ----------
    priors : list of Prior
        All the priors (one per parameter, in the parameters' order).
    names : list of str
        The Gaussian priors that are correlated; their ``mu`` and ``sigma`` are
        the joint density's centre and marginal widths.
    matrix : array_like (m, m)
        Their correlation matrix (symmetric, positive definite, unit diagonal).
    """

    def __init__(self, priors, names, matrix):
        by_name = {p.name: i for i, p in enumerate(priors)}
        where = f"fit.priors.{CORRELATION}"
        bad = [n for n in names if n not in by_name or priors[by_name[n]].form != "gaussian"]
        if bad:
            raise InputError(f"correlated priors must be Gaussian priors of the model: {bad}",
                             path=where, fix="give each of them {form: gaussian, mu, sigma}")
        c = np.asarray(matrix, float)
        if c.shape != (len(names), len(names)) or not np.allclose(c, c.T) \
                or not np.allclose(np.diag(c), 1.0):
            raise InputError("the correlation matrix must be symmetric, with unit diagonal, "
                             "one row per name", path=where, fix="fix the matrix")
        try:
            self._chol = np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise InputError("the correlation matrix is not positive definite", path=where,
                             fix="fix the matrix") from None
        self.names, self.matrix = list(names), c
        self.cols = [by_name[n] for n in names]
        sel = [priors[i] for i in self.cols]
        self.mu = np.array([p.kw["mu"] for p in sel], float)
        self.sigma = np.array([p.kw["sigma"] for p in sel], float)
        self.lo = np.array([p.lo for p in sel])
        self.hi = np.array([p.hi for p in sel])

    def log_correction(self, theta):
        """What the correlations add to the sum of the independent Gaussian priors'
        log densities (``Prior.logpdf``, up to the same constant), at ``theta``
        (k, n_param): the parameters in the priors' order (extra columns are ignored)."""
        from scipy.linalg import solve_triangular

        d = (np.asarray(theta, float)[:, self.cols] - self.mu) / self.sigma
        z = solve_triangular(self._chol, d.T, lower=True).T
        return -0.5 * np.sum(z * z, axis=1) + 0.5 * np.sum(d * d, axis=1)

    def sample(self, rng, n, max_rounds=1000):
        """n draws (n, m) of the truncated joint density (rejection from the untruncated one)."""
        out, have = np.empty((n, len(self.cols))), 0
        for _ in range(max_rounds):
            if have == n:
                return out
            x = self.mu + self.sigma * (rng.standard_normal((n, len(self.cols)))
                                        @ self._chol.T)
            x = x[np.all((x >= self.lo) & (x <= self.hi), axis=1)][:n - have]
            out[have:have + len(x)] = x
            have += len(x)
        raise InputError("the correlated priors have almost no mass inside their ranges",
                         path=f"fit.priors.{CORRELATION}", fix="move them into the ranges")


def correlation_from(priors, priors_section):
    """The :class:`Correlation` a priors dict sets (its ``correlation`` key), or None."""
    spec = dict(priors_section or {}).get(CORRELATION)
    if not spec:
        return None
    return Correlation(priors, list(spec["names"]), spec["matrix"])
