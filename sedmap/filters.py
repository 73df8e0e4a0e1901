"""Filter transmission curves, synthetic photometry and flux-unit conversions.

Built-in curves come from astro-sedpy (``sedpy.observate``) and are exposed
under the names users know from piXedfit (``sdss_r``, ``galex_fuv``,
``2mass_k``, ``spitzer_irac_36``, ``hst_acs_f814w``, ``jwst_nircam_f200w``,
...). Every sedpy curve without a piXedfit name is listed under its sedpy
name in lower case (``bessell_v``, ``gaia_g``, ``uvot_w1``, ...). Lookups are
case-insensitive and also accept sedpy's own names (``sdss_r0``,
``twomass_Ks``, ``acs_wfc_f814w``) and piXedfit's spellings (``ctio_decam_g``,
``pan-starrs_g``, ``cfht_mega_u``) as aliases; :func:`list_filters` lists
only the canonical names. The curves are sedpy's, not piXedfit's: most
pivot wavelengths agree to < 1%, but a few versions differ by 1-4% (Herschel,
WISE W3, VIRCAM Z, Subaru B/z, LSST u), and sedpy's WFI Ic is ``wfi_ic`` because
piXedfit's ``wfi_i`` is a different filter.

User curves live in a user directory, never inside the installed package:
``$SEDMAP_FILTER_DIR`` if set, else ``$XDG_DATA_HOME/sedmap/filters``
(default ``~/.local/share/sedmap/filters``), one two-column text file
(wavelength in Angstrom, transmission) per filter.

Conventions
-----------
Wavelengths are in Angstrom (observed frame), f_lambda in erg/s/cm^2/Angstrom
and f_nu in erg/s/cm^2/Hz. A transmission curve T(lambda) is the dimensionless
photon-counting response (detector signal per incident photon), as sedpy
gives it. Between its tabulated points T is linear, and outside them zero;
all the integrals below are evaluated exactly under that model (so they can
differ slightly from sedpy's trapezoid values for coarsely tabulated curves),
and a flat-f_nu source gets the same AB magnitude in every band.

Band-averaged flux (what a photon-counting detector measures)::

    <f_lambda> = int f_lambda T lambda dlambda / int T lambda dlambda

Pivot wavelength -- used for every f_lambda <-> f_nu (and AB magnitude)
conversion, because ``<f_nu> = <f_lambda> lambda_p**2 / c`` holds exactly
for any spectrum when both averages are photon-weighted::

    lambda_p**2 = int T lambda dlambda / int T / lambda dlambda

Effective wavelength -- the photon-weighted mean wavelength for a source of
flat f_lambda; used only to place a band on a plot (SED figures)::

    lambda_eff = int T lambda**2 dlambda / int T lambda dlambda

AB magnitudes use the 3631 Jy zero point: ``m_AB = -2.5 log10(f_nu / 3631 Jy)``
(``= -2.5 log10 f_nu - 48.60`` in cgs); a maggie is ``f_nu / 3631 Jy``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import os
import re
import sysconfig
from pathlib import Path

import numpy as np

from .constants import AB_ZEROPOINT_FNU, C_AA_PER_S
from .errors import InputError
from .io import atomic_path

__all__ = [
    "AB_ZEROPOINT_FNU",
    "C_AA_PER_S",
    "Filter",
    "abmag_to_flam",
    "add_filter",
    "filter_matrix",
    "flam_to_abmag",
    "flam_to_fnu",
    "flam_to_maggies",
    "fnu_to_flam",
    "get_filter",
    "list_filters",
    "maggies_to_flam",
    "pivot_wavelengths",
    "remove_filter",
    "rename_filter",
    "synthetic_photometry",
    "user_filter_dir",
]

_USER_SUFFIX = ".dat"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
_LIST_FIX = "sedmap.filters.list_filters() lists the known names"


def _moments(wave, trans):
    """Exact (int T/lam, int T lam, int T lam^2) dlam for T linear between points."""
    a, b = wave[:-1], wave[1:]
    ta, tb = trans[:-1], trans[1:]
    h = b - a
    slope = (tb - ta) / h
    m, tm = 0.5 * (a + b), 0.5 * (ta + tb)
    inv = np.sum((ta - slope * a) * np.log1p(h / a) + slope * h)
    first = np.sum(h / 6.0 * (ta * a + 4.0 * tm * m + tb * b))  # Simpson: exact for cubics
    second = np.sum(h / 6.0 * (ta * a * a + 4.0 * tm * m * m + tb * b * b))
    return float(inv), float(first), float(second)


# --------------------------------------------------------------------------
# The Filter object
# --------------------------------------------------------------------------


def _validate_curve(name, wavelength, transmission, path=None):
    """Return (wavelength, transmission) as read-only float64 copies, or raise."""
    try:
        wave = np.array(wavelength, dtype=np.float64)
        trans = np.array(transmission, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"filter '{name}': wavelength and transmission must be numeric "
                         f"arrays ({err}).", path=path,
                         fix="pass 1-D arrays of numbers") from None
    fix = ("give a 1-D wavelength array in Angstrom, strictly increasing, and a "
           "transmission array of the same length, >= 0, finite and not all zero")
    if wave.ndim != 1 or trans.ndim != 1 or wave.shape != trans.shape:
        raise InputError(f"filter '{name}': wavelength (shape {wave.shape}) and transmission "
                         f"(shape {trans.shape}) must be 1-D arrays of equal length.",
                         path=path, fix=fix)
    if wave.size < 2:
        raise InputError(f"filter '{name}': a curve needs at least 2 points, got {wave.size}.",
                         path=path, fix=fix)
    if not (np.all(np.isfinite(wave)) and np.all(np.isfinite(trans))):
        raise InputError(f"filter '{name}': wavelength or transmission contains NaN or inf.",
                         path=path, fix=fix)
    if np.any(wave <= 0):
        raise InputError(f"filter '{name}': wavelengths must be positive (Angstrom), "
                         f"minimum is {wave.min():g}.", path=path, fix=fix)
    bad = np.flatnonzero(np.diff(wave) <= 0)
    if bad.size:
        i = bad[0]
        raise InputError(f"filter '{name}': wavelength is not strictly increasing "
                         f"({wave[i]:g} then {wave[i + 1]:g} Angstrom at index {i}).",
                         path=path, fix=fix)
    if np.any(trans < 0):
        raise InputError(f"filter '{name}': transmission is negative "
                         f"(minimum {trans.min():g}).", path=path, fix=fix)
    if not np.any(trans > 0):
        raise InputError(f"filter '{name}': transmission is zero everywhere.",
                         path=path, fix=fix)
    wave.flags.writeable = False
    trans.flags.writeable = False
    return wave, trans


@dataclasses.dataclass(frozen=True, eq=False)
class Filter:
    """A filter transmission curve.

    Parameters
    ----------
    name : str
        Name of the filter (canonical name for built-ins).
    wavelength : array_like
        Wavelength in Angstrom, 1-D, strictly increasing; stored as read-only
        float64.
    transmission : array_like
        Dimensionless photon-counting response (signal per incident photon)
        at ``wavelength``; >= 0, finite, not all zero. Linear between points,
        zero outside them.

    Raises
    ------
    sedmap.errors.InputError
        If the curve is malformed.
    """

    name: str
    wavelength: np.ndarray
    transmission: np.ndarray

    def __post_init__(self):
        wave, trans = _validate_curve(self.name, self.wavelength, self.transmission)
        object.__setattr__(self, "wavelength", wave)
        object.__setattr__(self, "transmission", trans)

    def __repr__(self):
        return (f"Filter({self.name!r}, pivot={self.pivot_wavelength:.1f} AA, "
                f"{self.wave_min:.6g}-{self.wave_max:.6g} AA, {self.wavelength.size} points)")

    @functools.cached_property
    def _support(self):
        """Slice of the tabulated points outside which T is zero."""
        nz = np.flatnonzero(self.transmission > 0)
        return slice(max(nz[0] - 1, 0), min(nz[-1] + 2, self.wavelength.size))

    @property
    def wave_min(self):
        """Shortest wavelength where T may be non-zero (Angstrom).

        A spectrum must cover ``[wave_min, wave_max]`` for synthetic photometry.
        """
        return float(self.wavelength[self._support][0])

    @property
    def wave_max(self):
        """Longest wavelength where T may be non-zero (Angstrom)."""
        return float(self.wavelength[self._support][-1])

    @functools.cached_property
    def pivot_wavelength(self):
        """Pivot wavelength (Angstrom): ``sqrt(int T lam dlam / int T/lam dlam)``.

        Use it to convert band-averaged f_lambda <-> f_nu (and AB magnitudes).
        """
        inv, first, _ = _moments(self.wavelength, self.transmission)
        return float(np.sqrt(first / inv))

    @functools.cached_property
    def effective_wavelength(self):
        """Effective wavelength (Angstrom): ``int T lam^2 dlam / int T lam dlam``.

        The photon-weighted mean wavelength for a flat-f_lambda source; use it
        to place the band on a plot, not for unit conversion.
        """
        _, first, second = _moments(self.wavelength, self.transmission)
        return second / first


# --------------------------------------------------------------------------
# Built-in library (sedpy curves under piXedfit names)
# --------------------------------------------------------------------------

# Irregular sedpy name -> canonical (piXedfit) name.
_EXPLICIT = {
    "galex_FUV": "galex_fuv",
    "galex_NUV": "galex_nuv",
    "twomass_J": "2mass_j",
    "twomass_H": "2mass_h",
    "twomass_Ks": "2mass_k",
    "spitzer_irac_ch1": "spitzer_irac_36",
    "spitzer_irac_ch2": "spitzer_irac_45",
    "spitzer_irac_ch3": "spitzer_irac_58",
    "spitzer_irac_ch4": "spitzer_irac_80",
    "cfht_megacam_us_9301": "cfht_megacam_u",
    "cfht_megacam_gs_9401": "cfht_megacam_g",
    "cfht_megacam_rs_9601": "cfht_megacam_r",
    "cfht_megacam_is_9701": "cfht_megacam_i",
    "cfht_megacam_zs_9801": "cfht_megacam_z",
    "cfht_wircam_J_8101": "cfht_wircam_j",
    "cfht_wircam_H_8201": "cfht_wircam_h",
    "cfht_wircam_Ks_8302": "cfht_wircam_ks",
    "subaru_suprimecam_B": "subaru_b",
    "subaru_suprimecam_V": "subaru_v",
    "subaru_suprimecam_Rc": "subaru_rc",
    "subaru_suprimecam_rp": "subaru_r",
    "subaru_suprimecam_ip": "subaru_i",
    "subaru_suprimecam_zp": "subaru_z",
    "subaru_suprimecam_ia767": "subaru_ia768",  # the filter is IA768
    "mpgeso_wfi_U38_eso841": "wfi_u38",
    "mpgeso_wfi_B_eso842": "wfi_b",
    "mpgeso_wfi_V_eso843": "wfi_v",
    "mpgeso_wfi_Rc_eso844": "wfi_rc",
    "mpgeso_wfi_Ic_eso845": "wfi_ic",  # piXedfit's wfi_i is another filter
}

# JWST: sedpy's ``jwst_f<number>`` curves are NIRCam below 5 um and MIRI above.
_MIRI_MIN_CODE = 500


def _jwst(m):
    code = m.group(1)
    inst = "miri" if int(re.match(r"\d+", code).group()) >= _MIRI_MIN_CODE else "nircam"
    return f"jwst_{inst}_f{code}"


# (regex on the full sedpy name, canonical name from the match).
_PATTERNS = [
    (r"sdss_([ugriz])0", lambda m: f"sdss_{m.group(1)}"),
    (r"acs_wfc_(f\w+)", lambda m: f"hst_acs_{m.group(1)}"),
    (r"wfc3_(uvis|ir)_(f\w+)", lambda m: f"hst_wfc3_{m.group(1)}_{m.group(2)}"),
    (r"jwst_f(\d+\w*)", _jwst),
    (r"jwst_mod([ab])_(f\w+)", lambda m: f"jwst_nircam_mod{m.group(1)}_{m.group(2)}"),
    (r"lsst_baseline_(\w)", lambda m: f"lsst_{m.group(1)}"),
    (r"vista_vircam_([YZJH]|Ks)", lambda m: f"vircam_{m.group(1)}"),
    (r"ukirt_wfcam_(\w)", lambda m: f"wfcam_{m.group(1)}"),
    (r"mayall_newfirm_(\w+)", lambda m: f"newfirm_{m.group(1)}"),
    (r"subaru_suprimecam_(ia\d+)", lambda m: f"subaru_{m.group(1)}"),
]

# Extra spellings (piXedfit's and short forms) -> canonical name.
_EXTRA_ALIASES = {
    **{f"ctio_decam_{b}": f"decam_{b}" for b in "ugrizy"},
    **{f"pan-starrs_{b}": f"panstarrs_{b}" for b in "grizy"},
    **{f"ps1_{b}": f"panstarrs_{b}" for b in "grizy"},
    **{f"cfht_mega_{b}": f"cfht_megacam_{b}" for b in "ugriz"},
    **{f"mips_{b}": f"spitzer_mips_{b}" for b in ("24", "70", "160")},
    **{f"irac_{b}": f"spitzer_irac_{b}" for b in ("36", "45", "58", "80")},
    "subaru_ia767": "subaru_ia768",
}


def _canonical_name(sedpy_name):
    if sedpy_name in _EXPLICIT:
        return _EXPLICIT[sedpy_name]
    for pattern, make in _PATTERNS:
        m = re.fullmatch(pattern, sedpy_name)
        if m:
            return make(m).lower()
    return sedpy_name.lower()


@functools.cache
def _builtin_tables():
    """(canonical -> sedpy name, alias -> canonical), both keyed in lower case."""
    import sedpy.observate

    canon = {}
    for sedpy_name in sedpy.observate.list_available_filters():
        key = _canonical_name(sedpy_name)
        if key in canon:  # pragma: no cover - guards against a future sedpy clash
            raise RuntimeError(f"sedpy filters {canon[key]!r} and {sedpy_name!r} "
                               f"both map to {key!r}")
        canon[key] = sedpy_name
    aliases = {}
    for key, sedpy_name in canon.items():
        low = sedpy_name.lower()
        if low != key and low not in canon:
            aliases[low] = key
    for alias, key in _EXTRA_ALIASES.items():
        if key in canon and alias not in canon:
            aliases[alias] = key
    return canon, aliases


@functools.cache
def _load_builtin(key):
    import sedpy.observate

    sedpy_name = _builtin_tables()[0][key]
    sf = sedpy.observate.Filter(sedpy_name)
    return Filter(key, sf.wavelength, sf.transmission)


def _builtin_key(name):
    """Canonical built-in key for ``name`` (case-insensitive, aliases too) or None."""
    canon, aliases = _builtin_tables()
    key = name.strip().lower()
    if key in canon:
        return key
    return aliases.get(key)


# --------------------------------------------------------------------------
# User filters
# --------------------------------------------------------------------------


def user_filter_dir():
    """Directory holding user filters (read from the environment at each call).

    ``$SEDMAP_FILTER_DIR`` if set, else ``$XDG_DATA_HOME/sedmap/filters``,
    else ``~/.local/share/sedmap/filters``. It need not exist yet.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    sedmap.errors.InputError
        If the directory lies inside the installed sedmap package or
        site-packages (user data must survive reinstalling sedmap).
    """
    env = os.environ.get("SEDMAP_FILTER_DIR")
    if env:
        path = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(xdg).expanduser() / "sedmap" / "filters"
    resolved = path.resolve()
    forbidden = {Path(__file__).resolve().parent}
    for key in ("purelib", "platlib"):
        with contextlib.suppress(KeyError, OSError):
            forbidden.add(Path(sysconfig.get_paths()[key]).resolve())
    for root in forbidden:
        if resolved == root or root in resolved.parents:
            raise InputError(f"the user filter directory {path} is inside {root}; "
                             "user filters must not live in the installed package.",
                             path="SEDMAP_FILTER_DIR",
                             fix="set SEDMAP_FILTER_DIR (or XDG_DATA_HOME) to a "
                                 "directory of your own, e.g. ~/.local/share/sedmap/filters")
    return path


def _user_path(name):
    return user_filter_dir() / f"{name.strip().lower()}{_USER_SUFFIX}"


def _check_user_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name.strip()):
        raise InputError(f"invalid filter name {name!r}.",
                         fix="use 1-100 characters from letters, digits and _ . + -, "
                             "starting with a letter or digit")
    name = name.strip()
    key = _builtin_key(name)
    if key is not None:
        raise InputError(f"'{name}' is the name of the built-in filter '{key}'.",
                         fix=f"choose another name, e.g. '{name}_custom'")
    return name


def _read_display_name(path):
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    m = re.match(r"#\s*sedmap filter:\s*(\S+)", first)
    return m.group(1) if m and m.group(1).lower() == path.stem else path.stem


def _load_user(path):
    name = _read_display_name(path)
    try:
        data = np.loadtxt(path, comments="#", ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise InputError(f"cannot read the filter curve ({err}).", path=path,
                         fix="the file must hold two columns: wavelength [Angstrom], "
                             "transmission") from None
    if data.shape[1] != 2:
        raise InputError(f"expected 2 columns (wavelength, transmission), got {data.shape[1]}.",
                         path=path, fix="rewrite it with sedmap.filters.add_filter")
    wave, trans = _validate_curve(name, data[:, 0], data[:, 1], path=path)
    return Filter(name, wave, trans)


def _write_user(filt, path):
    header = (f"sedmap filter: {filt.name}\n"
              "columns: wavelength [Angstrom], transmission [photon-counting response]")
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack([filt.wavelength, filt.transmission]),
                   fmt="%.17g", header=header, comments="# ")


def _user_names():
    d = user_filter_dir()
    if not d.is_dir():
        return []
    names = []
    for path in sorted(d.glob(f"*{_USER_SUFFIX}")):
        if path.name.startswith(".") or _builtin_key(path.stem) is not None:
            continue  # temp files; built-ins take precedence over stray files
        names.append(_read_display_name(path))
    return names


# --------------------------------------------------------------------------
# Public lookup API
# --------------------------------------------------------------------------


def list_filters():
    """All filter names: built-ins (canonical names) and user filters.

    Returns
    -------
    list of str
        Sorted case-insensitively. Aliases (sedpy's and piXedfit's spellings)
        are accepted by :func:`get_filter` but not listed.
    """
    names = set(_builtin_tables()[0]) | set(_user_names())
    return sorted(names, key=lambda s: (s.lower(), s))


def _unknown(name):
    canon, aliases = _builtin_tables()
    users = {n.lower(): n for n in _user_names()}
    pool = {**{k: k for k in canon}, **aliases, **users}
    close = difflib.get_close_matches(str(name).strip().lower(), list(pool), n=5, cutoff=0.6)
    seen = []
    for c in close:
        if pool[c] not in seen:
            seen.append(pool[c])
    hint = (" Did you mean " + ", ".join(f"'{s}'" for s in seen[:3]) + "?") if seen else ""
    return InputError(f"unknown filter '{name}'.{hint}",
                      fix=f"{_LIST_FIX}; add your own curve with sedmap.filters.add_filter("
                          f"name, wavelength_aa, transmission) (stored in {user_filter_dir()})")


def get_filter(name):
    """Look up a filter by name (case-insensitive; aliases accepted).

    Parameters
    ----------
    name : str or Filter
        Built-in name, alias or user filter name. A :class:`Filter` is
        returned unchanged.

    Returns
    -------
    Filter

    Raises
    ------
    sedmap.errors.InputError
        If the name is unknown (the message suggests close matches) or a user
        file is corrupt.
    """
    if isinstance(name, Filter):
        return name
    if not isinstance(name, str):
        raise InputError(f"filter names must be strings, got {name!r}.", fix=_LIST_FIX)
    key = _builtin_key(name)
    if key is not None:
        return _load_builtin(key)
    box = _TOPHAT_RE.match(name.strip().lower())
    if box:
        return tophat_filter(float(box.group(1)), float(box.group(2)))
    if _NAME_RE.match(name.strip()):
        path = _user_path(name)
        if path.is_file():
            return _load_user(path)
    raise _unknown(name)


#: ``tophat_<lo>_<hi>``: a box filter from lo to hi Angstrom (:func:`tophat_filter`)
_TOPHAT_RE = re.compile(r"^tophat_(\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)$")


def tophat_filter(lo, hi):
    """A box filter: transmission 1 from ``lo`` to ``hi`` Angstrom, 0 outside.

    Named ``tophat_<lo>_<hi>`` (e.g. ``tophat_4800_4975``), a name that
    :func:`get_filter` understands anywhere a filter is named, with no file to
    add: the synthetic bands of an IFS cube (``ifs.bands``) in the wavelengths
    it covers, or a narrow band around a line.
    """
    lo, hi = float(lo), float(hi)
    if not (0 < lo < hi):
        raise InputError(f"top-hat filter {lo:g}-{hi:g} AA: the edges must satisfy 0 < lo < hi.",
                         fix="name it tophat_<lo>_<hi> with lo < hi, in Angstrom")
    eps = 1e-3 * (hi - lo)
    return Filter(f"tophat_{lo:g}_{hi:g}", np.array([lo - eps, lo, hi, hi + eps]),
                  np.array([0.0, 1.0, 1.0, 0.0]))


def _is_user(name):
    return (isinstance(name, str) and _NAME_RE.match(name.strip()) is not None
            and _builtin_key(name) is None and _user_path(name).is_file())


def add_filter(name, wavelength, transmission, overwrite=False):
    """Add a user filter, saved in :func:`user_filter_dir`.

    Parameters
    ----------
    name : str
        New name (letters, digits, ``_ . + -``); must not be a built-in name
        or alias. Lookups are case-insensitive; the spelling given is kept
        for display.
    wavelength : array_like
        Wavelength in Angstrom, strictly increasing.
    transmission : array_like
        Photon-counting response at ``wavelength`` (>= 0, not all zero). For
        an energy-counting (bolometer) response R, pass ``R / wavelength``.
    overwrite : bool, optional
        Replace an existing user filter of the same name.

    Returns
    -------
    Filter

    Raises
    ------
    sedmap.errors.InputError
        If the name is invalid or taken, or the curve is malformed.
    """
    name = _check_user_name(name)
    filt = Filter(name, wavelength, transmission)
    path = _user_path(name)
    if path.exists() and not overwrite:
        raise InputError(f"user filter '{name}' already exists.", path=path,
                         fix="pass overwrite=True, or remove_filter() it first")
    _write_user(filt, path)
    return filt


def remove_filter(name):
    """Delete a user filter.

    Raises
    ------
    sedmap.errors.InputError
        If ``name`` is a built-in (those cannot be removed) or unknown.
    """
    key = _builtin_key(name) if isinstance(name, str) else None
    if key is not None:
        raise InputError(f"'{name}' is the built-in filter '{key}'; built-ins cannot be "
                         "removed.", fix="only filters added with add_filter can be removed")
    if not _is_user(name):
        raise _unknown(name)
    _user_path(name).unlink()


def rename_filter(old, new, overwrite=False):
    """Rename a user filter; for a built-in, save a user copy under ``new``.

    Renaming a user filter moves its file (the old name stops working).
    Built-ins cannot be renamed: ``rename_filter('sdss_r', 'r_band')``
    creates the user filter ``r_band`` with the built-in's curve and the
    built-in stays available under its own name.

    Parameters
    ----------
    old, new : str
        Current name (user or built-in) and new user-filter name.
    overwrite : bool, optional
        Replace an existing user filter called ``new``.

    Returns
    -------
    Filter
        The filter under its new name.

    Raises
    ------
    sedmap.errors.InputError
        If ``old`` is unknown, or ``new`` is invalid, a built-in name, or taken.
    """
    src = get_filter(old)
    new = _check_user_name(new)
    new_path = _user_path(new)
    old_is_user = isinstance(old, str) and _builtin_key(old) is None
    same_file = old_is_user and _user_path(old) == new_path
    if new_path.exists() and not (overwrite or same_file):
        raise InputError(f"user filter '{new}' already exists.", path=new_path,
                         fix="pass overwrite=True, or choose another name")
    filt = Filter(new, src.wavelength, src.transmission)
    _write_user(filt, new_path)
    if old_is_user and not same_file:
        _user_path(old).unlink()
    return filt


def pivot_wavelengths(names):
    """Pivot wavelengths (Angstrom) of the named filters.

    Parameters
    ----------
    names : sequence of str or Filter (a single str is one filter)

    Returns
    -------
    ndarray, shape (n_filters,)
    """
    if isinstance(names, (str, Filter)):
        names = [names]
    return np.array([get_filter(n).pivot_wavelength for n in names], dtype=np.float64)


# --------------------------------------------------------------------------
# Synthetic photometry
# --------------------------------------------------------------------------


def _validate_grid(wavelength):
    wave = np.asarray(wavelength, dtype=np.float64)
    fix = "pass a 1-D, finite, strictly increasing wavelength grid in Angstrom"
    if wave.ndim != 1 or wave.size < 2:
        raise InputError(f"the wavelength grid must be 1-D with >= 2 points, got shape "
                         f"{wave.shape}.", fix=fix)
    if not np.all(np.isfinite(wave)):
        raise InputError("the wavelength grid contains NaN or inf.", fix=fix)
    if np.any(np.diff(wave) <= 0):
        raise InputError("the wavelength grid is not strictly increasing.", fix=fix)
    return wave


def _filter_weights(filt, grid):
    """Weights w (len(grid)) with sum(w * f) = int f T lam dlam / int T lam dlam.

    Exact when f is linear between grid points: on the union of grid and
    filter points f, T and lambda are all linear, so f T lambda is a cubic
    on each interval and Simpson's rule integrates it exactly.
    """
    lo, hi = filt.wave_min, filt.wave_max
    if lo < grid[0] or hi > grid[-1]:
        raise InputError(f"filter '{filt.name}' spans {lo:.6g}-{hi:.6g} Angstrom but the "
                         f"wavelength grid covers only {grid[0]:.6g}-{grid[-1]:.6g} Angstrom.",
                         fix="extend the (observed-frame) wavelength grid to cover the "
                             "filter, or drop the filter")
    fw, ft = filt.wavelength, filt.transmission
    nodes = np.union1d(grid[(grid > lo) & (grid < hi)], fw[(fw >= lo) & (fw <= hi)])
    a, b = nodes[:-1], nodes[1:]
    h = b - a
    pts = np.concatenate([a, 0.5 * (a + b), b])
    simpson = np.concatenate([h, 4.0 * h, h]) / 6.0
    c = simpson * np.interp(pts, fw, ft) * pts  # weight on f(pts)
    j = np.clip(np.searchsorted(grid, pts, side="right") - 1, 0, grid.size - 2)
    t = (pts - grid[j]) / (grid[j + 1] - grid[j])
    w = (np.bincount(j, c * (1.0 - t), minlength=grid.size)
         + np.bincount(j + 1, c * t, minlength=grid.size))
    return w / c.sum()


def filter_matrix(names, wavelength):
    """Band-averaging weights of filters on a wavelength grid.

    For spectra ``flam`` (erg/s/cm^2/Angstrom) sampled on ``wavelength``,
    ``flam @ W.T`` is the photon-counting band average
    ``<f_lambda> = int f_lambda T lambda dlambda / int T lambda dlambda`` in each
    filter (erg/s/cm^2/Angstrom). The spectrum is taken as linear between grid
    points and T as linear between its own tabulated points (zero outside);
    the integral is then exact, however coarse the grid is relative to the
    filter. Each row of W sums to 1. Compute W once and reuse it.

    Parameters
    ----------
    names : sequence of str or Filter (a single str is one filter)
    wavelength : array_like, shape (n_wave,)
        Observed-frame wavelengths in Angstrom, strictly increasing, any spacing.

    Returns
    -------
    W : ndarray, shape (n_filters, n_wave)

    Raises
    ------
    sedmap.errors.InputError
        If a filter is unknown or extends beyond the grid.
    """
    grid = _validate_grid(wavelength)
    if isinstance(names, (str, Filter)):
        names = [names]
    filters = [get_filter(n) for n in names]
    W = np.zeros((len(filters), grid.size))
    for i, filt in enumerate(filters):
        W[i] = _filter_weights(filt, grid)
    return W


def synthetic_photometry(wavelength, flam, names):
    """Band-averaged f_lambda of spectra in the named filters.

    Parameters
    ----------
    wavelength : array_like, shape (n_wave,)
        Observed-frame wavelengths in Angstrom, strictly increasing.
    flam : array_like, shape (..., n_wave)
        f_lambda in erg/s/cm^2/Angstrom; any leading axes. float32 input is
        computed in float32, anything else in float64.
    names : sequence of str or Filter

    Returns
    -------
    ndarray, shape (..., n_filters)
        ``<f_lambda>`` in erg/s/cm^2/Angstrom (see :func:`filter_matrix`);
        convert with :func:`flam_to_abmag` etc. at :func:`pivot_wavelengths`.
    """
    W = filter_matrix(names, wavelength)
    flam = np.asarray(flam)
    if flam.dtype != np.float32:
        flam = flam.astype(np.float64, copy=False)
    if flam.ndim < 1 or flam.shape[-1] != W.shape[1]:
        raise InputError(f"flam has shape {flam.shape} but the wavelength grid has "
                         f"{W.shape[1]} points.",
                         fix="the last axis of flam must run along the wavelength grid")
    return flam @ W.T.astype(flam.dtype, copy=False)


# --------------------------------------------------------------------------
# Unit conversions (broadcasting; pivot wavelengths in Angstrom)
# --------------------------------------------------------------------------


def flam_to_fnu(flam, pivot_aa):
    """f_nu [erg/s/cm^2/Hz] = f_lambda [erg/s/cm^2/Angstrom] * lambda_p^2 / c."""
    pivot = np.asarray(pivot_aa, dtype=np.float64)
    return np.asarray(flam, dtype=np.float64) * pivot**2 / C_AA_PER_S


def fnu_to_flam(fnu, pivot_aa):
    """f_lambda [erg/s/cm^2/Angstrom] = f_nu [erg/s/cm^2/Hz] * c / lambda_p^2."""
    pivot = np.asarray(pivot_aa, dtype=np.float64)
    return np.asarray(fnu, dtype=np.float64) * C_AA_PER_S / pivot**2


def flam_to_maggies(flam, pivot_aa):
    """Maggies (f_nu / 3631 Jy, dimensionless) from f_lambda [erg/s/cm^2/Angstrom]."""
    return flam_to_fnu(flam, pivot_aa) / AB_ZEROPOINT_FNU


def maggies_to_flam(maggies, pivot_aa):
    """f_lambda [erg/s/cm^2/Angstrom] from maggies (f_nu / 3631 Jy)."""
    return fnu_to_flam(np.asarray(maggies, dtype=np.float64) * AB_ZEROPOINT_FNU, pivot_aa)


def flam_to_abmag(flam, pivot_aa):
    """AB magnitude ``-2.5 log10(f_nu / 3631 Jy)`` from f_lambda [erg/s/cm^2/Angstrom].

    Zero flux gives +inf and negative flux NaN (no warning); keep fluxes that
    can be negative in maggies or f_lambda.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return -2.5 * np.log10(flam_to_maggies(flam, pivot_aa))


def abmag_to_flam(mag, pivot_aa):
    """f_lambda [erg/s/cm^2/Angstrom] from AB magnitude."""
    return maggies_to_flam(10.0 ** (-0.4 * np.asarray(mag, dtype=np.float64)), pivot_aa)
