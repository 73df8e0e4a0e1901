"""Star-formation histories: a registry of small objects on one base, each integrated
exactly over age bins.

Time conventions
----------------
``t`` is the time since the onset of star formation, in Gyr, running from 0
to the age of the system ``A = 10**log_age``. Lookback time is ``A - t``.
The forms (piXedfit's five, a burst and a non-parametric one) have SFR(t)
proportional to:

===================  ===========================================  ==================
form                 SFR(t)                                       parameters
===================  ===========================================  ==================
tau                  exp(-t/tau)                                  log_tau
delayed_tau          t exp(-t/tau)                                log_tau
log_normal           exp(-(ln t - ln t0)^2 / (2 tau^2)) / t       log_tau, log_t0
gaussian             exp(-(t - t0)^2 / (2 tau^2))                 log_tau, log_t0
double_power_law     1 / ((t/tau)^alpha + (t/tau)^-beta)          log_tau, log_alpha,
                                                                  log_beta
delayed_tau_burst    (1 - f) delayed_tau + f constant over the    log_tau, log_fburst,
                     last t_b (a recent burst, as in CIGALE)      log_tburst
continuity           piecewise constant in 6 lookback-time bins   log_sfr_ratio_1 ...
                     (non-parametric, Leja et al. 2019)           log_sfr_ratio_5
===================  ===========================================  ==================

with tau = 10**log_tau (Gyr; dimensionless width in ln t for log_normal),
t0 = 10**log_t0 Gyr, alpha = 10**log_alpha, beta = 10**log_beta,
f = 10**log_fburst (fraction of the mass formed in the burst) and
t_b = 10**log_tburst Gyr (burst duration, counted back from the observation;
capped at the age).
Every history is normalised to 1 Msun formed between t = 0 and t = A.

The ``continuity`` form (Prospector's non-parametric SFH) has a constant SFR
within each of ``N_CONTINUITY`` = 6 lookback-time bins. The young edges are
fixed (its hyper-parameter ``young_gyr``: by default 30 and 100 Myr, Leja et al.
2019; ``models.continuity_young_gyr``) and the rest are log-spaced from the last
young edge to the age A. With ``young_gyr = (0.1,)`` the first bin is 0-100 Myr,
the time scale on which the reported SFR is averaged; broad-band photometry cannot
split it further, so a split would only spread the prior into the SFR. Its
parameters are ``log_sfr_ratio_i = log10(SFR_i / SFR_{i+1})`` between adjacent
bins (bin 1 the youngest). With a Student-t prior on the ratios (``fit.priors``:
``{form: student_t, mu: 0, sigma: 0.3, nu: 2}``, the "continuity prior") it
favours smooth histories but allows sharp changes, and it does not tie the old
population's mass to the young population's light as a parametric form does.

An SFH object (:class:`SFH`) has a name, its parameters, its hyper-parameters (fixed
settings such as the continuity form's young edges, read from the ``models``
section) and its SFR and mass functions. The model grid and every fit result record
it (:meth:`SFH.to_dict`); later stages rebuild it with :func:`get_sfh`. To add a
form: a subclass with ``name``, ``params``, :meth:`SFH.shape` and
:meth:`SFH.cumulative`, decorated with :func:`register`; its name in the schema's
``models.sfh`` enum; tests (docs/extending.md).
"""

import abc

import numpy as np
from scipy.special import erf

from ..errors import InputError

N_CONTINUITY = 6   #: bins of the continuity SFH
CONTINUITY_YOUNG_GYR = (0.03, 0.1)  #: default fixed young lookback edges, Gyr (Leja+19)
CONTINUITY_PARAMS = tuple(f"log_sfr_ratio_{i}" for i in range(1, N_CONTINUITY))

_DPL_NODES = np.geomspace(1e-6, 1.0, 4096)  # fractions of the age, for the DPL integral
_U = np.linspace(0.0, 1.0, 129)

#: name -> SFH class
SFHS = {}


def register(cls):
    """Class decorator: add an :class:`SFH` subclass to :data:`SFHS` under its name."""
    SFHS[cls.name] = cls
    return cls


def _col(p, name, n):
    return np.broadcast_to(np.asarray(p[name], dtype=float), (n,))[:, None]


