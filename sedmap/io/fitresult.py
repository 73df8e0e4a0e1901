"""Per-bin fit result: ``results/{galaxy}/rdsps/bin_{bin}.h5`` and, for MCMC bins,
``results/{galaxy}/fits/job_{job}/bin_{bin}.h5`` (HDF5).

Layout (see ``docs/products.md``)::

    /                   attrs: bin_id, method (a name of sedmap.fit.methods.METHODS:
                               'rdsps', 'mcmc', 'map'), flag, chi2, fscale,
                               sedmap_version, config_hash; sfh (JSON: the SFH
                               record of the models, sedmap.sps.sfh.SFH.to_dict);
                               chi2_spec, n_spec (joint photometry + spectrum fits only)
    /percentiles        float64 (n_names, 3) = [p16, p50, p84] of each name; attr
                        levels=[16, 50, 84] (files of sedmap < 0.2: /params/<name>)
    /percentile_names   utf-8 strings (n_names,): fitted parameters and derived quantities
    /samples            float64 (n_samples, n_params)
    /param_names        utf-8 strings (n_params,), the columns of /samples
    /weights            float64 (n_samples,)             optional
    /bestfit            group; attr redshift (the best fit's: the galaxy's, or the
                        sampled one of a free-redshift fit; absent in older
                        files)
    /bestfit/wave       float64 (n_wave,), attr unit='Angstrom' (observed frame)
    /bestfit/spectrum   float32 (n_wave,), attr unit=flux unit   } optional
    /bestfit/photometry float64 (n_band,), attr unit=flux unit   }
    /diagnostics        group; attrs acceptance_fraction, autocorr_time (optional);
                        MCMC: n_steps (the chain), n_tau (steps after burn-in over
                        the longest autocorrelation time), converged (0/1: n_tau
                        reached fit.mcmc.n_tau before fit.mcmc.max_steps)
    /prior_width        float64 (n_names,), aligned with /percentile_names: the 68%
                        width (p84 - p16) of each quantity over the prior's models,
                        NaN where unknown (optional; see sedmap.fit.constraint)

/samples, /weights and /bestfit/wave, /spectrum are stored as float32 with
gzip compression; the percentiles in /percentiles are computed from the
full-precision posterior before it is written. RDSPS stores a resampled
summary of its weighted posterior (sedmap.fit.driver.resample_posterior) and
its effective sample size (Kish's) as the root attribute ``ess``; MCMC the
walkers times the steps after burn-in over the longest autocorrelation time.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .fits_utils import DEFAULT_FSCALE, flux_bunit, flux_scale, rescale
from .h5_utils import (
    create_dataset,
    create_group,
    open_h5,
    read_strings,
    require,
    require_attr,
    string_array,
    write_h5,
)
from .provenance import provenance_attrs

#: what a method's name may be (the fit methods are sedmap.fit.methods.METHODS)
METHOD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PERCENTILES = (16.0, 50.0, 84.0)


def kish_ess(weights):
    """Kish's effective sample size of weighted samples, (sum w)^2 / sum w^2."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / np.sum(w**2))


