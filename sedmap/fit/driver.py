"""Glue between the products (bin map, model grid) and the fitting algorithms."""

import logging
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from ..constants import FLAG_BAD_SED
from ..errors import InputError
from ..filters import filter_matrix
from ..io import FitResult, read_fit_result, read_ssp_library, write_fit_result
from ..io.fitresult import kish_ess
from ..io.jsonfile import read_json, write_json
from ..io.paths import bin_file
from ..models import draw_grid, model_from_config, mpi_comm
from ..priors import CORRELATION, Prior, build_priors, correlation_from, param_ranges
from ..sps.cosmology import get_cosmology
from ..sps.engine import observed_factor
from .constraint import bin_prior_widths, prior_widths
from .mcmc import PhotometryPosterior, initial_walkers, mass_prior_from, run_mcmc_stacked
from .population import moved_priors, population_estimate
from .rdsps import fit_rdsps

log = logging.getLogger(__name__)


def photometry_response(grid, filters, z):
    """(n_band, n_wave) matrix taking the grid's rest-frame spectra (Lsun/AA per Msun
    formed) to band-averaged observed f_lambda at redshift z (erg/s/cm^2/AA)."""
    mc = grid.model_config
    cosmo = get_cosmology(**(mc["cosmology"] or {}))
    wave_obs, factor = observed_factor(grid.wave, z, cosmo, mc["igm"])
    return filter_matrix(list(filters), wave_obs) * factor[None, :]


def grid_photometry(grid, filters, z):
    """Photometry of every grid model at redshift z, erg/s/cm^2/AA per Msun formed.

    Parameters
    ----------
    grid : sedmap.io.ModelGrid
    filters : list of str
    z : float

    Returns
    -------
    ndarray (n_model, n_band), float64
    """
    resp = photometry_response(grid, filters, z)
    out = np.empty((grid.n_model, len(filters)))
    step = 20000
    for s in range(0, grid.n_model, step):  # chunks: the spectra may stay on disk
        out[s:s + step] = grid.spectra_rows(slice(s, s + step)) @ resp.T
    return out


def effective_priors(grid, priors=None):
    """The fit's prior config: ``fit.priors`` over the grid's ``models.draw`` (a
    parameter drawn from a prior has that prior unless ``fit.priors`` sets another;
    the rest are uniform within the grid's ranges)."""
    return {**dict(grid.model_config["draw"] or {}), **dict(priors or {})}


def grid_log_prior(grid, priors=None):
    """Log importance weight of every grid model, (n_model,), or None (all equal).

    ``log p(theta) - log q(theta)``: the fit's prior (:func:`effective_priors`)
    over the density the grid was drawn from (uniform within the ranges, or the
    ``models.draw`` prior), up to a constant. Joint-with-mass priors need the
    mass and act in MCMC only.
    """
    draw = dict(grid.model_config["draw"] or {})
    priors = effective_priors(grid, priors)
    if not priors:
        return None
    ranges = grid_ranges(grid)
    pri = build_priors(grid.param_names, ranges, priors)
    drawn = build_priors(grid.param_names, ranges, draw)
    out = np.zeros(grid.n_model)
    for j, (p, q) in enumerate(zip(pri, drawn)):
        if p.form != "joint_mass":
            out += p.logpdf(grid.params[:, j])
        if p.name in draw:
            out -= q.logpdf(grid.params[:, j])
    for cfg, pr, sign in ((priors, pri, 1.0), (draw, drawn, -1.0)):
        corr = correlation_from(pr, cfg)
        if corr is not None:
            out += sign * corr.log_correction(grid.params)
    return out


def band_sys_err(filters, sys_err=0.0):
    """Fractional error added in quadrature to each binned flux, (n_band,):
    ``sqrt(sys_err**2 + calib_err_b**2)``, the bands' zero-point errors
    (``filters.calib_err``, from the survey recipes) and the fit's floor.

    Every fit and every reported chi^2 uses
    ``sigma_b^2 = var_b + (band_sys_err_b * f_b)^2`` (docs/products.md).
    """
    return np.sqrt(float(sys_err) ** 2 + np.asarray(filters.calib_err, dtype=float) ** 2)


