"""Milky-Way foreground extinction: Fitzpatrick (1999), R_V = 3.1, from dust-extinction."""

import astropy.units as u
import numpy as np
from dust_extinction.parameter_averages import F99

from ..errors import InputError


def galactic_transmission(pivot_aa, ebv, rv=3.1):
    """Transmission 10**(-0.4 A_λ) of the Milky Way at the filters' pivot wavelengths.

    Parameters
    ----------
    pivot_aa : array-like
        Pivot wavelengths, Angstrom. Redward of F99's range (3.3 µm) the curve
        is continued as a power law A_λ ∝ λ^-1.7 (the usual near-IR slope),
        where A_λ < 0.06 A_V.
    ebv : float
        E(B-V), mag (e.g. from the Schlegel/SFD maps via IRSA), configured per galaxy.
    """
    if ebv < 0 or not np.isfinite(ebv):
        raise InputError(f"E(B-V) = {ebv} is not a valid reddening", path="galaxy.ebv",
                         fix="give E(B-V) >= 0 in magnitudes")
    lam = np.asarray(pivot_aa, dtype=float)
    model = F99(Rv=rv)
    lo, hi = 1e4 / model.x_range[1], 1e4 / model.x_range[0]  # Angstrom
    if np.any(lam < lo):
        raise InputError(f"a filter pivot ({lam.min():.0f} AA) is blueward of the F99 curve "
                         f"({lo:.0f} AA)", path="images.bands", fix="drop that band")
    a_over_av = np.empty_like(lam)
    inside = lam <= hi
    a_over_av[inside] = model(lam[inside] * u.AA)
    edge = model(np.array([hi * 0.999]) * u.AA)[0]
    a_over_av[~inside] = edge * (lam[~inside] / (hi * 0.999)) ** -1.7
    return 10 ** (-0.4 * a_over_av * rv * ebv)
