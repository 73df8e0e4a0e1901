"""Dust attenuation curves.

``dust2`` is the V-band (5500 AA) optical depth of the diffuse dust, so
A_V = 2.5 log10(e) dust2 = 1.086 dust2; ``dust1`` is the V-band optical
depth of the birth clouds that surround stars younger than ``t_bc`` (10 Myr).
"""

import numpy as np

RV_CALZETTI = 4.05


def calzetti_k(wave_aa):
    """Calzetti et al. (2000) k(λ) = A(λ)/E(B-V)_star with R_V = 4.05.

    Defined by the paper over 0.12–2.2 µm; outside it the curve is continued
    linearly in 1/λ from the end points (as FSPS and CIGALE do) and floored at 0.

    Parameters
    ----------
    wave_aa : ndarray
        Wavelength, Angstrom.
    """
    lam = np.asarray(wave_aa, dtype=float) / 1e4  # micron
    x = 1.0 / lam

    def blue(xx):
        return 2.659 * (-2.156 + 1.509 * xx - 0.198 * xx**2 + 0.011 * xx**3) + RV_CALZETTI

    def red(xx):
        return 2.659 * (-1.857 + 1.040 * xx) + RV_CALZETTI

    k = np.where(lam >= 0.63, red(x), blue(x))
    # linear continuation in 1/λ beyond 0.12 µm and 2.2 µm
    x_uv, x_ir = 1 / 0.12, 1 / 2.2
    dx = 1e-3
    slope_uv = (blue(x_uv) - blue(x_uv - dx)) / dx
    k = np.where(lam < 0.12, blue(x_uv) + slope_uv * (x - x_uv), k)
    slope_ir = (red(x_ir + dx) - red(x_ir)) / dx
    k = np.where(lam > 2.2, red(x_ir) + slope_ir * (x - x_ir), k)
    return np.clip(k, 0.0, None)
