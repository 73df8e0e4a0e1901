"""Parametric star-formation histories, integrated exactly over age bins.

Time conventions
----------------
``t`` is the time since the onset of star formation, in Gyr, running from 0
to the age of the system ``A = 10**log_age``. Lookback time is ``A - t``.
The five forms (piXedfit's set) have SFR(t) proportional to:

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
fixed (``young``: by default 30 and 100 Myr, Leja et al. 2019; ``models.
continuity_young_gyr``) and the rest are log-spaced from the last young edge to
the age A. With ``young = (0.1,)`` the first bin is 0-100 Myr, the time scale
on which the reported SFR is averaged; broad-band photometry cannot split it
further, so a split would only spread the prior into the SFR. Its parameters are
``log_sfr_ratio_i = log10(SFR_i / SFR_{i+1})`` between adjacent bins (bin 1 the
youngest). With a Student-t prior on the ratios (``fit.priors``: ``{form:
student_t, mu: 0, sigma: 0.3, nu: 2}``, the "continuity prior") it favours
smooth histories but allows sharp changes, and it does not tie the old
population's mass to the young population's light as a parametric form does.
"""

import numpy as np
from scipy.special import erf

FORMS = ("tau", "delayed_tau", "log_normal", "gaussian", "double_power_law",
         "delayed_tau_burst", "continuity")

N_CONTINUITY = 6   #: bins of the continuity SFH
CONTINUITY_YOUNG_GYR = (0.03, 0.1)  #: default fixed young lookback edges, Gyr (Leja+19)
CONTINUITY_PARAMS = tuple(f"log_sfr_ratio_{i}" for i in range(1, N_CONTINUITY))

PARAMS = {
    "tau": ("log_tau",),
    "delayed_tau": ("log_tau",),
    "log_normal": ("log_tau", "log_t0"),
    "gaussian": ("log_tau", "log_t0"),
    "double_power_law": ("log_tau", "log_alpha", "log_beta"),
    "delayed_tau_burst": ("log_tau", "log_fburst", "log_tburst"),
    "continuity": CONTINUITY_PARAMS,
}

_DPL_NODES = np.geomspace(1e-6, 1.0, 4096)  # fractions of the age, for the DPL integral


def _col(p, name, n):
    return np.broadcast_to(np.asarray(p[name], dtype=float), (n,))[:, None]


def _burst(p, n):
    """(f, t_b, age) columns (n, 1) of the burst form; t_b capped at the age."""
    age = 10 ** _col(p, "log_age", n)
    return 10 ** _col(p, "log_fburst", n), np.minimum(10 ** _col(p, "log_tburst", n), age), age


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


def sfr_shape(form, t, p, young=None):
    """Un-normalised SFR(t) for parameters ``p`` (dict of (n,) arrays), t (n, m) Gyr.

    ``young``: the continuity form's fixed young edges (:func:`continuity_bins`).
    """
    if form == "continuity":  # normalised: 1 Msun formed from 0 to the age
        edges, rate = continuity_bins(p, t.shape[0], young)
        idx = np.clip((t[:, :, None] >= edges[:, None, 1:-1]).sum(axis=2), 0,
                      N_CONTINUITY - 1)
        out = np.take_along_axis(rate, idx, axis=1)
        return np.where((t >= 0) & (t <= edges[:, -1:]), out, 0.0)
    tau = 10 ** _col(p, "log_tau", t.shape[0])
    if form == "delayed_tau_burst":  # normalised: 1 Msun formed from 0 to the age
        f, tb, age = _burst(p, t.shape[0])
        main = sfr_shape("delayed_tau", t, p) / cumulative_mass("delayed_tau", age, p, None)
        return (1 - f) * main + f * ((t >= age - tb) & (t <= age)) / tb
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if form == "tau":
            return np.exp(-t / tau)
        if form == "delayed_tau":
            return t * np.exp(-t / tau)
        if form == "log_normal":
            t0 = 10 ** _col(p, "log_t0", t.shape[0])
            out = np.exp(-((np.log(t) - np.log(t0)) ** 2) / (2 * tau**2)) / t
            return np.where(t > 0, out, 0.0)
        if form == "gaussian":
            t0 = 10 ** _col(p, "log_t0", t.shape[0])
            return np.exp(-((t - t0) ** 2) / (2 * tau**2))
        if form == "double_power_law":
            a = 10 ** _col(p, "log_alpha", t.shape[0])
            b = 10 ** _col(p, "log_beta", t.shape[0])
            x = t / tau
            out = 1.0 / (x**a + x ** (-b))
            return np.where(t > 0, np.nan_to_num(out), 0.0)
    raise ValueError(f"unknown SFH form {form!r}")


