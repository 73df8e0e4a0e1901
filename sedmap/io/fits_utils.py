"""Shared FITS helpers: safe open, unit and WCS handling, atomic writes.

Every FITS product of sedmap is written through :func:`write_fits` and read
through :func:`open_fits`, so every product gets the same guarantees:

* the write is atomic and deterministic (no ``DATE`` or checksum keywords,
  so the same inputs give the same bytes);
* the primary header names the product (``PRODUCT``) and carries the
  provenance keys ``SEDMAPV`` and ``CONFHASH``;
* every sky image carries a celestial WCS and ``BUNIT``;
* every read problem becomes an :class:`~sedmap.errors.InputError` that names
  the file, the problem and the fix.
"""

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from ..errors import InputError
from .atomic import atomic_path
from .provenance import HASH_KEY, VERSION_KEY, provenance_header

#: Physical unit of every flux density sedmap stores (times ``FSCALE``).
FLUX_UNIT = u.erg / u.s / u.cm**2 / u.AA
#: Default flux scale: stored values are in units of 1e-17 erg/s/cm2/AA.
DEFAULT_FSCALE = 1e-17

PRODUCT_KEY = "PRODUCT"


# --------------------------------------------------------------------------- units

def flux_bunit(fscale):
    """BUNIT string of flux densities stored in units of ``fscale`` erg/s/cm2/AA.

    >>> flux_bunit(1e-17)
    '1e-17 erg s-1 cm-2 AA-1'
    """
    return f"{float(fscale):.6g} erg s-1 cm-2 AA-1"


def flux_var_unit(fscale):
    """Unit string of a variance of flux densities stored with ``fscale``."""
    return f"{float(fscale) ** 2:.6g} erg2 s-2 cm-4 AA-2"


def parse_unit(bunit, path, where):
    """Parse a unit string with astropy; raise InputError if it is missing or not a unit."""
    if bunit is None:
        raise InputError(f"{where}: no unit (BUNIT/TUNIT) given.", path,
                         "rewrite the product with sedmap, which sets the units.")
    try:
        return u.Unit(str(bunit).strip(), parse_strict="raise")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}: unit {bunit!r} is not a unit astropy can parse ({exc}).",
                         path, "write a valid unit string, e.g. '1e-17 erg s-1 cm-2 AA-1'.",
                         ) from None


def flux_scale(bunit, path, where, power=1):
    """Scale of a flux-density unit string, in erg/s/cm2/AA (``power=2``: of a variance).

    Returns ``s`` such that ``bunit == (s erg/s/cm2/AA) ** power``. Raises
    InputError if ``bunit`` is None, not a unit, or not a flux density per unit
    wavelength (to that power).
    """
    unit = parse_unit(bunit, path, where)
    try:
        scale = unit.to(FLUX_UNIT**power)
    except u.UnitConversionError:
        what = "flux density per unit wavelength" + (" squared" if power == 2 else "")
        raise InputError(
            f"{where}: unit {bunit!r} is not a {what} (physical type {unit.physical_type}).",
            path, "convert the data to erg s-1 cm-2 AA-1 (times a scale) and set the unit "
            "to match.") from None
    return float(scale) ** (1.0 / power)


def header_flux_scale(header, path, where):
    """Scale of a flux-density HDU from its BUNIT, checked against ``FSCALE`` if present."""
    scale = flux_scale(header.get("BUNIT"), path, where)
    if "FSCALE" in header and not np.isclose(float(header["FSCALE"]), scale, rtol=1e-6, atol=0):
        raise InputError(f"{where}: FSCALE={header['FSCALE']} disagrees with "
                         f"BUNIT {header['BUNIT']!r}.", path, "make FSCALE equal the BUNIT scale.")
    return scale


def rescale(data, scale, target):
    """``data`` given in units of ``scale`` converted to units of ``target``."""
    if np.isclose(scale, target, rtol=1e-6, atol=0):
        return data
    return data * (scale / target)


