"""Native units and noise of the mock's images: Milky-Way transmission, f_lambda of
each survey's pixel unit, and each survey's variance recipe (docs/surveys.md)."""

import astropy.units as u
import numpy as np

from ..constants import AB_JY, GALEX_FLAM_PER_CPS, JY_CGS, NMGY_CGS, VEGA_F0_JY
from ..errors import InputError
from ..filters import C_AA_PER_S, get_filter
from ..images.extinction import galactic_transmission


def milky_way_transmission(wave_aa, ebv, rv=3.1):
    """Fraction of light transmitted through Milky-Way dust, ``10**(-0.4 A_lambda)``.

    Fitzpatrick (1999) with R_V = ``rv`` (``dust_extinction.parameter_averages.F99``)
    over its range (1000 AA - 3.33 um); redward of it (WISE) A_lambda is continued
    as the power law ``A(0.999 * 3.33 um) * (lambda / (0.999 * 3.33 um))**-1.7`` --
    the same rule as the imaging stage's correction
    (``sedmap.images.extinction.galactic_transmission``), so it undoes this exactly.
    """
    wave = np.atleast_1d(np.asarray(wave_aa, dtype=float))
    if ebv == 0:
        return np.ones_like(wave)
    try:
        return galactic_transmission(wave, ebv, rv)
    except InputError as exc:
        raise InputError(exc.problem, path="mock.bands", fix="use bands redward of 1150 AA") \
            from None


def flam_per_native_unit(band):
    """f_lambda (erg/s/cm^2/AA) of one native pixel unit of ``band`` (docs/surveys.md)."""
    name = get_filter(band["filter"]).name
    lam = get_filter(name).pivot_wavelength
    nu_to_lam = C_AA_PER_S / lam**2
    survey = band["survey"]
    if survey == "galex":
        return GALEX_FLAM_PER_CPS[name]
    if survey == "sdss":
        return NMGY_CGS * nu_to_lam
    if survey == "2mass":
        return VEGA_F0_JY[name] * JY_CGS * 10 ** (-0.4 * band["magzp"]) * nu_to_lam
    if survey == "wise":
        return VEGA_F0_JY[name] * JY_CGS * 10 ** (-0.4 * band["magzp"]) * nu_to_lam
    if survey == "hst":
        return float(band["photflam"])
    if survey == "des":
        return AB_JY * JY_CGS * 10 ** (-0.4 * band["magzero"]) * nu_to_lam
    unit = u.Unit(band["bunit"])
    return (1.0 * unit).to_value(u.erg / u.s / u.cm**2 / u.AA,
                                 equivalencies=u.spectral_density(lam * u.AA))


def native_variance(band, signal):
    """Variance (native units^2) of each pixel, from the noiseless sky-subtracted signal.

    The survey's recipe of docs/surveys.md evaluated on the noiseless image,
    sky included where the recipe counts it; the calibration term of GALEX is
    a zero-point error, not pixel noise, and is left out.
    """
    s = np.asarray(signal, dtype=float)
    pos = np.maximum(s, 0.0)
    survey = band["survey"]
    if survey == "galex":
        return np.maximum(s + band["sky"], 0.0) / band["exptime"]
    if survey == "sdss":
        dn = s / band["nmgy"] + band["sky"]
        return (np.maximum(dn, 0.0) / band["gain"] + band["darkvar"]) * band["nmgy"] ** 2
    if survey == "2mass":
        return pos / (band.get("gain", 10.0) * band.get("nframes", 6)) + band["skysig"] ** 2
    if survey == "wise":
        return band["skysig"] ** 2 + pos / band.get("gain", 40.0)
    if survey == "hst":
        return band["skysig"] ** 2 + pos / band["exptime"]
    if survey == "des":
        return band["skysig"] ** 2 + pos / band["gain"]
    return band["skysig"] ** 2 + pos * band.get("poisson", 0.0)