def grid_ranges(grid):
    """{name: (lo, hi)} of the grid's parameters (fixed ones get a tiny width)."""
    return param_ranges(grid.model_config["params"], grid.param_names, grid.params)


#: the stored best-fit spectrum of an RDSPS bin spans the bands' pivots times these
BESTFIT_RANGE = (0.5, 2.0)


def _bestfit_spectrum(grid, index, scale, z, fscale, pivots=None):
    """Observed-frame best-fit spectrum (Angstrom, flux in ``fscale``), cut to
    ``BESTFIT_RANGE`` times the bluest and reddest ``pivots`` when given."""
    mc = grid.model_config
    cosmo = get_cosmology(**(mc["cosmology"] or {}))
    wave_obs, factor = observed_factor(grid.wave, z, cosmo, mc["igm"])
    spec = grid.spectra_rows(int(index)) * factor * scale / fscale
    if pivots is not None:
        keep = ((wave_obs >= BESTFIT_RANGE[0] * np.min(pivots))
                & (wave_obs <= BESTFIT_RANGE[1] * np.max(pivots)))
        wave_obs, spec = wave_obs[keep], spec[keep]
    return wave_obs, spec


def run_rdsps(binmap, grid, z, out_dir, *, sys_err=0.0, chi2_percentile=10.0,
              likelihood="gaussian", nu=3.0, priors=None, confhash=None, progress=True,
              comm=None, population=None):
    """Fit every bin with RDSPS and write ``out_dir/bin_{k}.h5`` for k = 1..N.

    Parameters
    ----------
    binmap : sedmap.io.BinMap
    grid : sedmap.io.ModelGrid
    z : float
    population : dict, optional
        The ``fit.population_prior`` config. When enabled, the centres (and,
        with ``widths``, the widths; with ``covariance``, the Gaussian priors'
        correlations) of the Gaussian and Student-t priors are
        estimated from the first fits of all the bins the binning did not flag
        (:func:`sedmap.fit.population.population_estimate`), every bin is fitted
        again with the moved priors (with ``regrid``, against a grid drawn from
        them, :func:`population_grid`), and ``out_dir/population_prior.json``
        records them (the MCMC fits read it).
    comm : mpi4py communicator, optional
        Defaults to COMM_WORLD under mpiexec/srun with more than one rank. Rank r
        fits and writes bins r+1, r+1+size, ...; every bin's file is the same as a
        serial run's (each bin's fit depends on that bin only).

    Returns
    -------
    list of Path: every bin's file (all ranks return the full list).
    """
    comm = mpi_comm(comm)
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    filters = list(binmap.filters.name)
    phot = grid_photometry(grid, filters, z) / binmap.fscale
    flux = np.array(binmap.flux, dtype=float)
    flux[(np.asarray(binmap.flag) & FLAG_BAD_SED) > 0] = np.nan  # skipped, stays flagged
    mine = np.arange(rank, flux.shape[0], size)
    sys_b = band_sys_err(binmap.filters, sys_err)
    fvar = np.asarray(binmap.flux_var, dtype=float)

    def fit(grid, phot, log_prior):
        return fit_rdsps(flux[mine], fvar[mine], phot, grid.params,
                         grid.param_names, grid.derived, sys_err=sys_b,
                         chi2_percentile=chi2_percentile, likelihood=likelihood, nu=nu,
                         log_prior=log_prior, progress=progress and rank == 0)

    log_prior = grid_log_prior(grid, priors)
    # the configured prior's widths, for the constraint maps (sedmap.fit.constraint)
    widths = prior_widths(grid.params, grid.param_names, grid.derived, phot, log_prior)
    res = fit(grid, phot, log_prior)
    out_dir = Path(out_dir)
    population = dict(population or {"enabled": False})  # None: no population prior
    if population["enabled"]:
        moved = _population_priors(grid, priors, res, mine, np.asarray(binmap.flag), comm,
                                   population)
        if moved["priors"]:  # nothing to move (no Gaussian/Student-t prior): no refit
            fit_priors = {**dict(priors or {}), **moved["priors"]}
            if population["regrid"]:
                grid = population_grid(grid, fit_priors, filters, z,
                                       n_models=population["regrid_models"],
                                       progress=progress,
                                       comm=comm)
                phot = grid.photometry / binmap.fscale
            res = fit(grid, phot, grid_log_prior(grid, fit_priors))
        if rank == 0:
            write_json(moved, out_dir / POPULATION_FILE, indent=1)
    for k, r in zip(mine + 1, res):
        k = int(k)
        path = bin_file(out_dir, k)
        if r["flag"]:
            fr = FitResult(bin_id=k, method="rdsps", param_names=[], samples=np.zeros((0, 0)),
                           percentiles={}, flag=int(r["flag"]), fscale=binmap.fscale,
                           config_hash=confhash or "none", sfh=grid.sfh)
        else:
            wave, spec = _bestfit_spectrum(grid, r["best_index"], r["best_scale"], z,
                                           binmap.fscale, binmap.filters.pivot_aa)
            kept, kept_w = resample_posterior(r["samples"], r["weights"])
            fr = FitResult(bin_id=k, method="rdsps", param_names=r["names"],
                           samples=kept, weights=kept_w, ess=kish_ess(r["weights"]),
                           percentiles={n: r["percentiles"][:, i]
                                        for i, n in enumerate(r["names"])},
                           chi2=r["chi2_min"], bestfit_wave=wave, bestfit_spectrum=spec,
                           bestfit_z=float(z),
                           bestfit_photometry=phot[r["best_index"]] * r["best_scale"],
                           fscale=binmap.fscale, config_hash=confhash or "none",
                           prior_width=bin_prior_widths(*widths, flux[k - 1],
                                                        fvar[k - 1]), sfh=grid.sfh)
        write_fit_result(fr, path)
    if comm is not None:
        comm.Barrier()  # every rank's files are in place
    return [bin_file(out_dir, k) for k in range(1, flux.shape[0] + 1)]


