"""Cosmology: luminosity distance and the age of the universe (astropy)."""

import functools

import astropy.cosmology as apc
import astropy.units as u

from ..errors import InputError

NAMED = ("WMAP9", "Planck15", "Planck18")


@functools.lru_cache(maxsize=16)
def get_cosmology(name="flat_lcdm", H0=70.0, Om0=0.3):
    """An astropy cosmology.

    Parameters
    ----------
    name : str
        ``flat_lcdm`` (uses ``H0`` in km/s/Mpc and ``Om0``) or one of
        ``WMAP9``, ``Planck15``, ``Planck18``.
    """
    if name == "flat_lcdm":
        return apc.FlatLambdaCDM(H0=H0, Om0=Om0)
    if name in NAMED:
        return getattr(apc, name)
    raise InputError(f"unknown cosmology '{name}'",
                     fix=f"use one of flat_lcdm, {', '.join(NAMED)}")


def luminosity_distance_cm(z, cosmo):
    """Luminosity distance in cm; 10 pc at z = 0 (absolute-magnitude convention)."""
    if z <= 0:
        return (10 * u.pc).to_value(u.cm)
    return cosmo.luminosity_distance(z).to_value(u.cm)


def age_of_universe_gyr(z, cosmo):
    """Age of the universe at redshift z, Gyr."""
    return float(cosmo.age(z).to_value(u.Gyr))
