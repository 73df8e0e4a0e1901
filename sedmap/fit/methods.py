"""The fit methods: a registry of small objects on one base (as emcee's moves are).

Every bin is fitted by RDSPS first (the grid search, :func:`sedmap.fit.driver.run_rdsps`);
``fit.method`` names the method whose result each bin keeps. A method other than
``rdsps`` refits the bins it chooses (:meth:`FitMethod.bins`), started from their
RDSPS results, in jobs of ``fit.bins_per_job`` bins; its files are
``fits/job_J/bin_K.h5`` with ``FitResult.method`` its name. The workflow, the maps,
the accuracy report and the figures ask this registry, never a method's name.

To add a method: a subclass with ``name``, ``label`` and :meth:`FitMethod.fit`, an
entry in :data:`METHODS`, its name in the schema's ``fit.method`` enum (and its
settings section, ``fit.<name>``), and tests (docs/extending.md).
"""

import abc
from pathlib import Path

import numpy as np

from ..errors import InputError
from .driver import fit_bins_mcmc
from .optimize import fit_bins_map


class FitMethod(abc.ABC):
    """Base of the fit methods.

    Attributes
    ----------
    name : str
        ``fit.method`` and ``FitResult.method``; its settings are ``fit.<name>``.
    label : str
        For figures and reports.
    chains : bool
        Its results carry autocorrelation times and a convergence verdict (MCMC):
        the maps' ``MCMC_TAU``/``MCMC_NTAU`` layers.
    samples_own_posterior : bool
        Its percentiles rest on draws of its own posterior (not the grid's): the
        showcase figures prefer its bins.
    refits : bool
        It refits bins on the continuous posterior (after RDSPS's grid search), so a
        free redshift and the IFS spectra can enter the fit.
    """

    name = ""
    label = ""
    chains = False
    samples_own_posterior = False
    refits = True

    def check(self, cfg, n_free):
        """Refuse settings of its ``fit.<name>`` section that cannot work, before any
        job runs (InputError naming the key): nothing to check by default.

        Parameters
        ----------
        cfg : dict, the validated ``fit`` section
        n_free : int, the free parameters of the fit, the mass included
        """
        return None

    def bins(self, flags, cfg):
        """Bin ids (1-based) this method refits after RDSPS, in order: every bin.

        Parameters
        ----------
        flags : array (n_bin,) of the bin map's flags
        cfg : dict, the validated ``fit`` section
        """
        return list(range(1, np.asarray(flags).size + 1))

    @abc.abstractmethod
    def fit(self, bin_ids, binmap, grid, rdsps_paths, z, out_paths, cfg, *, confhash=None,
            population_prior=None, progress=True):
        """Fit ``bin_ids`` (each started from its RDSPS file, ``rdsps_paths``) and write
        their FitResults to ``out_paths``. ``cfg``: the validated ``fit`` section;
        ``population_prior``: path of RDSPS's population_prior.json, or None."""


def _posterior_settings(cfg, confhash, population_prior):
    """The posterior's settings of a ``fit`` section, as the per-bin fits take them."""
    return {"sys_err": cfg["sys_err"], "likelihood": cfg["likelihood"], "nu": cfg["nu"],
            "priors": cfg["priors"] or None, "spectrum": cfg["spectrum"],
            "free_redshift": cfg["free_redshift"], "population_prior": population_prior,
            "confhash": confhash}


class RDSPS(FitMethod):
    """The grid search alone: every bin keeps its RDSPS result (no refit)."""

    name, label = "rdsps", "RDSPS"
    refits = False

    def bins(self, flags, cfg):
        return []

    def fit(self, bin_ids, binmap, grid, rdsps_paths, z, out_paths, cfg, *, confhash=None,
            population_prior=None, progress=True):
        """Nothing to refit: every bin keeps its RDSPS file."""
        return [Path(p) for p in out_paths]