#: posterior draws an RDSPS result stores (sedmap.fit.driver.resample_posterior)
STORED_DRAWS = 200


def resample_posterior(samples, weights, n=STORED_DRAWS):
    """A compact summary of a weighted posterior: ``n`` systematic draws (the weighted
    CDF at (i + 1/2)/n), stored as the distinct samples drawn with their counts / n
    as weights. Deterministic (no random offset); the samples keep their order.

    Returns
    -------
    samples : ndarray (k, n_param), k <= n
    weights : ndarray (k,), summing to 1
    """
    w = np.asarray(weights, float)
    c = np.cumsum(w / w.sum())
    idx = np.minimum(np.searchsorted(c, (np.arange(n) + 0.5) / n), w.size - 1)
    uniq, counts = np.unique(idx, return_counts=True)
    return np.asarray(samples)[uniq], counts / float(n)


#: fewest unflagged bins the population prior is estimated from; below it the fits
#: keep the configured priors (with a warning, recorded in population_prior.json)
MIN_POPULATION_BINS = 10

#: file, in the RDSPS directory, of the population prior (``fit.population_prior``)
POPULATION_FILE = "population_prior.json"


def population_grid(grid, priors, filters, z, *, n_models=None, progress=False, comm=None):
    """A grid like ``grid`` (same model and ranges; ``n_models`` models, default as
    many as ``grid``) drawn from the fit's ``priors`` instead of the grid's
    ``models.draw``, held as its photometry in ``filters`` at z
    (:func:`sedmap.models.draw_grid`). Seeded with the grid's ``seed`` + 1, so a
    config gives the same models on every rank and run; under MPI (``comm``) the
    ranks share the work."""
    mc = dict(grid.model_config)
    ranges = grid_ranges(grid)
    fixed = {n for n, v in (mc["params"] or {}).items() if np.isscalar(v)}
    eff = effective_priors(grid, priors)
    draw = {n: dict(p) for n, p in eff.items()
            if n in ranges and n not in fixed and p.get("form") != "joint_mass"}
    if CORRELATION in eff:
        draw[CORRELATION] = eff[CORRELATION]
    mc.update(draw=draw, seed=int(mc["seed"]) + 1,
              n_models=int(n_models or grid.n_model))
    log.info("population grid: %d models drawn from the population priors", mc["n_models"])
    return draw_grid(mc, photometry_response(grid, filters, z), progress=progress, comm=comm)


