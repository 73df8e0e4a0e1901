"""Property maps ``results/{galaxy}/maps.fits``: one image extension per map.

Layout (see ``docs/products.md``)::

    PRIMARY      PRODUCT='MAPS', GALAXY, NMAPS, CONSTMIN, SEDMAPV, CONFHASH
    <NAME> ...   float32 (ny, nx), e.g. LOG_MASS_P50; BUNIT, MAPSPACE ('BIN'|'PIXEL'), WCS
    SUMMARY      table: quantity, constrained_frac (of the fitted pixels),
                 constrained_bin_frac, median_constraint (of the bins) (optional)

``MAPSPACE='BIN'``: the value belongs to the whole bin and is repeated on
each of its pixels (e.g. the log stellar mass of the bin): do not sum such a
map over pixels. ``MAPSPACE='PIXEL'``: the value belongs to that pixel alone
(e.g. the bin's mass shared among its pixels in proportion to their flux,
or a surface density): extensive pixel-space maps can be summed over pixels.
Pixels outside every bin are NaN.
"""

import re
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..errors import InputError
from .fits_utils import (
    check_shape,
    image_hdu,
    open_fits,
    parse_unit,
    primary_hdu,
    provenance,
    read_wcs,
    table_hdu,
    write_fits,
)

PRODUCT = "MAPS"
SPACES = ("BIN", "PIXEL")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,67}$")


@dataclass(eq=False)
class PropertyMap:
    """One map: ``data`` (ny, nx) in ``unit`` (an astropy unit string, e.g.
    ``'dex(solMass)'``), in ``space`` 'BIN' or 'PIXEL'."""

    data: np.ndarray
    unit: str
    space: str = "BIN"


@dataclass(eq=False)
class MapSet:
    """All property maps of one galaxy, keyed by extension name (e.g. ``LOG_MASS_P50``)."""

    galaxy: str
    wcs: WCS
    maps: dict              #: name -> PropertyMap, in extension order
    config_hash: str = "none"
    sedmap_version: str = ""  #: filled in by the reader
    #: {quantity: {"fraction": constrained fraction of the fitted pixels,
    #: "bin_fraction": ... of the fitted bins, "median": the bins' median constraint}}
    summary: dict | None = None
    constraint_min: float | None = None  #: the constraint a constrained bin reaches

    def __getitem__(self, name):
        return self.maps[name]


def validate_map_set(ms, path):
    """Check ``ms``; InputError naming ``path`` on failure."""
    if not ms.maps:
        raise InputError("no maps.", path, "give at least one map.")
    shape = None
    for name, m in ms.maps.items():
        if not _NAME.match(name):
            raise InputError(f"map name {name!r} is not a valid extension name.", path,
                             "use upper-case letters, digits and '_', e.g. LOG_MASS_P50.")
        if m.space not in SPACES:
            raise InputError(f"map {name}: MAPSPACE {m.space!r} is not one of {SPACES}.", path,
                             "set MAPSPACE to 'BIN' or 'PIXEL'.")
        parse_unit(m.unit, path, f"map {name}")
        data = np.asarray(m.data)
        if data.ndim != 2:
            raise InputError(f"map {name} has {data.ndim} dimensions, expected 2.", path,
                             "give each map as a (ny, nx) image.")
        if shape is None:
            shape, first = data.shape, name
        check_shape(data, shape, name, path, first)


def write_map_set(ms, path):
    """Write ``ms`` (a :class:`MapSet`) to ``path`` atomically; return the path."""
    validate_map_set(ms, path)
    h = ms.config_hash
    cards = {"GALAXY": (ms.galaxy, "galaxy name"), "NMAPS": (len(ms.maps), "number of maps")}
    if ms.constraint_min is not None:
        cards["CONSTMIN"] = (float(ms.constraint_min), "least NAME_CONSTRAINT of a constrained bin")
    hdus = [primary_hdu(PRODUCT, h, cards)]
    for name, m in ms.maps.items():
        hdus.append(image_hdu(name, np.asarray(m.data, dtype=np.float32), h, ms.wcs, m.unit,
                              {"MAPSPACE": (m.space, "BIN or PIXEL, see docs/products.md")}))
    if ms.summary:
        names = list(ms.summary)
        hdus.append(table_hdu("SUMMARY", [
            ("quantity", f"{max(len(n) for n in names)}A", np.array(names), None),
            ("constrained_frac", "D", np.array([ms.summary[n]["fraction"] for n in names]),
             None),
            ("constrained_bin_frac", "D",
             np.array([ms.summary[n]["bin_fraction"] for n in names]), None),
            ("median_constraint", "D", np.array([ms.summary[n]["median"] for n in names]),
             None)], h))
    return write_fits(hdus, path)


def read_map_set(path):
    """Read and validate a property-map file."""
    hdul = open_fits(path, PRODUCT)
    maps, wcs = {}, None
    for hdu in hdul[1:]:
        if not isinstance(hdu, fits.ImageHDU):
            continue
        name = hdu.name
        for key in ("BUNIT", "MAPSPACE"):
            if key not in hdu.header:
                raise InputError(f"map {name} has no {key} keyword.", path,
                                 "rewrite the maps with sedmap (see docs/products.md).")
        this_wcs = read_wcs(hdu.header, path, name)
        wcs = wcs or this_wcs
        maps[name] = PropertyMap(np.asarray(hdu.data, dtype=np.float32),
                                 str(hdu.header["BUNIT"]), str(hdu.header["MAPSPACE"]))
    version, confhash = provenance(hdul[0].header)
    summary = None
    if "SUMMARY" in hdul:
        t = hdul["SUMMARY"].data
        summary = {str(q).strip(): {"fraction": float(f), "bin_fraction": float(fb),
                                    "median": float(m)}
                   for q, f, fb, m in zip(t["quantity"], t["constrained_frac"],
                                          t["constrained_bin_frac"], t["median_constraint"])}
    cmin = hdul[0].header.get("CONSTMIN")
    ms = MapSet(str(hdul[0].header.get("GALAXY", "")), wcs, maps, confhash, version,
                summary, None if cmin is None else float(cmin))
    validate_map_set(ms, path)
    return ms