@dataclass(eq=False)
class FitResult:
    """Posterior of one bin.

    ``percentiles[name]`` is ``[p16, p50, p84]`` for every fitted parameter
    and for derived quantities (which may be absent from ``samples``).
    Best-fit fluxes are in units of ``fscale`` erg/s/cm2/Å; ``bestfit_wave``
    in Å, observed frame. ``flag`` is a bitmask, 0 = good fit.
    """

    bin_id: int
    method: str
    param_names: list
    samples: np.ndarray                         #: (n_samples, n_params)
    percentiles: dict                           #: name -> (3,) [p16, p50, p84]
    flag: int = 0
    chi2: float = float("nan")
    weights: np.ndarray | None = None           #: (n_samples,)
    bestfit_wave: np.ndarray | None = None      #: (n_wave,) Å
    bestfit_spectrum: np.ndarray | None = None  #: (n_wave,)
    bestfit_photometry: np.ndarray | None = None  #: (n_band,)
    bestfit_z: float = float("nan")  #: the best fit's redshift (NaN: not recorded)
    fscale: float = DEFAULT_FSCALE
    acceptance_fraction: float | np.ndarray | None = None
    autocorr_time: np.ndarray | None = None     #: (n_params,)
    chi2_spec: float = float("nan")  #: best fit's spectrum chi^2 (NaN: no spectrum fitted)
    n_spec: int = 0                  #: spectral pixels in the fit (unmasked, unclipped)
    prior_width: dict | None = None  #: name -> 68% width of the quantity under the prior
    #: effective sample size of the posterior the percentiles were computed from, when
    #: the stored samples are a resampled summary of it (RDSPS); NaN = from the samples
    ess: float = float("nan")
    n_steps: int = 0                 #: MCMC: the chain's length, steps (burn-in included)
    n_tau: float = float("nan")      #: MCMC: steps after burn-in / longest autocorr. time
    converged: int = -1              #: MCMC: 1 the chain reached fit.mcmc.n_tau, 0 capped
    #: the models' star-formation history: its record (name, hyper-parameters;
    #: sedmap.sps.sfh.get_sfh rebuilds it), as the model grid holds it
    sfh: dict | None = None
    config_hash: str = "none"
    sedmap_version: str = ""  #: filled in by the reader

    @property
    def effective_sample_size(self):
        """Independent samples the percentiles rest on: Kish's (sum w)^2 / sum w^2 for
        weighted (RDSPS) samples, n_samples / max(autocorr_time) for an MCMC chain;
        NaN when unknown (no samples, or MCMC without autocorrelation times)."""
        if np.isfinite(self.ess):
            return float(self.ess)
        n = np.asarray(self.samples).shape[0]
        if n == 0:
            return float("nan")
        if self.weights is not None:
            return kish_ess(self.weights)
        tau = np.asarray(self.autocorr_time if self.autocorr_time is not None else [], float)
        tau = tau[np.isfinite(tau)]
        return float(n / max(tau.max(), 1.0)) if tau.size else float("nan")


def validate_fit_result(res, path):
    """Check ``res``; InputError naming ``path`` on failure."""
    fix = "rewrite the fit result with sedmap (see docs/products.md)."
    if not isinstance(res.method, str) or not METHOD_NAME.match(res.method):
        raise InputError(f"method {res.method!r} is not a method's name.", path, fix)
    if res.sfh is not None and not (isinstance(res.sfh, dict) and "name" in res.sfh):
        raise InputError(f"sfh {res.sfh!r} is not an SFH record ({{name: ..., ...}}).",
                         path, fix)
    if int(res.bin_id) < 1:
        raise InputError(f"bin_id {res.bin_id} is not a bin id (1..N).", path, fix)
    samples = np.asarray(res.samples)
    if samples.ndim != 2 or samples.shape[1] != len(res.param_names):
        raise InputError(f"samples have shape {samples.shape}, expected (n_samples, "
                         f"{len(res.param_names)}) for {len(res.param_names)} param_names.",
                         path, fix)
    if not np.all(np.isfinite(samples)):
        raise InputError(f"{np.count_nonzero(~np.isfinite(samples))} samples are NaN or "
                         "infinite.", path, "drop non-finite samples before writing.")
    if res.weights is not None:
        w = np.asarray(res.weights)
        if w.shape != samples.shape[:1] or not np.all(np.isfinite(w) & (w >= 0)):
            raise InputError(f"weights must be {samples.shape[0]} finite non-negative values, "
                             f"got shape {w.shape}.", path, fix)
    for name, value in res.percentiles.items():
        if not name or "/" in name:
            raise InputError(f"parameter name {name!r} is empty or contains '/'.", path,
                             "use plain parameter names such as 'log_mass'.")
        value = np.asarray(value, dtype=float)
        if value.shape != (3,):
            raise InputError(f"params/{name} has shape {value.shape}, expected (3,) = "
                             "[p16, p50, p84].", path, fix)
        if np.all(np.isfinite(value)) and not (value[0] <= value[1] <= value[2]):
            raise InputError(f"params/{name} = {value.tolist()} is not ordered p16 <= p50 <= "
                             "p84.", path, fix)
    if (res.bestfit_wave is None) != (res.bestfit_spectrum is None):
        raise InputError("only one of bestfit/wave and bestfit/spectrum is present.", path,
                         "give both or neither.")
    if res.bestfit_wave is not None:
        n_wave = np.shape(res.bestfit_wave)
        if len(n_wave) != 1 or np.shape(res.bestfit_spectrum) != n_wave:
            raise InputError(f"bestfit/spectrum has shape {np.shape(res.bestfit_spectrum)}, "
                             f"bestfit/wave has shape {n_wave}; both must be (n_wave,).",
                             path, fix)