# --------------------------------------------------------------------------- WCS

def wcs_header(wcs):
    """FITS header cards of a 2-D celestial WCS (raises ValueError if it is not one)."""
    if not isinstance(wcs, WCS) or wcs.naxis != 2 or not wcs.has_celestial:
        raise ValueError("a 2-D celestial astropy.wcs.WCS is required")
    return wcs.to_header()


def read_wcs(header, path, where):
    """The 2-D celestial WCS of an image header; InputError if there is none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header, naxis=2)
        except (ValueError, KeyError, TypeError, MemoryError) as exc:
            raise InputError(f"{where}: the WCS keywords cannot be parsed ({exc}).", path,
                             "write a valid celestial WCS (CTYPE, CRVAL, CRPIX, CDELT/CD).",
                             ) from None
    if not wcs.has_celestial:
        raise InputError(f"{where}: no celestial WCS (CTYPE1/CTYPE2 missing).", path,
                         "write a celestial WCS into every image extension.")
    return wcs


# --------------------------------------------------------------------------- writing

def primary_hdu(product, confhash, cards=None):
    """Primary HDU naming the product, with provenance and ``cards`` (key -> value or
    (value, comment))."""
    hdu = fits.PrimaryHDU()
    hdu.header[PRODUCT_KEY] = (product, "sedmap product type")
    for key, value in (cards or {}).items():
        hdu.header[key] = value
    provenance_header(hdu.header, confhash)
    return hdu


def image_hdu(name, data, confhash, wcs=None, bunit=None, cards=None):
    """Image extension ``name`` with optional WCS and BUNIT, plus provenance."""
    header = fits.Header()
    if wcs is not None:
        header.update(wcs_header(wcs))
    if bunit is not None:
        header["BUNIT"] = (bunit, "unit of the data")
    for key, value in (cards or {}).items():
        header[key] = value
    provenance_header(header, confhash)
    return fits.ImageHDU(np.ascontiguousarray(data), header=header, name=name)


def table_hdu(name, columns, confhash, cards=None):
    """Binary-table extension from ``[(name, format, array, unit_or_None), ...]``."""
    cols = [fits.Column(name=n, format=f, array=a, unit=un) for n, f, a, un in columns]
    hdu = fits.BinTableHDU.from_columns(cols, name=name)
    for key, value in (cards or {}).items():
        hdu.header[key] = value
    provenance_header(hdu.header, confhash)
    return hdu


def write_fits(hdus, path):
    """Write ``hdus`` to ``path`` atomically (no DATE/CHECKSUM: deterministic bytes)."""
    hdul = fits.HDUList(hdus)
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, output_verify="exception")
    return Path(path)


# --------------------------------------------------------------------------- reading

def _any_astropy_warning(w):
    return issubclass(w.category, AstropyUserWarning)


def read_whole_fits(path, *, missing_fix, corrupt_fix, is_damage=_any_astropy_warning,
                    what="file"):
    """Read a whole FITS file into memory (closed afterwards) or raise InputError.

    A missing file, an unreadable one and one whose reading raises a warning that
    ``is_damage`` accepts (truncated data, a cut-off header...) each get an
    InputError that names the file and gives ``missing_fix`` / ``corrupt_fix``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found.", path, missing_fix)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                for hdu in hdul:
                    _ = hdu.data  # force the read: truncated data fails here
                hdul = fits.HDUList(list(hdul))
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError) as exc:
        raise InputError(f"not a readable FITS file, corrupt or truncated ({exc}).", path,
                         corrupt_fix) from None
    damage = [str(w.message) for w in caught if is_damage(w)]
    if damage:  # truncated data, a cut-off header, bytes after the end, ...
        raise InputError(f"FITS file is damaged, truncated or corrupt ({damage[0].strip()}).",
                         path, corrupt_fix)
    return hdul