def _population_priors(grid, priors, res, mine, bin_flags, comm, population):
    """The ``fit.priors``-style dict of the moved priors and the estimate's record."""
    n = len(grid.param_names)
    eff = effective_priors(grid, priors)
    if CORRELATION in eff:
        raise InputError("the priors are correlated already; the population prior estimates "
                         "the correlations itself", path="fit.priors.correlation",
                         fix="remove fit.priors.correlation (or models.draw.correlation), or "
                             "disable fit.population_prior")
    pri = build_priors(grid.param_names, grid_ranges(grid), eff)
    post = [(int(k), r["samples"][:, :n], r["weights"]) for k, r in zip(mine, res)
            if not r["flag"] and bin_flags[k] == 0]
    if comm is not None:  # every rank gets every bin, in bin order (the serial sums)
        post = sorted((p for part in comm.allgather(post) for p in part), key=lambda p: p[0])
    if len(post) < MIN_POPULATION_BINS:  # too few bins to learn a population from
        why = (f"the population prior needs at least {MIN_POPULATION_BINS} fitted, unflagged "
               f"bins; this galaxy has {len(post)}: the configured priors are kept")
        log.warning(why)
        return {"priors": {}, "n_bins": len(post), "skipped": why}
    opts = {"max_shift": float(population["max_shift"]),
            "widths": bool(population["widths"]),
            "min_width": float(population["min_width"]),
            "covariance": bool(population["covariance"]),
            "max_iter": int(population["max_iter"])}
    centres, sigmas, n_iter, corr = population_estimate(
        [p[1] for p in post], [p[2] for p in post], pri, grid=grid.params,
        grid_log_weight=grid_log_prior(grid, priors), **opts)
    moved = moved_priors(pri, centres, sigmas)
    log.info("population prior from %d bins (%d iterations): %s", len(post), n_iter,
             {k: (round(v["mu"], 3), round(v["sigma"], 3)) for k, v in moved.items()})
    if corr is not None:
        moved[CORRELATION] = {"names": corr["names"], "matrix": corr["matrix"].tolist()}
        log.info("population correlations of %s:\n%s", corr["names"],
                 np.array2string(corr["matrix"], precision=2))
    return {"priors": moved, "n_bins": len(post), "n_iter": int(n_iter), **opts,
            "regrid": bool(population["regrid"]),
            "initial": {p.name: {"mu": float(p.kw["mu"]), "sigma": float(p.kw["sigma"])}
                        for p in pri if p.name in moved}}


def read_population_priors(path):
    """``fit.priors``-style dict of the moved priors in a ``population_prior.json``."""
    try:
        return dict(read_json(path, ("priors",))["priors"])
    except InputError as err:
        raise InputError(f"population prior file: {err.problem}", path=err.path,
                         fix="rerun the rdsps rule with fit.population_prior.enabled") from None


def spectrum_model_config(model_config, wave_obs, z, R):
    """The ``models`` config with a spectral segment of resolving power ``R`` over
    observed wavelengths ``wave_obs`` (Angstrom) at redshift ``z`` (50 AA margins)."""
    import copy

    mc = copy.deepcopy(dict(model_config))
    wl = mc.setdefault("wavelength", {})
    wl.update(spec_min_aa=float(np.min(wave_obs)) / (1 + z) - 50.0,
              spec_max_aa=float(np.max(wave_obs)) / (1 + z) + 50.0, spec_R=float(R))
    return mc


