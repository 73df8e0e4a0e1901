"""Radial-profile product (FITS): ``profiles.fits``.

Layout (see docs/products.md)::

    PRIMARY   PRODUCT = 'PROFILES', GALAXY, provenance; the geometry: R_E_PIX,
              R_E_KPC, AXRATIO (b/a), PA_DEG (major axis from +x, counter-
              clockwise), REFBAND (index of the reference band), PIXKPC
              (undefined where unknown); NOTE: why there are no annuli, if so
    PROFILES  binary table, one row per annulus (sedmap.profiles.radial_profiles):
              r_lo, r_hi, r_mid (R/R_e), r_kpc, n_pix, and <quantity>_p16/_p50/_p84
              with TUNITn
"""

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import InputError
from .fits_utils import get_table, open_fits, parse_unit, primary_hdu, table_hdu, write_fits

PRODUCT = "PROFILES"
EXT = "PROFILES"
GEOMETRY = ("R_E_PIX", "R_E_KPC", "AXRATIO", "PA_DEG", "REFBAND", "PIXKPC")


def write_profiles(table, path, galaxy, confhash=None):
    """Write ``table`` (:func:`sedmap.profiles.radial_profiles`, with ``meta`` holding
    :data:`GEOMETRY`) to ``path`` atomically; return the path."""
    missing = [k for k in GEOMETRY if k not in table.meta]
    if missing:
        raise InputError(f"the profile table lacks {missing} in its meta.", path,
                         "make it with sedmap.profiles.radial_profiles.")
    cards = {"GALAXY": galaxy}
    for k in GEOMETRY:  # FITS has no NaN: an unknown value is written undefined
        v = table.meta[k]
        cards[k] = None if isinstance(v, float) and not np.isfinite(v) else v
    if table.meta.get("NOTE"):
        cards["NOTE"] = str(table.meta["NOTE"])[:68]  # why there are no annuli
    cols = [(n, "J" if n == "n_pix" else "D", table[n].data,
             str(table[n].unit) if table[n].unit is not None else None)
            for n in table.colnames]
    return write_fits([primary_hdu(PRODUCT, confhash, cards),
                       table_hdu(EXT, cols, confhash)], path)


def read_profiles(path):
    """The profile table of ``path`` (astropy Table with units; geometry in ``meta``)."""
    hdul = open_fits(path, PRODUCT)
    data = get_table(hdul, EXT, path, ["r_lo", "r_hi", "r_mid", "r_kpc", "n_pix"])
    table = Table(data)
    for col in hdul[EXT].columns:  # TUNITn in astropy's generic format (dex units)
        if col.unit:
            table[col.name].unit = parse_unit(col.unit, path, f"column {col.name}")
    for k in GEOMETRY:
        if k not in hdul[0].header:
            raise InputError(f"the primary header lacks {k}.", path,
                             "rewrite the product with sedmap (see docs/products.md).")
        v = hdul[0].header[k]
        table.meta[k] = float("nan") if v is None or isinstance(v, fits.card.Undefined) else v
    table.meta["GALAXY"] = hdul[0].header.get("GALAXY", "")
    if "NOTE" in hdul[0].header:
        table.meta["NOTE"] = hdul[0].header["NOTE"]
    return table
