"""Fit stage: RDSPS over the model grid (all bins in one job) and per-bin emcee MCMC.

Products: one ``sedmap.io.FitResult`` per bin, ``results/{galaxy}/rdsps/bin_{bin}.h5`` and, for
the MCMC bins, ``results/{galaxy}/fits/job_{job}/bin_{bin}.h5``.
"""

from .driver import fit_bin_mcmc, fit_bins_mcmc, grid_photometry, run_rdsps  # noqa: F401