def bin_spectrum(binmap, k):
    """(wave, flux, var) of bin index ``k`` (0-based), fluxes in erg/s/cm^2/AA, or None
    when the bin map has no spectra or this bin's is all NaN (outside the cube)."""
    if binmap.bin_spec is None:
        return None
    flux = np.asarray(binmap.bin_spec[k], float) * binmap.fscale
    var = np.asarray(binmap.bin_spec_var[k], float) * binmap.fscale**2
    if not np.any(np.isfinite(flux) & (var > 0)):
        return None
    return np.asarray(binmap.wave, float), flux, var


def fit_bin_mcmc(bin_id, binmap, grid, rdsps_path, z, out_path, *, nwalkers=100, nsteps=600,
                 burn=200, thin=1, seed=42, moves="de", n_tau=50.0, max_steps=None,
                 sys_err=0.0, likelihood="gaussian", nu=3.0,
                 priors=None, confhash=None, model=None, progress=False, spectrum=None,
                 free_redshift=None, population_prior=None):
    """MCMC fit of one bin, started from its RDSPS result; writes a FitResult:
    :func:`fit_bins_mcmc` with one bin (the arguments are described there)."""
    return fit_bins_mcmc([bin_id], binmap, grid, [rdsps_path], z, [out_path],
                         nwalkers=nwalkers, nsteps=nsteps, burn=burn, thin=thin, seed=seed,
                         moves=moves, n_tau=n_tau, max_steps=max_steps, sys_err=sys_err,
                         likelihood=likelihood, nu=nu, priors=priors, confhash=confhash,
                         model=model, progress=progress, spectrum=spectrum,
                         free_redshift=free_redshift, population_prior=population_prior)[0]


def fit_bins_mcmc(bin_ids, binmap, grid, rdsps_paths, z, out_paths, *, nwalkers=100,
                  nsteps=600, burn=200, thin=1, seed=42, moves="de", n_tau=50.0,
                  max_steps=None, sys_err=0.0, likelihood="gaussian", nu=3.0, priors=None,
                  confhash=None, model=None, progress=False, spectrum=None,
                  free_redshift=None, population_prior=None):
    """MCMC fits of several bins in one stacked ensemble, each started from its RDSPS
    result; writes one FitResult per bin (``out_paths``).

    The bins' walkers share every call of the SPS engine and are moved by walkers
    of their own bin only (:func:`sedmap.fit.mcmc.run_mcmc_stacked`); bins with
    and without a spectrum use different models and run as two ensembles. Each
    chain (``nwalkers`` per bin, ``moves``) runs ``nsteps`` steps, ``burn`` of
    them burn-in, and grows until every bin's is ``n_tau`` autocorrelation times
    long after burn-in, or ``max_steps`` long. The posterior's settings
    (``sys_err`` ... ``population_prior``) are :func:`prepare_bins`'.

    Returns
    -------
    list of pathlib.Path, ``out_paths``.
    """
    models, jobs = prepare_bins(bin_ids, binmap, grid, rdsps_paths, z, out_paths,
                                method="mcmc", nwalkers=nwalkers, seed=seed, sys_err=sys_err,
                                likelihood=likelihood, nu=nu, priors=priors,
                                confhash=confhash, model=model, spectrum=spectrum,
                                free_redshift=free_redshift, population_prior=population_prior)
    for key, members in jobs.items():
        ids = [int(bin_ids[i]) for i, _ in members]
        rng = np.random.default_rng([int(seed), *ids])
        # one BLAS thread: a half-step's products (a few hundred models) are too small
        # for a second thread to save the CPU time it spins (bench_fit: 1.9x the CPU)
        with threadpool_limits(limits=1, user_api="blas"):
            outs = run_mcmc_stacked([m["post"] for _, m in members],
                                    [m["p0"] for _, m in members], nsteps, burn,
                                    seed=int(rng.integers(2**31)), thin=thin,
                                    progress=progress, moves=moves, n_tau=n_tau,
                                    max_steps=max_steps)
        for (i, m), out in zip(members, outs):
            write_sampled_result(bin_ids[i], m, out, models[key], binmap, confhash,
                                 out_paths[i], method="mcmc")
    return [Path(p) for p in out_paths]


