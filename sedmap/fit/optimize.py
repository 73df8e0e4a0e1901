"""Maximum-a-posteriori fits started from RDSPS: best fits for quick looks.

Each bin's posterior (the same :class:`sedmap.fit.mcmc.PhotometryPosterior` the MCMC
samples: priors, likelihood, spectrum and free redshift alike) is maximised with
L-BFGS-B from the ``starts`` best RDSPS models, inside the prior's box. The
gradient is a central difference, its ``2 ndim`` models computed in one call of the
SPS engine.

The result keeps the RDSPS posterior for the percentiles (the grid's Bayesian
estimate, as CIGALE pairs its "bayes" values with its best model) and replaces the
best fit by the maximum: its parameters, photometry, spectrum and chi^2. On a
sharp posterior the continuous maximum fits better than the nearest grid model;
the uncertainties need the MCMC (``fit.method: mcmc``). A Laplace approximation
was tried for them and dropped: on 8-12 parameters with maxima on the prior's
edges and curved ridges, its importance weights collapsed (ESS ~1 of 1000 draws).
"""

import logging

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from ..progress import progress as progress_bar
from .driver import prepare_bins, write_sampled_result

log = logging.getLogger(__name__)

#: central-difference step of the gradient, a fraction of each coordinate's prior range
GRAD_STEP = 1e-3


def _bounds(post):
    """(lo, hi) (ndim,) of the sampled coordinates: the free parameters' prior boxes,
    the redshift's when free, log_mass_formed's."""
    pri = [post.priors[i] for i in post.free]
    if post.z_prior is not None:
        pri = pri + [post.z_prior]
    pri = pri + [post.mass_prior]
    return np.array([p.lo for p in pri]), np.array([p.hi for p in pri])


def maximise(post, starts, max_iter=200):
    """The maximum of ``post`` over its prior box from each row of ``starts``
    (L-BFGS-B; central-difference gradients, each one batched call of the engine).

    Returns
    -------
    x : ndarray (ndim,), the best maximum found (sampled coordinates)
    logp : float, the log posterior there
    n_eval : int, models computed
    """
    lo, hi = _bounds(post)
    h = GRAD_STEP * (hi - lo)
    n_eval = 0

    def fun(x):
        nonlocal n_eval
        pts = np.clip(np.vstack([x, x + np.diag(h), x - np.diag(h)]), lo, hi)
        lp = post.evaluate(pts)[0]
        n_eval += len(pts)
        if not np.isfinite(lp[0]):
            return 1e30, np.zeros_like(x)
        d = x.size
        up, down = lp[1:1 + d], lp[1 + d:]
        step = pts[1:1 + d].diagonal() - pts[1 + d:].diagonal()
        ok = np.isfinite(up) & np.isfinite(down) & (step > 0)
        grad = np.where(ok, (up - down) / np.where(step > 0, step, 1.0), 0.0)
        return -lp[0], -grad

    best = (None, -np.inf)
    for x0 in np.atleast_2d(starts):
        res = minimize(fun, np.clip(x0, lo, hi), jac=True, method="L-BFGS-B",
                       bounds=list(zip(lo, hi)), options={"maxiter": max_iter})
        if -res.fun > best[1]:
            best = (np.asarray(res.x, float), float(-res.fun))
    return best[0], best[1], n_eval


def fit_map(post, starts, rd):
    """MAP fit of one bin: the maximum of ``post`` from ``starts`` (:func:`maximise`),
    with the RDSPS result ``rd``'s posterior draws and percentiles.

    Returns
    -------
    dict as :func:`sedmap.fit.driver.write_sampled_result` takes it.
    """
    x, lp, n_eval = maximise(post, starts)
    full = post.full(x[None])
    z = post.redshift(x[None]) if post.z_prior is not None else None
    phot = post.photometry(full, z=z)[0][0]
    return {"names": list(rd.param_names), "samples": rd.samples, "weights": rd.weights,
            "percentiles": dict(rd.percentiles), "ess": rd.effective_sample_size,
            "best_theta": full[0], "best_lnp": lp, "best_photometry": phot,
            "best_z": float(post.z if z is None else z[0]), "n_eval": n_eval,
            "acceptance_fraction": None, "autocorr_time": None, "n_steps": 0,
            "n_tau": float("nan"), "converged": -1}


def fit_bins_map(bin_ids, binmap, grid, rdsps_paths, z, out_paths, *, starts=4, seed=42,
                 progress=False, **posterior):
    """MAP fits of several bins (:func:`fit_map`), each started from its ``starts``
    best RDSPS models; writes one FitResult (method ``map``) per bin.

    ``posterior``: the posterior's settings, as :func:`sedmap.fit.driver.prepare_bins`
    takes them (sys_err, likelihood, nu, priors, spectrum, free_redshift,
    population_prior, confhash).
    """
    confhash = posterior.pop("confhash", None)
    models, jobs = prepare_bins(bin_ids, binmap, grid, rdsps_paths, z, out_paths,
                                method="map", nwalkers=starts, seed=seed,
                                confhash=confhash, **posterior)
    todo = [(key, i, m) for key, members in jobs.items() for i, m in members]
    with threadpool_limits(limits=1, user_api="blas"):
        for key, i, m in progress_bar(todo, desc="MAP", unit="bin", disable=not progress):
            out = fit_map(m["post"], m["p0"], m["rd"])
            log.info("bin %d: maximum a posteriori %.2f after %d models", int(bin_ids[i]),
                     out["best_lnp"], out["n_eval"])
            write_sampled_result(bin_ids[i], m, out, models[key], binmap, confhash,
                                 out_paths[i], method="map")
    return out_paths
