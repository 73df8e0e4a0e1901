"""Per-bin MCMC with emcee: all walkers go through the batched SPS engine in one call.

Free parameters: the SPS parameters of the model grid plus ``log_mass_formed``
(log10 of the mass formed, Msun). Walkers start from the best RDSPS models.
"""

import emcee
import numpy as np

from ..errors import InputError
from .likelihood import photometry_loglike
from .priors import Prior
from .rdsps import derived_columns, weighted_percentiles


class PhotometryPosterior:
    """log posterior of (SPS params, log_mass_formed) for one bin's photometry.

    Parameters
    ----------
    model : sedmap.sps.SPSModel
    filters : list of str
    z : float
    flux, var : ndarray (n_band,)
    priors : list of Prior
        One per SPS parameter, in ``model.param_names`` order.
    mass_prior : Prior
        Prior of log_mass_formed.

    Notes
    -----
    The sampled vector ``theta`` holds the free parameters (prior range wider
    than 1e-5) and then log_mass_formed; parameters fixed in the grid are held
    at their value (:meth:`full` puts them back), so they cost the sampler
    nothing.
    """

    def __init__(self, model, filters, z, flux, var, priors, mass_prior, sys_err=0.0,
                 likelihood="gaussian", nu=3.0):
        self.model, self.z = model, float(z)
        self.flux, self.var = np.asarray(flux, float), np.asarray(var, float)
        self.priors, self.mass_prior = priors, mass_prior
        self.sys_err, self.kind, self.nu = sys_err, likelihood, nu
        self.names = list(model.param_names)
        if [p.name for p in priors] != self.names:
            raise InputError("priors do not match the model parameters", path="fit.priors")
        self.matrix = model.filter_matrix(filters, z).astype(float)
        self.wave_obs, self.obs = None, None
        self.free = [i for i, p in enumerate(priors) if p.hi - p.lo > 1e-5]
        self._fixed = np.array([0.5 * (p.lo + p.hi) for p in priors])
        self._joint = [i for i, p in enumerate(priors) if p.form == "joint_mass"]

    @property
    def ndim(self):
        """Number of sampled dimensions: the free parameters and log_mass_formed."""
        return len(self.free) + 1

    def full(self, theta):
        """(n, n_param + 1): ``theta`` (n, ndim) with the fixed parameters put back."""
        theta = np.atleast_2d(theta)
        out = np.tile(np.append(self._fixed, 0.0), (len(theta), 1))
        out[:, self.free] = theta[:, :-1]
        out[:, -1] = theta[:, -1]
        return out

    def photometry(self, full):
        """Model photometry (n, n_band) and derived quantities for full vectors
        (n, n_param + 1), as returned by :meth:`full`."""
        spec, der = self.model.spectra(full[:, :-1], return_derived=True)
        _, flam = self.model.observed(spec, self.z)
        phot = (flam.astype(float) @ self.matrix.T) * 10 ** full[:, -1:]
        return phot, der

    def __call__(self, theta):
        theta = self.full(theta)
        lp = np.zeros(len(theta))
        for i in self.free:
            if self.priors[i].form != "joint_mass":
                lp += self.priors[i].logpdf(theta[:, i])
        lp += self.mass_prior.logpdf(theta[:, -1])
        ok = np.isfinite(lp)
        out = np.full(len(theta), -np.inf)
        if ok.any():
            phot, der = self.photometry(theta[ok])
            if self._joint:
                log_mstar = theta[ok, -1] + np.log10(der["surviving_mass"])
                for i in self._joint:
                    lp[ok] += self.priors[i].logpdf(theta[ok, i], log_mstar=log_mstar)
            out[ok] = lp[ok] + photometry_loglike(self.flux, self.var, phot, self.sys_err,
                                                  self.kind, self.nu)
        return np.where(np.isfinite(out), out, -np.inf)


def initial_walkers(post, rdsps_samples, rdsps_weights, log_mass_formed, nwalkers, rng,
                    jitter=0.01):
    """Starting points near the best RDSPS models, jittered by ``jitter`` of each range.

    ``rdsps_samples`` has every model parameter (``model.param_names`` order);
    the result has the sampled ones (``post.free``) and log_mass_formed.
    """
    order = np.argsort(-rdsps_weights)
    take = order[np.arange(nwalkers) % order.size]
    pri = [post.priors[i] for i in post.free]
    p0 = np.column_stack([rdsps_samples[take][:, post.free], log_mass_formed[take]])
    widths = np.array([p.hi - p.lo for p in pri] + [0.5])
    p0 = p0 + rng.normal(size=p0.shape) * jitter * widths
    lo = np.array([p.lo for p in pri] + [post.mass_prior.lo])
    hi = np.array([p.hi for p in pri] + [post.mass_prior.hi])
    return np.clip(p0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))


def run_mcmc(post, p0, nsteps, burn, seed, thin=1, progress=False):
    """Run emcee (vectorised) and summarise the chain.

    Returns
    -------
    dict with names, samples (flat, post-burn, thinned, incl. derived columns),
    percentiles (3, n), acceptance_fraction, autocorr_time, best (theta, lnp),
    best_photometry.
    """
    nwalkers, ndim = p0.shape
    if burn >= nsteps:
        raise InputError(f"burn-in ({burn}) must be shorter than the chain ({nsteps})",
                         path="fit.mcmc.burn", fix="lower fit.mcmc.burn")
    sampler = emcee.EnsembleSampler(nwalkers, ndim, post, vectorize=True)
    state = emcee.State(p0, random_state=np.random.RandomState(seed).get_state())
    sampler.run_mcmc(state, nsteps, progress=progress)
    chain = sampler.get_chain(discard=burn, thin=thin, flat=True)
    lnp = sampler.get_log_prob(discard=burn, thin=thin, flat=True)
    ok = np.isfinite(lnp)
    chain, lnp = chain[ok], lnp[ok]
    tau = sampler.get_autocorr_time(discard=burn, quiet=True, tol=0)
    chain = post.full(chain)  # the fixed parameters back in, as columns of the samples
    phot, der = post.photometry(chain)
    names = post.names
    dcols = derived_columns(chain[:, :-1], names, der, 10 ** chain[:, -1])
    dcols.pop("log_mass_formed")
    samples = np.column_stack([chain] + [dcols[k] for k in dcols])
    all_names = names + ["log_mass_formed"] + list(dcols)
    finite = np.all(np.isfinite(samples), axis=0)
    samples, all_names = samples[:, finite], [n for n, f in zip(all_names, finite) if f]
    pct = weighted_percentiles(samples, np.ones(len(samples)))
    best = int(np.argmax(lnp))
    return {"names": all_names, "samples": samples, "percentiles": pct,
            "acceptance_fraction": float(np.mean(sampler.acceptance_fraction)),
            "autocorr_time": np.asarray(tau, float), "best_theta": chain[best],
            "best_lnp": float(lnp[best]), "best_photometry": phot[best]}


def mass_prior_from(rdsps_log_mass, width=3.0):
    """A wide uniform prior on log_mass_formed around the RDSPS value (±``width`` dex)."""
    return Prior("log_mass_formed", rdsps_log_mass - width, rdsps_log_mass + width)