class SFH(abc.ABC):
    """Base of the star-formation histories.

    Attributes
    ----------
    name : str
        ``models.sfh``.
    params : tuple of str
        Its parameters besides ``log_age`` (log10 Gyr), in model order.
    param_info : dict
        Each of its parameters -> ((lowest, highest) allowed value, meaning): the
        SPS engine's table (:data:`sedmap.sps.engine.PARAM_INFO`) collects them.
    hyper_keys : dict
        Hyper-parameter -> the ``models`` key it is read from (:func:`sfh_from_models`).
    normalised : bool
        :meth:`cumulative` is 1 at the age by construction (no division).

    Parameters
    ----------
    **hyper
        Its hyper-parameters (the keys of ``hyper_keys``).
    """

    name = ""
    params = ()
    param_info = {}
    hyper_keys = {}
    normalised = False

    def __init__(self, **hyper):
        unknown = set(hyper) - set(self.hyper_keys)
        if unknown:
            raise ValueError(f"SFH {self.name!r} has no hyper-parameter {sorted(unknown)}")
        self.hyper = dict(hyper)

    def __repr__(self):
        return f"SFH({self.to_dict()})"

    def __eq__(self, other):
        return isinstance(other, SFH) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(repr(self))

    def to_dict(self):
        """``{"name": ..., hyper-parameters...}``, JSON-ready: what the model grid and
        the fit results record (:func:`get_sfh` reads it back)."""
        return {"name": self.name,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in self.hyper.items()}}

    @abc.abstractmethod
    def shape(self, t, p):
        """Un-normalised SFR(t), (n, m), for parameters ``p`` (dict of (n,) arrays) at
        times since onset ``t`` (n, m), Gyr."""

    @abc.abstractmethod
    def cumulative(self, t, p, age):
        """Un-normalised mass formed between 0 and ``t`` (n, m) Gyr (``age`` (n,) Gyr:
        for numerical integrals)."""

    def bin_mass_fractions(self, p, age_edges_yr):
        """Fraction of the formed mass in each lookback-time bin.

        Parameters
        ----------
        p : dict of ndarray (n,)
            Parameters; must hold ``log_age`` (Gyr) and the form's parameters.
        age_edges_yr : ndarray (n_age + 1,)
            Lookback-time bin edges, yr, increasing from 0.

        Returns
        -------
        w : ndarray (n, n_age)
            Mass formed in each bin per Msun formed in total; rows sum to 1.
        """
        n = np.asarray(p["log_age"]).size
        age = np.broadcast_to(10 ** np.asarray(p["log_age"], dtype=float), (n,))
        edges_gyr = np.asarray(age_edges_yr) / 1e9
        t_at_edge = age[:, None] - edges_gyr[None, :]  # time since onset at each edge
        cum = self.cumulative(np.clip(t_at_edge, 0, None), p, age)
        w = cum[:, :-1] - cum[:, 1:]
        if self.normalised:  # 1 Msun formed by the age, by construction
            return np.clip(w, 0.0, None)
        total = self.cumulative(age[:, None], p, age)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = w / total[:, None]
        return np.clip(w, 0.0, None)

    def sfr(self, p, lookback_gyr):
        """Normalised SFR at lookback times ``lookback_gyr`` (m,) Gyr, Msun/yr per Msun
        formed, (n, m)."""
        n = np.asarray(p["log_age"]).size
        age = np.broadcast_to(10 ** np.asarray(p["log_age"], dtype=float), (n,))
        t = age[:, None] - np.asarray(lookback_gyr)[None, :]
        shape = np.where(t >= 0, self.shape(np.clip(t, 0, None), p), 0.0)
        total = self.cumulative(age[:, None], p, age)
        return shape / total / 1e9

    def mass_weighted_age(self, p):
        """Mass-weighted (by mass formed) lookback age (n,), Gyr.

        Uses <lookback> = (1/M) ∫_0^A M(<t) dt, with M(<t) the cumulative mass
        formed, integrated on 129 points of t/A (M(<t) is smooth, so this is
        accurate to ~1e-4).
        """
        n = np.asarray(p["log_age"]).size
        age = np.broadcast_to(10 ** np.asarray(p["log_age"], dtype=float), (n,))
        t = age[:, None] * _U[None, :]
        cum = self.cumulative(t, p, age)
        return np.trapezoid(cum, t, axis=1) / cum[:, -1]