def prepare_bins(bin_ids, binmap, grid, rdsps_paths, z, out_paths, *, method, nwalkers, seed,
                 sys_err=0.0, likelihood="gaussian", nu=3.0, priors=None, confhash=None,
                 model=None, spectrum=None, free_redshift=None, population_prior=None):
    """The posteriors of bins refitted from their RDSPS results (``rdsps_paths``), and
    ``nwalkers`` starting points each near its best RDSPS models; a bin RDSPS
    flagged gets its flagged FitResult (``method``) written to its ``out_paths``
    entry at once.

    ``spectrum``: the ``fit.spectrum`` config. When it is enabled and a bin has a
    spectrum in the bin map, its fit is the joint one of the photometry and the
    spectrum (:meth:`sedmap.fit.mcmc.PhotometryPosterior.add_spectrum`), with
    model spectra of resolving power ``spectrum['R']`` over its range (``model``,
    when given, must have them).

    ``free_redshift``: the ``fit.free_redshift`` config. When it is enabled the
    redshift is sampled too, with a Gaussian prior of ``sigma`` around ``z``
    truncated to ±``max_shift`` (and z >= 0); the samples get a ``redshift``
    column, and the distance's uncertainty reaches the masses.

    ``population_prior``: path of RDSPS's ``population_prior.json``
    (``fit.population_prior``); its moved priors replace those of ``priors``.

    Returns
    -------
    models : dict, model key ('phot', 'spec') -> SPSModel
    jobs : dict, model key -> list of (index in ``bin_ids``, prepared bin: dict with
        ``post`` (PhotometryPosterior), ``p0`` (nwalkers, ndim), ``rd``, ``sys_b``,
        ``n_spec``, ``k``)
    """
    spectrum = dict(spectrum or {"enabled": False})  # None: photometry only
    if population_prior is not None:
        priors = {**dict(priors or {}), **read_population_priors(population_prior)}
    eff = effective_priors(grid, priors)
    ranges = grid_ranges(grid)
    stored = None
    models = {}
    jobs = {}   # model key -> [(index in bin_ids, prepared bin)]
    for i, (bin_id, rd_path) in enumerate(zip(bin_ids, rdsps_paths)):
        rd = read_fit_result(rd_path)
        k = int(bin_id) - 1
        if rd.flag:
            fr = FitResult(bin_id=bin_id, method=method, param_names=[],
                           samples=np.zeros((0, 0)), percentiles={}, flag=rd.flag,
                           fscale=binmap.fscale, config_hash=confhash or "none",
                           sfh=grid.sfh)
            write_fit_result(fr, out_paths[i])
            continue
        spec = bin_spectrum(binmap, k) if spectrum["enabled"] else None
        key = "spec" if spec is not None else "phot"
        if key not in models:
            if model is not None:
                models[key] = model
            else:
                mc = grid.model_config
                if spec is not None:
                    mc = spectrum_model_config(mc, spec[0], z, spectrum["R"])
                if stored is None and grid.path:
                    stored = read_ssp_library(grid.path)
                models[key] = model_from_config(mc, library=stored)
        jobs.setdefault(key, []).append(
            (i, _prepare_bin(bin_id, rd, binmap, models[key], z, ranges, eff, spec, spectrum,
                             sys_err, likelihood, nu, free_redshift, seed, nwalkers)))
    return models, jobs