def write_fit_result(res, path):
    """Write ``res`` (a :class:`FitResult`) to ``path`` atomically; return the path."""
    validate_fit_result(res, path)
    bunit = flux_bunit(res.fscale)
    with write_h5(path) as f:
        f.attrs["bin_id"] = int(res.bin_id)
        f.attrs["method"] = str(res.method)
        f.attrs["flag"] = int(res.flag)
        f.attrs["chi2"] = float(res.chi2)
        f.attrs["fscale"] = float(res.fscale)
        if np.isfinite(res.ess):
            f.attrs["ess"] = float(res.ess)
        if res.sfh is not None:
            f.attrs["sfh"] = json.dumps(res.sfh, sort_keys=True)
        if res.n_spec:
            f.attrs["chi2_spec"] = float(res.chi2_spec)
            f.attrs["n_spec"] = int(res.n_spec)
        provenance_attrs(f.attrs, res.config_hash)
        names = list(res.percentiles)
        table = np.asarray([np.asarray(res.percentiles[n], dtype=np.float64) for n in names]
                           ).reshape(len(names), 3)
        create_dataset(f, "percentiles", table).attrs["levels"] = np.array(PERCENTILES)
        create_dataset(f, "percentile_names", string_array(names))
        create_dataset(f, "samples", np.asarray(res.samples, dtype=np.float32),
                       **_pack(np.shape(res.samples)))
        create_dataset(f, "param_names", string_array(res.param_names))
        if res.weights is not None:
            create_dataset(f, "weights", np.asarray(res.weights, dtype=np.float32),
                           **_pack(np.shape(res.weights)))
        if res.bestfit_wave is not None or res.bestfit_photometry is not None:
            best = create_group(f, "bestfit")
            if np.isfinite(res.bestfit_z):
                best.attrs["redshift"] = float(res.bestfit_z)
            if res.bestfit_wave is not None:
                create_dataset(best, "wave", np.asarray(res.bestfit_wave, dtype=np.float32),
                               **_pack(np.shape(res.bestfit_wave))).attrs["unit"] = "Angstrom"
                create_dataset(best, "spectrum", np.asarray(res.bestfit_spectrum,
                                                            dtype=np.float32),
                               **_pack(np.shape(res.bestfit_spectrum))).attrs["unit"] = bunit
            if res.bestfit_photometry is not None:
                phot = np.asarray(res.bestfit_photometry, dtype=np.float64)
                create_dataset(best, "photometry", phot).attrs["unit"] = bunit
        diag = create_group(f, "diagnostics")
        if res.acceptance_fraction is not None:
            diag.attrs["acceptance_fraction"] = np.asarray(res.acceptance_fraction, dtype=float)
        if res.autocorr_time is not None:
            diag.attrs["autocorr_time"] = np.asarray(res.autocorr_time, dtype=float)
        if res.converged >= 0:
            diag.attrs["n_steps"] = int(res.n_steps)
            diag.attrs["n_tau"] = float(res.n_tau)
            diag.attrs["converged"] = int(res.converged)
        if res.prior_width:
            create_dataset(f, "prior_width", np.array(
                [float(res.prior_width.get(n, np.nan)) for n in names], dtype=np.float64))
    return Path(path)