@register
class Tau(SFH):
    """SFR ∝ exp(-t/tau)."""

    name, params = "tau", ("log_tau",)
    param_info = {"log_tau": ((-3.0, 2.0), "log10(tau / Gyr), or log10 width in ln t for "
                                           "log_normal")}

    def shape(self, t, p):
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        with np.errstate(over="ignore"):
            return np.exp(-t / tau)

    def cumulative(self, t, p, age):
        t = np.clip(t, 0.0, None)
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        return tau * -np.expm1(-t / tau)


@register
class DelayedTau(SFH):
    """SFR ∝ t exp(-t/tau)."""

    name, params = "delayed_tau", ("log_tau",)
    param_info = Tau.param_info

    def shape(self, t, p):
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        with np.errstate(over="ignore", invalid="ignore"):
            return t * np.exp(-t / tau)

    def cumulative(self, t, p, age):
        t = np.clip(t, 0.0, None)
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        x = t / tau
        return tau**2 * (1.0 - (1.0 + x) * np.exp(-x))


@register
class LogNormal(SFH):
    """SFR ∝ exp(-(ln t - ln t0)^2 / (2 tau^2)) / t."""

    name, params = "log_normal", ("log_tau", "log_t0")
    param_info = {**Tau.param_info, "log_t0": ((-3.0, 1.25), "log10(t0 / Gyr)")}

    def shape(self, t, p):
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        t0 = 10 ** _col(p, "log_t0", t.shape[0])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.exp(-((np.log(t) - np.log(t0)) ** 2) / (2 * tau**2)) / t
        return np.where(t > 0, out, 0.0)

    def cumulative(self, t, p, age):
        t = np.clip(t, 0.0, None)
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        t0 = 10 ** _col(p, "log_t0", t.shape[0])
        with np.errstate(divide="ignore"):
            z = (np.log(t) - np.log(t0)) / (np.sqrt(2) * tau)
        return tau * np.sqrt(2 * np.pi) * 0.5 * (1.0 + erf(z))


@register
class Gaussian(SFH):
    """SFR ∝ exp(-(t - t0)^2 / (2 tau^2))."""

    name, params = "gaussian", ("log_tau", "log_t0")
    param_info = LogNormal.param_info

    def shape(self, t, p):
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        t0 = 10 ** _col(p, "log_t0", t.shape[0])
        with np.errstate(over="ignore"):
            return np.exp(-((t - t0) ** 2) / (2 * tau**2))

    def cumulative(self, t, p, age):
        t = np.clip(t, 0.0, None)
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        t0 = 10 ** _col(p, "log_t0", t.shape[0])
        s = np.sqrt(2) * tau
        return tau * np.sqrt(2 * np.pi) * 0.5 * (erf((t - t0) / s) - erf(-t0 / s))


@register
class DoublePowerLaw(SFH):
    """SFR ∝ 1 / ((t/tau)^alpha + (t/tau)^-beta); its mass integral is numerical."""

    name, params = "double_power_law", ("log_tau", "log_alpha", "log_beta")
    param_info = {**Tau.param_info,
                  "log_alpha": ((-3.0, 3.0), "log10 falling slope of the double power law"),
                  "log_beta": ((-3.0, 3.0), "log10 rising slope of the double power law")}

    def shape(self, t, p):
        tau = 10 ** _col(p, "log_tau", t.shape[0])
        a = 10 ** _col(p, "log_alpha", t.shape[0])
        b = 10 ** _col(p, "log_beta", t.shape[0])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x = t / tau
            out = 1.0 / (x**a + x ** (-b))
            return np.where(t > 0, np.nan_to_num(out), 0.0)

    def cumulative(self, t, p, age):
        # trapezoid on a log grid of fractions of the age
        n = t.shape[0]
        t = np.clip(t, 0.0, None)
        tg = age[:, None] * _DPL_NODES[None, :]
        f = self.shape(tg, p)
        cum = np.zeros_like(f)
        cum[:, 1:] = np.cumsum(0.5 * (f[:, 1:] + f[:, :-1]) * np.diff(tg, axis=1), axis=1)
        cum += f[:, :1] * tg[:, :1]  # the sliver from 0 to the first node
        frac = t / age[:, None]
        idx = np.clip(np.searchsorted(_DPL_NODES, frac), 1, _DPL_NODES.size - 1)
        x0, x1 = _DPL_NODES[idx - 1], _DPL_NODES[idx]
        w = np.clip((frac - x0) / (x1 - x0), 0, 1)
        rows = np.arange(n)[:, None]
        out = cum[rows, idx - 1] * (1 - w) + cum[rows, idx] * w
        return np.where(frac <= _DPL_NODES[0], f[:, :1] * t, out)