def cumulative_mass(form, t, p, age, young=None):
    """Un-normalised mass formed between 0 and ``t`` (n, m) Gyr, exact where analytic."""
    n = t.shape[0]
    t = np.clip(t, 0.0, None)
    if form == "continuity":  # normalised: 1 at the age; piecewise linear, exact
        edges, rate = continuity_bins(p, n, young)
        inside = np.clip(t[:, :, None] - edges[:, None, :-1], 0.0,
                         np.diff(edges, axis=1)[:, None, :])
        return np.einsum("nmk,nk->nm", inside, rate)
    tau = 10 ** _col(p, "log_tau", n)
    if form == "delayed_tau_burst":  # normalised: 1 at the age
        f, tb, a = _burst(p, n)
        main = cumulative_mass("delayed_tau", t, p, None) / cumulative_mass(
            "delayed_tau", a, p, None)
        return (1 - f) * main + f * np.clip((t - (a - tb)) / tb, 0.0, 1.0)
    if form == "tau":
        return tau * -np.expm1(-t / tau)
    if form == "delayed_tau":
        x = t / tau
        return tau**2 * (1.0 - (1.0 + x) * np.exp(-x))
    if form == "log_normal":
        t0 = 10 ** _col(p, "log_t0", n)
        with np.errstate(divide="ignore"):
            z = (np.log(t) - np.log(t0)) / (np.sqrt(2) * tau)
        return tau * np.sqrt(2 * np.pi) * 0.5 * (1.0 + erf(z))
    if form == "gaussian":
        t0 = 10 ** _col(p, "log_t0", n)
        s = np.sqrt(2) * tau
        return tau * np.sqrt(2 * np.pi) * 0.5 * (erf((t - t0) / s) - erf(-t0 / s))
    if form == "double_power_law":
        # numerical: trapezoid on a log grid of fractions of the age
        tg = age[:, None] * _DPL_NODES[None, :]
        f = sfr_shape(form, tg, p)
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
    raise ValueError(f"unknown SFH form {form!r}")


def bin_mass_fractions(form, p, age_edges_yr, young=None):
    """Fraction of the formed mass in each lookback-time bin.

    Parameters
    ----------
    form : str
        One of ``FORMS``.
    p : dict of ndarray (n,)
        Parameters; must hold ``log_age`` (Gyr) and the form's parameters.
    age_edges_yr : ndarray (n_age + 1,)
        Lookback-time bin edges, yr, increasing from 0.
    young : sequence of float, optional
        The continuity form's fixed young edges, Gyr (:func:`continuity_bins`).

    Returns
    -------
    w : ndarray (n, n_age)
        Mass formed in each bin per Msun formed in total; rows sum to 1.
    """
    n = np.asarray(p["log_age"]).size
    age = np.broadcast_to(10 ** np.asarray(p["log_age"], dtype=float), (n,))
    edges_gyr = np.asarray(age_edges_yr) / 1e9
    t_at_edge = age[:, None] - edges_gyr[None, :]  # time since onset at each lookback edge
    cum = cumulative_mass(form, np.clip(t_at_edge, 0, None), p, age, young)
    w = cum[:, :-1] - cum[:, 1:]
    if form == "continuity":  # normalised: 1 Msun formed by the age, by construction
        return np.clip(w, 0.0, None)
    total = cumulative_mass(form, age[:, None], p, age, young)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / total[:, None]
    return np.clip(w, 0.0, None)


def sfr(form, p, lookback_gyr, young=None):
    """Normalised SFR at lookback times, Msun/yr per Msun formed.

    Parameters
    ----------
    lookback_gyr : ndarray (m,)
        Lookback times, Gyr.

    Returns
    -------
    ndarray (n, m)
    """
    n = np.asarray(p["log_age"]).size
    age = np.broadcast_to(10 ** np.asarray(p["log_age"], dtype=float), (n,))
    t = age[:, None] - np.asarray(lookback_gyr)[None, :]
    shape = np.where(t >= 0, sfr_shape(form, np.clip(t, 0, None), p, young), 0.0)
    total = cumulative_mass(form, age[:, None], p, age, young)
    return shape / total / 1e9


_U = np.linspace(0.0, 1.0, 129)


def mass_weighted_age(form, p, young=None):
    """Mass-weighted (by mass formed) lookback age, Gyr.

    Uses <lookback> = (1/M) ∫_0^A M(<t) dt, with M(<t) the cumulative mass
    formed, integrated on 129 points of t/A (M(<t) is smooth, so this is
    accurate to ~1e-4); exact for the continuity form (its bins' midpoints).
    """
    n = np.asarray(p["log_age"]).size
    if form == "continuity":  # exact: constant SFR in each bin, 1 Msun formed in all
        edges, rate = continuity_bins(p, n, young)
        mass = rate * np.diff(edges, axis=1)
        return np.sum(mass * (edges[:, -1:] - 0.5 * (edges[:, 1:] + edges[:, :-1])), axis=1)
    age = np.broadcast_to(10 ** np.asarray(p["log_age"], dtype=float), (n,))
    t = age[:, None] * _U[None, :]
    cum = cumulative_mass(form, t, p, age, young)
    return np.trapezoid(cum, t, axis=1) / cum[:, -1]