def _pack(shape):
    """Compression settings of a sample array (none for an empty one)."""
    return {"compression": "gzip", "compression_opts": 4, "shuffle": True} if np.prod(shape) \
        else {}


def _flux_dataset(best, name, path, fscale):
    dset = require(best, name, path)
    scale = flux_scale(dset.attrs.get("unit"), path, f"bestfit/{name}")
    return rescale(dset[()], scale, fscale)


def read_fit_result(path):
    """Read and validate a per-bin fit result."""
    with open_h5(path) as f:
        attrs = {k: require_attr(f, k, path) for k in
                 ("bin_id", "method", "flag", "chi2", "sedmap_version", "config_hash")}
        fscale = float(f.attrs.get("fscale", DEFAULT_FSCALE))
        if "params" in f and "percentiles" not in f:  # the layout before sedmap 0.2
            params = f["params"]
            percentiles = {name: np.array(params[name][()], dtype=float) for name in params}
        else:
            table = np.asarray(require(f, "percentiles", path)[()], dtype=float)
            names = read_strings(require(f, "percentile_names", path))
            if table.shape != (len(names), 3):
                raise InputError(f"percentiles have shape {table.shape}, expected "
                                 f"({len(names)}, 3) for {len(names)} percentile_names.", path,
                                 "rewrite the fit result with sedmap (see docs/products.md).")
            percentiles = {n: table[i] for i, n in enumerate(names)}
        kwargs = {}
        if "ess" in f.attrs:
            kwargs["ess"] = float(f.attrs["ess"])
        if "sfh" in f.attrs:
            try:
                kwargs["sfh"] = json.loads(f.attrs["sfh"])
            except json.JSONDecodeError as exc:
                raise InputError(f"the sfh attribute is not JSON ({exc})", path,
                                 "rewrite the fit result with sedmap") from None
        if "n_spec" in f.attrs:
            kwargs.update(chi2_spec=float(f.attrs["chi2_spec"]), n_spec=int(f.attrs["n_spec"]))
        if "weights" in f:
            kwargs["weights"] = np.asarray(f["weights"][()], dtype=np.float64)
        if "bestfit" in f:
            best = f["bestfit"]
            if "redshift" in best.attrs:
                kwargs["bestfit_z"] = float(best.attrs["redshift"])
            if "wave" in best or "spectrum" in best:
                kwargs["bestfit_wave"] = require(best, "wave", path)[()]
                kwargs["bestfit_spectrum"] = _flux_dataset(best, "spectrum", path, fscale)
            if "photometry" in best:
                kwargs["bestfit_photometry"] = _flux_dataset(best, "photometry", path, fscale)
        if "prior_width" in f:
            widths = np.asarray(f["prior_width"][()], dtype=float)
            kwargs["prior_width"] = {n: float(w) for n, w in zip(percentiles, widths)
                                     if np.isfinite(w)}
        diag = f["diagnostics"].attrs if "diagnostics" in f else {}
        for key in ("acceptance_fraction", "autocorr_time"):
            if key in diag:
                value = np.asarray(diag[key])
                kwargs[key] = value.item() if value.ndim == 0 else value
        if "converged" in diag:
            kwargs.update(n_steps=int(diag["n_steps"]), n_tau=float(diag["n_tau"]),
                          converged=int(diag["converged"]))
        res = FitResult(
            bin_id=int(attrs["bin_id"]), method=str(attrs["method"]),
            param_names=read_strings(require(f, "param_names", path)),
            samples=np.asarray(require(f, "samples", path)[()], dtype=np.float64),
            percentiles=percentiles, flag=int(attrs["flag"]), chi2=float(attrs["chi2"]),
            fscale=fscale, config_hash=str(attrs["config_hash"]),
            sedmap_version=str(attrs["sedmap_version"]), **kwargs,
        )
    validate_fit_result(res, path)
    return res