@register
class DelayedTauBurst(SFH):
    """(1 - f) delayed_tau + f constant over the last t_b (normalised: 1 Msun formed
    from 0 to the age)."""

    name, params = "delayed_tau_burst", ("log_tau", "log_fburst", "log_tburst")
    param_info = {**Tau.param_info,
                  "log_fburst": ((-6.0, 0.0), "log10 fraction of the mass formed in the recent "
                                             "burst"),
                  "log_tburst": ((-3.0, 1.0), "log10(burst duration / Gyr), counted back from "
                                             "now")}
    _main = DelayedTau()

    @staticmethod
    def _burst(p, n):
        """(f, t_b, age) columns (n, 1); t_b capped at the age."""
        age = 10 ** _col(p, "log_age", n)
        return (10 ** _col(p, "log_fburst", n), np.minimum(10 ** _col(p, "log_tburst", n), age),
                age)

    def shape(self, t, p):
        f, tb, age = self._burst(p, t.shape[0])
        main = self._main.shape(t, p) / self._main.cumulative(age, p, None)
        return (1 - f) * main + f * ((t >= age - tb) & (t <= age)) / tb

    def cumulative(self, t, p, age):
        t = np.clip(t, 0.0, None)
        f, tb, a = self._burst(p, t.shape[0])
        main = self._main.cumulative(t, p, None) / self._main.cumulative(a, p, None)
        return (1 - f) * main + f * np.clip((t - (a - tb)) / tb, 0.0, 1.0)


def check_young(young):
    """The fixed young lookback edges (Gyr) of the continuity form, as a tuple.

    Raises ValueError unless they are 1 to ``N_CONTINUITY - 2`` increasing
    positive values.
    """
    young = tuple(float(y) for y in (CONTINUITY_YOUNG_GYR if young is None else young))
    if not 1 <= len(young) <= N_CONTINUITY - 2 or young[0] <= 0 or np.any(np.diff(young) <= 0):
        raise ValueError(f"continuity young edges must be 1 to {N_CONTINUITY - 2} increasing "
                         f"positive lookback times (Gyr), got {list(young)}")
    return young


def continuity_bins(p, n, young=None):
    """Bin edges in time since onset (n, N + 1), increasing, and the SFR of each bin
    (n, N), normalised to 1 Msun formed, of the continuity form.

    ``young``: the fixed young lookback edges, Gyr (default
    ``CONTINUITY_YOUNG_GYR``); the other edges are log-spaced from the last of
    them to the age.
    """
    young = check_young(young)
    age = 10 ** _col(p, "log_age", n)                       # (n, 1) Gyr
    frac = np.linspace(0.0, 1.0, N_CONTINUITY + 1 - len(young))  # log-spaced young[-1] .. A
    look = np.concatenate([np.zeros((n, 1))] + [np.full((n, 1), y) for y in young[:-1]]
                          + [young[-1] * (age / young[-1]) ** frac[None, :]], axis=1)
    look = np.minimum(look, age)                            # young systems: empty bins
    look[:, -1] = age[:, 0]
    ratio = np.column_stack([np.broadcast_to(np.asarray(p[k], dtype=float), (n,))
                             for k in CONTINUITY_PARAMS])   # log SFR_i / SFR_{i+1}
    # log SFR_i relative to the oldest bin: sum of the ratios from i to N-1
    log_sfr = np.concatenate([np.cumsum(ratio[:, ::-1], axis=1)[:, ::-1],
                              np.zeros((n, 1))], axis=1)
    width = np.diff(look, axis=1)
    sfr_bin = 10 ** (log_sfr - log_sfr.max(axis=1, keepdims=True))
    sfr_bin = sfr_bin / np.sum(sfr_bin * width, axis=1, keepdims=True)
    # time since onset: bin i spans [A - look_{i+1}, A - look_i]; reverse to increasing
    return (age - look)[:, ::-1], sfr_bin[:, ::-1]