def open_fits(path, products):
    """Read a whole FITS file into memory and check its ``PRODUCT`` key.

    Parameters
    ----------
    path : str or os.PathLike
    products : str or tuple of str
        Accepted values of the primary ``PRODUCT`` keyword.

    Returns
    -------
    hdul : astropy.io.fits.HDUList
        Fully loaded; the file is closed.
    """
    path = Path(path)
    products = (products,) if isinstance(products, str) else tuple(products)
    hdul = read_whole_fits(
        path, missing_fix="check the path, or run the pipeline stage that makes it.",
        corrupt_fix="delete it and run the stage that makes it again.")
    product = hdul[0].header.get(PRODUCT_KEY)
    if product not in products:
        raise InputError(f"PRODUCT is {product!r}, expected {' or '.join(products)}.", path,
                         "pass the right file (see docs/products.md).")
    return hdul


def get_hdu(hdul, name, path):
    """Extension ``name``; InputError if it is missing."""
    if name not in hdul:
        raise InputError(f"missing extension {name}.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    return hdul[name]


def get_image(hdul, name, path, ndim):
    """Data of image extension ``name``, checked to have ``ndim`` dimensions."""
    hdu = get_hdu(hdul, name, path)
    if not isinstance(hdu, (fits.ImageHDU, fits.PrimaryHDU)) or hdu.data is None:
        raise InputError(f"extension {name} is not an image with data.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    if hdu.data.ndim != ndim:
        raise InputError(f"extension {name} has {hdu.data.ndim} dimensions, expected {ndim}.",
                         path, "rewrite the product with sedmap (see docs/products.md).")
    return np.asarray(hdu.data)


def get_table(hdul, name, path, columns):
    """Data of table extension ``name``, checked to hold ``columns``."""
    hdu = get_hdu(hdul, name, path)
    if not isinstance(hdu, fits.BinTableHDU):
        raise InputError(f"extension {name} is not a binary table.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    missing = [c for c in columns if c not in hdu.columns.names]
    if missing:
        raise InputError(f"table {name} lacks columns {missing}.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    return hdu.data


def get_flux_image(hdul, name, path, ndim, fscale, power=1):
    """Flux-density image ``name`` (``power=2``: a variance) in units of ``fscale**power``."""
    data = get_image(hdul, name, path, ndim).astype(np.float32)
    header = hdul[name].header
    if power == 1:
        scale = header_flux_scale(header, path, name)
    else:
        scale = flux_scale(header.get("BUNIT"), path, name, power)
    return rescale(data, scale**power, fscale**power)


def check_shape(data, shape, name, path, against):
    """InputError unless ``data.shape == shape`` (``against`` names the reference)."""
    if tuple(data.shape) != tuple(shape):
        raise InputError(f"extension {name} has shape {tuple(data.shape)}, but {against} "
                         f"has shape {tuple(shape)}.", path,
                         "rewrite the product so that the arrays agree.")


def check_error(err, inside, name, path, what="pixels inside the galaxy region"):
    """InputError if ``err`` is NaN, zero or negative anywhere ``inside`` is true."""
    bad = inside & ~(np.isfinite(err) & (err > 0))
    nbad = int(np.count_nonzero(bad))
    if nbad:
        raise InputError(f"{name} is NaN, zero or negative in {nbad} {what}.", path,
                         "give every such pixel a finite positive error, or leave it out "
                         "of the region/mask.")


def provenance(header):
    """``(sedmap_version, config_hash)`` read from a header ('' if absent)."""
    return str(header.get(VERSION_KEY, "")), str(header.get(HASH_KEY, ""))


def header_float(header, key, path):
    """Float header value ``key``; InputError if it is missing or not a number."""
    if key not in header:
        raise InputError(f"primary header lacks {key}.", path,
                         "rewrite the product with sedmap (see docs/products.md).")
    try:
        return float(header[key])
    except (TypeError, ValueError):
        raise InputError(f"header key {key}={header[key]!r} is not a number.", path,
                         "rewrite the product with sedmap (see docs/products.md).") from None
