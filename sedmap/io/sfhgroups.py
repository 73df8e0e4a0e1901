"""SFH groups ``results/{galaxy}/sfh_groups.fits``: pixels grouped by star-formation
history, and the mean SFH of each group.

Layout (see ``docs/products.md``)::

    PRIMARY    PRODUCT='SFHGROUPS', GALAXY, NGROUP, SEDMAPV, CONFHASH
    GROUP_MAP  int16 (ny, nx): group id 0..n_group-1, -1 = masked; WCS, BUNIT=''
    GROUPS     table: group_id (int16), mass (Msun formed), n_pix (int32)
    MEAN_SFH   float64 (n_group, n_time), BUNIT='Msun yr-1'
    TIME       table: edge (Gyr, lookback time), n_time + 1 rows, increasing
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.wcs import WCS

from ..errors import InputError
from .fits_utils import (
    check_shape,
    get_hdu,
    get_image,
    get_table,
    image_hdu,
    open_fits,
    parse_unit,
    primary_hdu,
    provenance,
    read_wcs,
    table_hdu,
    write_fits,
)

PRODUCT = "SFHGROUPS"
SFR_UNIT = u.Msun / u.yr


@dataclass(eq=False)
class SFHGroups:
    """Groups of pixels with similar SFHs.

    ``mass`` is the total mass *formed* by each group (Msun): the integral of its SFH,
    before the mass that stars return to the gas (the stellar mass is 0.55-0.9 of it);
    ``mean_sfh`` the
    mean over the group's pixels of the per-pixel SFR (Msun/yr) in each
    lookback-time bin ``[time_edges[j], time_edges[j+1])`` (Gyr).
    """

    galaxy: str
    group_map: np.ndarray    #: (ny, nx) int16, -1 = masked
    wcs: WCS
    mass: np.ndarray         #: (n_group,) Msun
    mean_sfh: np.ndarray     #: (n_group, n_time) Msun/yr
    time_edges: np.ndarray   #: (n_time + 1,) Gyr
    config_hash: str = "none"
    sedmap_version: str = ""  #: filled in by the reader

    @property
    def n_group(self):
        return len(self.mass)

    @property
    def group_id(self):
        """``0..n_group-1``."""
        return np.arange(self.n_group, dtype=np.int16)

    @property
    def n_pix(self):
        """Number of pixels in each group, from ``group_map``."""
        gmap = np.asarray(self.group_map).ravel()
        return np.bincount(gmap[gmap >= 0], minlength=self.n_group)[:self.n_group].astype(
            np.int32)


def validate_sfh_groups(g, path):
    """Check ``g``; InputError naming ``path`` on failure."""
    gmap = np.asarray(g.group_map)
    if gmap.ndim != 2 or not np.issubdtype(gmap.dtype, np.integer):
        raise InputError(f"GROUP_MAP must be a 2-D integer image, got {gmap.ndim}-D "
                         f"{gmap.dtype}.", path, "write group ids as int16 (-1 = masked).")
    n = np.asarray(g.mass).shape
    if len(n) != 1:
        raise InputError(f"GROUPS mass has shape {n}, expected (n_group,).", path,
                         "give one mass per group.")
    n = n[0]
    if gmap.size and (gmap.min() < -1 or gmap.max() >= n):
        raise InputError(f"GROUP_MAP holds ids from {gmap.min()} to {gmap.max()}, but GROUPS "
                         f"has {n} groups (ids must be -1..{n - 1}).", path,
                         "number the groups 0..n_group-1, -1 for masked pixels.")
    empty = np.flatnonzero(g.n_pix == 0)
    if empty.size:
        raise InputError(f"{empty.size} empty groups: group ids {empty[:10].tolist()} have zero "
                         "pixels in GROUP_MAP.", path, "drop empty groups and renumber.")
    edges = np.asarray(g.time_edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not (
            np.all(np.isfinite(edges)) and edges[0] >= 0 and np.all(np.diff(edges) > 0)):
        raise InputError("TIME edges must be at least two finite, non-negative, strictly "
                         "increasing lookback times (Gyr).", path,
                         "write the lookback-time bin edges in Gyr, in increasing order.")
    check_shape(np.asarray(g.mean_sfh), (n, edges.size - 1), "MEAN_SFH", path,
                "(n_group, n_time) from GROUPS and TIME")


def write_sfh_groups(g, path):
    """Write ``g`` (an :class:`SFHGroups`) to ``path`` atomically; return the path."""
    validate_sfh_groups(g, path)
    h = g.config_hash
    hdus = [
        primary_hdu(PRODUCT, h, {"GALAXY": (g.galaxy, "galaxy name"),
                                 "NGROUP": (g.n_group, "number of groups")}),
        image_hdu("GROUP_MAP", np.asarray(g.group_map, dtype=np.int16), h, g.wcs, "",
                  {"GRPNULL": (-1, "group id of masked pixels")}),
        table_hdu("GROUPS", [
            ("group_id", "I", g.group_id, None),
            ("mass", "D", np.asarray(g.mass, dtype=float), "solMass"),
            ("n_pix", "J", g.n_pix, None),
        ], h),
        image_hdu("MEAN_SFH", np.asarray(g.mean_sfh, dtype=np.float64), h, None, "Msun yr-1"),
        table_hdu("TIME", [("edge", "D", np.asarray(g.time_edges, dtype=float), "Gyr")], h),
    ]
    return write_fits(hdus, path)


def _to(values, unit_string, target, path, where):
    unit = parse_unit(unit_string, path, where)
    try:
        return np.asarray(values, dtype=float) * unit.to(target)
    except u.UnitConversionError:
        raise InputError(f"{where}: unit {unit_string!r} is not convertible to {target}.", path,
                         f"store {where} in {target}.") from None


def read_sfh_groups(path):
    """Read and validate an SFH-groups file."""
    hdul = open_fits(path, PRODUCT)
    gmap = get_image(hdul, "GROUP_MAP", path, 2)
    table = get_table(hdul, "GROUPS", path, ["group_id", "mass", "n_pix"])
    time = get_table(hdul, "TIME", path, ["edge"])
    sfh = get_image(hdul, "MEAN_SFH", path, 2)
    version, confhash = provenance(hdul[0].header)
    g = SFHGroups(
        galaxy=str(hdul[0].header.get("GALAXY", "")),
        group_map=gmap.astype(np.int16),
        wcs=read_wcs(hdul["GROUP_MAP"].header, path, "GROUP_MAP"),
        mass=_to(table["mass"], hdul["GROUPS"].columns["mass"].unit or "solMass", u.Msun,
                 path, "GROUPS mass"),
        mean_sfh=_to(sfh, get_hdu(hdul, "MEAN_SFH", path).header.get("BUNIT"), SFR_UNIT, path,
                     "MEAN_SFH"),
        time_edges=_to(time["edge"], hdul["TIME"].columns["edge"].unit or "Gyr", u.Gyr, path,
                       "TIME edge"),
        config_hash=confhash, sedmap_version=version,
    )
    validate_sfh_groups(g, path)
    if not np.array_equal(np.asarray(table["group_id"]), g.group_id):
        raise InputError("GROUPS group_id is not 0..n_group-1 in order.", path,
                         "number the groups 0..n_group-1, one row per group, in order.")
    if not np.array_equal(np.asarray(table["n_pix"]), g.n_pix):
        raise InputError("GROUPS n_pix disagrees with the pixel counts in GROUP_MAP.", path,
                         "rewrite the groups with sedmap so that n_pix matches GROUP_MAP.")
    return g