def _prepare_bin(bin_id, rd, binmap, model, z, ranges, eff, spec, spectrum, sys_err,
                 likelihood, nu, free_redshift, seed, nwalkers):
    """One bin's posterior and starting walkers."""
    k = int(bin_id) - 1
    pri = build_priors(model.param_names, ranges, eff)
    cols = [rd.param_names.index(n) for n in model.param_names]
    lmf = rd.samples[:, rd.param_names.index("log_mass_formed")]
    mass_prior = mass_prior_from(float(rd.percentiles["log_mass_formed"][1]))
    sys_b = band_sys_err(binmap.filters, sys_err)
    post = PhotometryPosterior(model, list(binmap.filters.name), z,
                               binmap.flux[k] * binmap.fscale,
                               binmap.flux_var[k] * binmap.fscale**2, pri, mass_prior,
                               sys_err=sys_b, likelihood=likelihood, nu=nu,
                               correlation=correlation_from(pri, eff))
    fz = dict(free_redshift or {"enabled": False})  # None: z fixed
    if fz["enabled"]:
        shift = float(fz["max_shift"])
        post.free_redshift(Prior("redshift", max(0.0, z - shift), z + shift, form="gaussian",
                                 mu=float(z), sigma=float(fz["sigma"])))
    rng = np.random.default_rng([seed, int(bin_id)])
    p0 = initial_walkers(post, rd.samples[:, cols], rd.weights, lmf, nwalkers, rng)
    n_spec = 0
    if spec is not None:
        best = int(np.argmax(rd.weights))
        ref = np.append(rd.samples[best, cols][post.free], lmf[best])
        n_spec = post.add_spectrum(*spec, reference=ref, order=spectrum["order"],
                                   del_wave=spectrum["del_wave"],
                                   clip=spectrum["clip"])
        log.info("bin %d: joint fit with %d spectral pixels", bin_id, n_spec)
    return {"post": post, "p0": p0, "rd": rd, "sys_b": sys_b, "n_spec": n_spec, "k": k}


def write_sampled_result(bin_id, m, out, model, binmap, confhash, out_path, method):
    """The FitResult (``method``) of one bin's posterior summary ``out`` (as
    :func:`sedmap.fit.mcmc.summarise_chain` returns it; with ``weights`` for weighted
    draws; ``percentiles`` a (3, n) array aligned with ``names`` or a dict) and its
    prepared bin ``m`` (:func:`prepare_bins`)."""
    post, rd, sys_b, k, n_spec = m["post"], m["rd"], m["sys_b"], m["k"], m["n_spec"]
    theta = out["best_theta"]  # full: every model parameter, then log_mass_formed
    spec = model.spectra(theta[None, :-1]).astype(float)
    wave_obs, flam = model.observed(spec, out["best_z"])
    # the chi^2 of the likelihood's variance, as RDSPS reports it (band_sys_err)
    f_obs = binmap.flux[k] * binmap.fscale
    sig2 = binmap.flux_var[k] * binmap.fscale**2 + (sys_b * f_obs) ** 2
    chi2 = float(np.sum((f_obs - out["best_photometry"]) ** 2 / sig2))
    pct = out["percentiles"]  # (3, n) aligned with the names, or a dict already
    pct = pct if isinstance(pct, dict) else {n: pct[:, i] for i, n in enumerate(out["names"])}
    fr = FitResult(bin_id=bin_id, method=method, param_names=out["names"],
                   samples=out["samples"], weights=out.get("weights"), percentiles=pct,
                   chi2=chi2, bestfit_wave=wave_obs, bestfit_z=float(out["best_z"]),
                   bestfit_spectrum=flam[0] * 10 ** theta[-1] / binmap.fscale,
                   bestfit_photometry=out["best_photometry"] / binmap.fscale,
                   fscale=binmap.fscale, acceptance_fraction=out["acceptance_fraction"],
                   autocorr_time=out["autocorr_time"], config_hash=confhash or "none",
                   ess=out["ess"], n_steps=out["n_steps"], n_tau=out["n_tau"],
                   converged=int(out["converged"]),
                   chi2_spec=float(post.spectrum_chi2(theta)[0]) if n_spec else float("nan"),
                   n_spec=n_spec, prior_width=rd.prior_width, sfh=model.sfh.to_dict())
    return write_fit_result(fr, out_path)