class MCMC(FitMethod):
    """emcee, started from RDSPS, every bin of a job in one stacked ensemble
    (:func:`sedmap.fit.driver.fit_bins_mcmc`); ``fit.mcmc.subset`` > 0 samples a
    seeded random subset of the unflagged bins (the others keep RDSPS)."""

    name, label = "mcmc", "MCMC"
    chains = samples_own_posterior = True

    def check(self, cfg, n_free):
        """Burn-in shorter than the chains, ``max_steps`` >= ``nsteps``, and at least
        twice as many walkers as free parameters (emcee's stretch move)."""
        m = cfg["mcmc"]
        if m["burn"] >= m["nsteps"]:
            raise InputError(f"{m['burn']} burn-in steps leave none of the {m['nsteps']} "
                             "steps.", path="fit.mcmc.burn",
                             fix="keep fit.mcmc.burn below fit.mcmc.nsteps.")
        if m["max_steps"] < m["nsteps"]:
            raise InputError(f"the longest chain ({m['max_steps']} steps) is shorter than the "
                             f"shortest ({m['nsteps']})", path="fit.mcmc.max_steps",
                             fix="set fit.mcmc.max_steps >= fit.mcmc.nsteps.")
        if m["nwalkers"] < 2 * n_free:
            raise InputError(f"{m['nwalkers']} walkers for {n_free} free parameters (with the "
                             "mass); emcee's stretch move needs at least twice as many.",
                             path="fit.mcmc.nwalkers", fix=f"set it to {2 * n_free} or more.")

    def bins(self, flags, cfg):
        flags = np.asarray(flags)
        k = int(cfg["mcmc"]["subset"])
        if k <= 0:
            return list(range(1, flags.size + 1))
        good = np.flatnonzero(flags == 0) + 1
        if k >= good.size:
            return good.tolist()
        rng = np.random.default_rng(int(cfg["mcmc"]["seed"]))
        return sorted(rng.choice(good, size=k, replace=False).tolist())

    def fit(self, bin_ids, binmap, grid, rdsps_paths, z, out_paths, cfg, *, confhash=None,
            population_prior=None, progress=True):
        m = cfg["mcmc"]
        return fit_bins_mcmc(bin_ids, binmap, grid, rdsps_paths, z, out_paths,
                             nwalkers=m["nwalkers"], nsteps=m["nsteps"], burn=m["burn"],
                             thin=m["thin"], seed=m["seed"], moves=m["moves"],
                             n_tau=m["n_tau"], max_steps=m["max_steps"], progress=progress,
                             **_posterior_settings(cfg, confhash, population_prior))


class MAP(FitMethod):
    """Maximum a posteriori from the best RDSPS models (:mod:`sedmap.fit.optimize`):
    the best fit (parameters, SED, chi^2) of the continuous posterior, for quick
    looks; the percentiles stay RDSPS's. About a second a bin."""

    name, label = "map", "MAP"

    def fit(self, bin_ids, binmap, grid, rdsps_paths, z, out_paths, cfg, *, confhash=None,
            population_prior=None, progress=True):
        m = cfg["map"]
        return fit_bins_map(bin_ids, binmap, grid, rdsps_paths, z, out_paths,
                            starts=m["starts"], seed=m["seed"],
                            progress=progress,
                            **_posterior_settings(cfg, confhash, population_prior))


#: fit.method -> FitMethod
METHODS = {m.name: m for m in (RDSPS(), MCMC(), MAP())}


def get_method(name, path="fit.method"):
    """The :class:`FitMethod` named ``name``; InputError naming ``path`` (a file, or the
    config key) when no method has that name."""
    if name not in METHODS:
        raise InputError(f"no fit method is called {name!r}", path=str(path),
                         fix=f"use one of {', '.join(METHODS)} (results of another sedmap: "
                             "rerun the fit stage)")
    return METHODS[name]


def fit_bins(flags, cfg):
    """Bin ids (1-based) that ``fit.method`` refits after RDSPS (:meth:`FitMethod.bins`;
    none for ``rdsps``). ``flags``: the bin map's; ``cfg``: the validated ``fit`` section."""
    return get_method(cfg["method"]).bins(flags, cfg)


def fit_jobs(flags, cfg, bins=None):
    """``bins`` (default: those of :func:`fit_bins`) in jobs of ``fit.bins_per_job``, in
    order: a list of lists of bin ids (an MCMC job's bins share one stacked ensemble)."""
    bins = fit_bins(flags, cfg) if bins is None else list(bins)
    n = int(cfg["bins_per_job"])
    return [bins[i:i + n] for i in range(0, len(bins), n)]