@register
class Continuity(SFH):
    """Piecewise-constant SFR in ``N_CONTINUITY`` lookback-time bins (Leja et al.
    2019); hyper-parameter ``young_gyr``: the fixed young edges (:func:`continuity_bins`)."""

    name, params = "continuity", CONTINUITY_PARAMS
    param_info = {k: ((-5.0, 5.0), f"log10 SFR ratio of continuity bins {k[-1]} and "
                                   f"{int(k[-1]) + 1}") for k in CONTINUITY_PARAMS}
    hyper_keys = {"young_gyr": "continuity_young_gyr"}
    normalised = True

    def __init__(self, young_gyr=None):
        super().__init__(young_gyr=check_young(young_gyr))

    @property
    def young(self):
        """The fixed young lookback edges, Gyr."""
        return self.hyper["young_gyr"]

    def shape(self, t, p):
        edges, rate = continuity_bins(p, t.shape[0], self.young)
        idx = np.clip((t[:, :, None] >= edges[:, None, 1:-1]).sum(axis=2), 0,
                      N_CONTINUITY - 1)
        out = np.take_along_axis(rate, idx, axis=1)
        return np.where((t >= 0) & (t <= edges[:, -1:]), out, 0.0)

    def cumulative(self, t, p, age):
        # piecewise linear, exact
        t = np.clip(t, 0.0, None)
        edges, rate = continuity_bins(p, t.shape[0], self.young)
        inside = np.clip(t[:, :, None] - edges[:, None, :-1], 0.0,
                         np.diff(edges, axis=1)[:, None, :])
        return np.einsum("nmk,nk->nm", inside, rate)

    def mass_weighted_age(self, p):
        """Exact: a constant SFR in each bin (its midpoint), 1 Msun formed in all."""
        n = np.asarray(p["log_age"]).size
        edges, rate = continuity_bins(p, n, self.young)
        mass = rate * np.diff(edges, axis=1)
        return np.sum(mass * (edges[:, -1:] - 0.5 * (edges[:, 1:] + edges[:, :-1])), axis=1)


#: the forms' names, and their parameters besides log_age
FORMS = tuple(SFHS)
PARAMS = {name: cls.params for name, cls in SFHS.items()}


def get_sfh(spec):
    """An :class:`SFH` from its record: an SFH (returned as is), a form's name (default
    hyper-parameters), or :meth:`SFH.to_dict`'s dict.

    Raises ValueError for an unknown form or hyper-parameter.
    """
    if isinstance(spec, SFH):
        return spec
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("name", None)
    if name not in SFHS:
        raise ValueError(f"unknown SFH form {name!r}; the forms are {', '.join(FORMS)}")
    return SFHS[name](**spec)


def sfh_from_models(models):
    """The :class:`SFH` of a ``models`` config section: ``models.sfh`` with its
    hyper-parameters read from their keys (``hyper_keys``)."""
    cls = SFHS.get(models["sfh"])
    if cls is None:
        raise InputError(f"unknown SFH form {models['sfh']!r}", path="models.sfh",
                         fix=f"use one of {', '.join(FORMS)}")
    hyper = {h: models[key] for h, key in cls.hyper_keys.items()}
    try:
        return cls(**hyper)
    except ValueError as err:
        keys = ", ".join(f"models.{k}" for k in cls.hyper_keys.values())
        raise InputError(str(err), path=keys, fix="see docs/configuration.md") from None


def common_sfh(records, where="fit results"):
    """The :class:`SFH` of fit results, from their records (``FitResult.sfh``; None
    entries are skipped): the one they share.

    Raises InputError when none has a record (written before sedmap recorded it) or
    they differ (results of different model grids mixed).
    """
    recs = [r for r in records if r is not None]
    if not recs:
        raise InputError("the fit results do not record their star-formation history",
                         path=where, fix="rerun the fit stage with this sedmap version")
    first = get_sfh(recs[0])
    if any(get_sfh(r) != first for r in recs[1:]):
        raise InputError("the fit results were made with different star-formation histories "
                         f"({sorted({str(r) for r in recs})[:3]})", path=where,
                         fix="rerun the fit stage so that every bin is fitted with one grid")
    return first
