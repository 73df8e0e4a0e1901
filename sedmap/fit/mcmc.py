"""MCMC with emcee: the walkers of every bin of a job go through the batched SPS engine
in one call (a stacked ensemble, :func:`run_mcmc_stacked`), each bin's walkers moved by
walkers of the same bin only.

Free parameters: the SPS parameters of the model grid plus ``log_mass_formed``
(log10 of the mass formed, Msun). Walkers start from the best RDSPS models.
With a spectrum (the bin's IFS spectrum), the likelihood is the joint one of
the photometry and the spectrum (:meth:`PhotometryPosterior.add_spectrum`).
"""

import abc
import logging
import warnings

import emcee
import numpy as np

from ..constants import MAD_TO_SIGMA
from ..errors import InputError
from ..priors import Prior
from ..progress import bar_kwargs
from ..sps.cosmology import luminosity_distance_cm
from ..sps.engine import DERIVED, observed_factor
from ..sps.wavelength import resample
from ..stats import weighted_percentiles
from .likelihood import legendre_normalise, line_mask, photometry_loglike
from .rdsps import derived_columns

log = logging.getLogger(__name__)


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
    correlation : sedmap.priors.Correlation, optional
        Correlations between Gaussian priors (their joint density replaces the
        product of theirs).

    Notes
    -----
    The sampled vector ``theta`` holds the free parameters (prior range wider
    than 1e-5) and then log_mass_formed; parameters fixed in the grid are held
    at their value (:meth:`full` puts them back), so they cost the sampler
    nothing.
    """

    def __init__(self, model, filters, z, flux, var, priors, mass_prior, sys_err=0.0,
                 likelihood="gaussian", nu=3.0, correlation=None):
        self.model, self.z = model, float(z)
        self.correlation = correlation
        self.flux, self.var = np.asarray(flux, float), np.asarray(var, float)
        self.priors, self.mass_prior = priors, mass_prior
        self.sys_err, self.kind, self.nu = sys_err, likelihood, nu
        self.names = list(model.param_names)
        if [p.name for p in priors] != self.names:
            raise InputError("priors do not match the model parameters", path="fit.priors")
        self.matrix = model.filter_matrix(filters, z).astype(float)
        # rest-frame L_lambda -> band fluxes at z in one product (filters, distance, IGM)
        self._resp = self.matrix * observed_factor(model.wave, self.z, model.cosmo,
                                                   model.igm)[1]
        self.wave_obs, self.obs = None, None
        self.free = [i for i, p in enumerate(priors) if p.hi - p.lo > 1e-5]
        self._fixed = np.array([0.5 * (p.lo + p.hi) for p in priors])
        self._joint = [i for i, p in enumerate(priors) if p.form == "joint_mass"]
        self.filters = list(filters)
        self.spec = None
        self.z_prior = None

    def free_redshift(self, prior, n_grid=256):
        """Sample the redshift too, with ``prior`` (a :class:`Prior` named
        ``redshift``); it goes into ``theta`` just before log_mass_formed.

        The photometry at any z in the prior's range is interpolated linearly
        between responses precomputed on ``n_grid`` redshifts (filter curves and
        luminosity distance; the interpolation error is far below 0.1% for the
        default grid). The spectrum term needs a fixed redshift.
        """
        self._refuse_spectrum_with_free_z(spectrum=self.spec is not None, free_z=True)
        self.z_prior = prior
        self._zgrid = np.linspace(prior.lo, prior.hi, n_grid)
        resp = []
        for zk in self._zgrid:
            _, factor = observed_factor(self.model.wave, zk, self.model.cosmo, self.model.igm)
            resp.append(self.model.filter_matrix(self.filters, zk).astype(float) * factor)
        self._zresp = np.stack(resp)                        # (n_grid, n_band, n_wave)

    def add_spectrum(self, wave, flux, var, reference, order=3, del_wave=10.0, clip=5.0):
        """Fit a spectrum jointly with the photometry.

        The model spectrum is resampled onto ``wave`` and multiplied by the
        Legendre polynomial of ``order`` that matches it best to ``flux``
        (:func:`sedmap.fit.likelihood.legendre_normalise`), so the spectrum
        constrains the shape of the SED (breaks, absorption lines) and the
        photometry its scale. Pixels within ±``del_wave`` Angstrom (rest) of
        the emission lines are masked, and so are those whose residual from the
        normalised ``reference`` model is more than ``clip`` times the
        residuals' robust spread (1.4826 MAD, at least 1 sigma) from their
        median: once, here, so that the pixels the likelihood counts are the
        same for every walker.

        Parameters
        ----------
        wave : ndarray (n_wave,)
            Observed-frame wavelength, Angstrom, increasing.
        flux, var : ndarray (n_wave,)
            The spectrum and its variance, erg/s/cm^2/AA (the unit of the
            photometry); NaN or non-positive variance marks bad pixels.
        reference : ndarray (ndim,)
            A sampled vector (e.g. the best RDSPS model) for the clipping.
        """
        self._refuse_spectrum_with_free_z(spectrum=True, free_z=self.z_prior is not None)
        wave, flux, var = (np.asarray(a, float) for a in (wave, flux, var))
        good = np.isfinite(flux) & np.isfinite(var) & (var > 0)
        good &= line_mask(wave, self.z, del_wave)
        model_range = self.model.wave[[0, -1]] * (1 + self.z)
        if wave.size and (wave.min() < model_range[0] or wave.max() > model_range[1]):
            raise InputError(f"the spectrum ({wave.min():.0f}-{wave.max():.0f} AA observed) "
                             "reaches beyond the model spectra", path="fit.spectrum",
                             fix="widen models.wavelength (min_aa, max_aa)")
        if good.sum() <= order + 1:
            raise InputError(f"the spectrum has {int(good.sum())} usable pixels",
                             path="fit.spectrum", fix="fit this bin without its spectrum")
        ivar = np.where(good, 1.0 / np.where(good, var, 1.0), 0.0)
        # the model is resampled onto the whole pixel grid (its pixel widths), then
        # the used pixels are taken
        self.spec = {"grid": wave, "sel": np.flatnonzero(good), "wave": wave[good],
                     "flux": flux[good], "ivar": ivar[good], "order": order}
        # outliers against the reference, in units of the residuals' robust spread
        # (at least the errors): a reference that is not yet the best model leaves
        # broad residuals, and those are the fit's to explain, not the clip's
        r = self._spec_resid(self.photometry(self.full(reference), return_spectrum=True)[2])[0]
        med = np.median(r)
        spread = max(MAD_TO_SIGMA * np.median(np.abs(r - med)), 1.0)
        inside = np.abs(r - med) < clip * spread
        self.spec.update({k: self.spec[k][inside] for k in ("sel", "wave", "flux", "ivar")})
        return int(inside.sum())

    @staticmethod
    def _refuse_spectrum_with_free_z(spectrum, free_z):
        if spectrum and free_z:
            raise InputError("a spectrum in a fit with a free redshift is not supported",
                             path="fit.free_redshift", fix="fix the redshift (galaxy.z)")

    def _spec_resid(self, model):
        """Normalised residuals (n, n_spec), in sigma, of model spectra on the spectrum's
        pixels against the spectrum (after the Legendre normalisation)."""
        s = self.spec
        norm = legendre_normalise(s["wave"], s["flux"], s["ivar"], model, s["order"])
        return (s["flux"] - norm) * np.sqrt(s["ivar"])

    def spectrum_chi2(self, full):
        """chi^2 of the spectrum term for full vectors (n, n_param + 1); NaN without one."""
        full = np.atleast_2d(full)
        if self.spec is None:
            return np.full(len(full), np.nan)
        return np.sum(self._spec_resid(self.photometry(full, return_spectrum=True)[2]) ** 2,
                      axis=1)

    @property
    def ndim(self):
        """Number of sampled dimensions: the free parameters, the redshift when it is
        free (:meth:`free_redshift`), and log_mass_formed."""
        return len(self.free) + 1 + (self.z_prior is not None)

    def redshift(self, theta):
        """(n,) redshift of each vector ``theta`` (n, ndim): sampled or fixed."""
        theta = np.atleast_2d(theta)
        if self.z_prior is None:
            return np.full(len(theta), self.z)
        return theta[:, len(self.free)]

    def full(self, theta):
        """(n, n_param + 1): ``theta`` (n, ndim) with the fixed parameters put back."""
        theta = np.atleast_2d(theta)
        out = np.tile(np.append(self._fixed, 0.0), (len(theta), 1))
        out[:, self.free] = theta[:, :len(self.free)]
        out[:, -1] = theta[:, -1]
        return out

    def photometry(self, full, return_spectrum=False, z=None):
        """Model photometry (n, n_band) and derived quantities for full vectors
        (n, n_param + 1), as returned by :meth:`full`; with ``return_spectrum``
        also the model spectra on the fitted spectrum's pixels (n, n_spec).
        ``z`` (n,): each vector's redshift (a free redshift; default the fixed one)."""
        spec, der = self.model.spectra(full[:, :-1], return_derived=True)
        return self._from_spectra(spec, der, full, return_spectrum, z)

    def _from_spectra(self, spec, der, full, return_spectrum=False, z=None):
        """:meth:`photometry` of rest-frame model spectra ``spec`` (n, n_wave) already
        computed (a stacked ensemble computes every bin's at once)."""
        if z is not None and self.z_prior is not None:
            pos = np.interp(z, self._zgrid, np.arange(self._zgrid.size))
            k = np.clip(np.floor(pos).astype(int), 0, self._zgrid.size - 2)
            w = (pos - k)[:, None]
            spec = spec.astype(float)
            phot = ((1 - w) * np.einsum("nw,nbw->nb", spec, self._zresp[k])
                    + w * np.einsum("nw,nbw->nb", spec, self._zresp[k + 1]))
            return phot * 10 ** full[:, -1:], der
        phot = (spec.astype(float) @ self._resp.T) * 10 ** full[:, -1:]
        if return_spectrum:
            wave_obs, flam = self.model.observed(spec, self.z)
            model = resample(wave_obs, flam.astype(float), self.spec["grid"])
            return phot, der, model[:, self.spec["sel"]]
        return phot, der

    def __call__(self, theta_in):
        return self.evaluate(theta_in)[0]

    def evaluate(self, theta_in):
        """log posterior (n,) of ``theta_in`` (n, ndim), and the derived quantities
        (n, len(DERIVED); columns in ``sedmap.sps.DERIVED`` order) of its models,
        NaN where the prior is zero (no model computed)."""
        lp, theta, z = self.log_prior(theta_in)
        ok = np.isfinite(lp)
        out = np.full(len(theta), -np.inf)
        derived = np.full((len(theta), len(DERIVED)), np.nan)
        if ok.any():
            spec, der = self.model.spectra(theta[ok, :-1], return_derived=True)
            out[ok], derived[ok] = self.log_like(lp[ok], theta[ok], spec, der, z[ok])
        return out, derived

    def log_prior(self, theta_in, mass=True):
        """log prior (n,) of ``theta_in`` (n, ndim) (all but the priors that need the
        model, :meth:`log_like` adds those; without ``mass`` also but the mass
        prior), the full vectors (n, n_param + 1) and each vector's redshift (n,)."""
        theta = self.full(theta_in)
        lp = np.zeros(len(theta))
        for i in self.free:
            if self.priors[i].form != "joint_mass":
                lp += self.priors[i].logpdf(theta[:, i])
        if mass:
            lp += self.mass_prior.logpdf(theta[:, -1])
        if self.correlation is not None:
            lp += self.correlation.log_correction(theta)
        z = self.redshift(theta_in)
        if self.z_prior is not None:
            lp += self.z_prior.logpdf(z)
        return np.where(np.isfinite(lp), lp, -np.inf), theta, z

    def log_like(self, lp, full, spec, der, z, flux=None, var=None):
        """log posterior (n,) and derived quantities (n, len(DERIVED)) of full vectors
        with finite prior ``lp``, given their rest-frame model spectra ``spec`` and
        derived quantities ``der`` (``model.spectra(..., return_derived=True)``).
        ``flux``, ``var`` (n, n_band): each vector's observed photometry, where
        vectors of several bins that share this bin's priors are evaluated at
        once (:class:`StackedPosterior`); default this bin's."""
        lp = np.array(lp, float)
        flux = self.flux if flux is None else flux
        var = self.var if var is None else var
        zz = z if self.z_prior is not None else None
        if self.spec is None:
            phot, der = self._from_spectra(spec, der, full, z=zz)
        else:
            phot, der, model = self._from_spectra(spec, der, full, return_spectrum=True)
            lp += -0.5 * np.sum(self._spec_resid(model) ** 2, axis=1)
        if self._joint:
            log_mstar = full[:, -1] + np.log10(der["surviving_mass"])
            for i in self._joint:
                lp += self.priors[i].logpdf(full[:, i], log_mstar=log_mstar)
        out = lp + photometry_loglike(flux, var, phot, self.sys_err, self.kind, self.nu)
        derived = np.column_stack([der[k] for k in DERIVED])
        return np.where(np.isfinite(out), out, -np.inf), derived


def initial_walkers(post, rdsps_samples, rdsps_weights, log_mass_formed, nwalkers, rng,
                    jitter=0.01):
    """Starting points near the best RDSPS models, jittered by ``jitter`` of each range.

    ``rdsps_samples`` has every model parameter (``model.param_names`` order);
    the result has the sampled ones (``post.free``) and log_mass_formed.
    """
    order = np.argsort(-rdsps_weights)
    take = order[np.arange(nwalkers) % order.size]
    pri = [post.priors[i] for i in post.free]
    zcol, lmf = [], np.asarray(log_mass_formed, float)[take]
    if post.z_prior is not None:
        # redshifts drawn from their prior, each walker's mass moved along the
        # distance degeneracy (M ~ d_L^2), so that the walkers span the ridge

        pri = pri + [post.z_prior]
        zs = post.z_prior.sample(rng, nwalkers)
        dl = np.array([luminosity_distance_cm(float(v), post.model.cosmo) for v in zs])
        lmf = lmf + 2 * np.log10(dl / luminosity_distance_cm(post.z, post.model.cosmo))
        zcol = [zs]
    p0 = np.column_stack([rdsps_samples[take][:, post.free], *zcol, lmf])
    widths = np.array([p.hi - p.lo for p in pri] + [0.5])
    if zcol:
        widths[-2] = 0.0  # already spread
    p0 = p0 + rng.normal(size=p0.shape) * jitter * widths
    lo = np.array([p.lo for p in pri] + [post.mass_prior.lo])
    hi = np.array([p.hi for p in pri] + [post.mass_prior.hi])
    return np.clip(p0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))


# ------------------------------------------------------------------ moves
class BinMove(emcee.moves.RedBlueMove, abc.ABC):
    """Base of the moves of a stacked ensemble: the walkers of several bins share one
    ensemble (their last coordinate is the bin's slot, a constant), and a walker is
    moved using walkers of its own bin only. A subclass gives :meth:`propose_bin`;
    emcee accepts walker by walker, so each bin's walkers form its own chain while
    each half-step evaluates every bin's proposals in one call of the SPS engine.
    """

    #: fewest walkers of a bin in the other half that a proposal needs
    n_others = 1

    def __init__(self, ndim, jitter=None, **kwargs):
        self.ndim = int(ndim)
        self.jitter = np.zeros(self.ndim) if jitter is None else np.asarray(jitter, float)
        super().__init__(live_dangerously=True, **kwargs)

    def get_proposal(self, s, c, random):
        c = np.concatenate(c, axis=0)
        q, factors = s.copy(), np.zeros(len(s))
        slot_s, slot_c = s[:, -1], c[:, -1]
        for b in np.unique(slot_s):
            i_s = np.flatnonzero(slot_s == b)
            i_c = np.flatnonzero(slot_c == b)
            if i_c.size < self.n_others:
                continue
            q[i_s, :-1], factors[i_s] = self.propose_bin(s[i_s, :-1], c[i_c, :-1], random)
        return q, factors

    @abc.abstractmethod
    def propose_bin(self, x, others, random):
        """(proposals, log proposal-density ratios) for walkers ``x`` (n, ndim) of one
        bin, given the bin's walkers in the other half, ``others`` (m, ndim)."""

    @staticmethod
    def distinct(random, n, m, k):
        """``k`` distinct indices into ``m`` walkers, for each of ``n`` walkers."""
        return np.argsort(random.rand(n, m), axis=1)[:, :k]


class BinDEMove(BinMove):
    """Differential evolution within a bin (ter Braak 2006; Nelson et al. 2013): a
    walker's proposal is its position plus ``gamma`` times the difference of two
    walkers of its bin, plus a small fixed Gaussian ``jitter`` per coordinate (it
    keeps a coordinate that all of a bin's walkers happen to share from stalling,
    and leaves the proposal symmetric). ``gamma`` is ``2.38 / sqrt(2 ndim)`` (the
    optimal scale for a Gaussian target), or 1 with probability ``p_jump`` (a jump
    between modes; 0 by default: on the test suite's joint spectrum fits 10% of
    such jumps left the chains too broad after burn-in)."""

    n_others = 2

    def __init__(self, ndim, jitter=None, p_jump=0.0, **kwargs):
        self.g0 = 2.38 / np.sqrt(2 * ndim)
        self.p_jump = float(p_jump)
        super().__init__(ndim, jitter, **kwargs)

    def propose_bin(self, x, others, random):
        n = len(x)
        pair = self.distinct(random, n, len(others), 2)
        diff = others[pair[:, 0]] - others[pair[:, 1]]
        gamma = np.where(random.rand(n) < self.p_jump, 1.0, self.g0)[:, None]
        new = x + gamma * diff + self.jitter[None, :] * random.randn(n, self.ndim)
        return new, np.zeros(n)


class BinSnookerMove(BinMove):
    """The differential-evolution snooker update (ter Braak & Vrugt 2008) within a
    bin: a walker ``x`` moves along the line to a walker ``z`` of its bin, by
    ``gammas`` times the difference of two more walkers of its bin projected on that
    line, with the Jacobian factor ``(ndim - 1) log(|q - z| / |x - z|)``. It reaches
    along the walkers' spread in any direction, which the plain update's
    differences do not (long prior tails: the continuity SFR ratios). emcee's
    ``DESnookerMove`` scales the projection by the line's length, which makes its
    posteriors 4-5% too narrow (docs/sampling.md)."""

    n_others = 3

    def __init__(self, ndim, jitter=None, gammas=1.7, **kwargs):
        self.gammas = float(gammas)
        super().__init__(ndim, jitter, **kwargs)

    def propose_bin(self, x, others, random):
        pick = self.distinct(random, len(x), len(others), 3)
        z, z1, z2 = (others[pick[:, m]] for m in range(3))
        delta = x - z
        norm = np.linalg.norm(delta, axis=1)
        ok = norm > 0
        safe = np.where(ok, norm, 1.0)
        u = np.where(ok[:, None], delta / safe[:, None], 0.0)
        new = x + u * (self.gammas * np.sum(u * (z1 - z2), axis=1))[:, None]
        with np.errstate(divide="ignore"):
            ratio = np.log(np.linalg.norm(new - z, axis=1)) - np.log(safe)
        return new, np.where(ok, (self.ndim - 1.0) * ratio, 0.0)


class BinStretchMove(BinMove):
    """emcee's stretch move (Goodman & Weare 2010) within a bin: a walker moves along
    the line to a walker of its own bin, by a factor ``z`` with density ~ 1/sqrt(z)
    on [1/a, a]."""

    def __init__(self, ndim, jitter=None, a=2.0, **kwargs):
        self.a = float(a)
        super().__init__(ndim, jitter, **kwargs)

    def propose_bin(self, x, others, random):
        n = len(x)
        zz = ((self.a - 1.0) * random.rand(n) + 1) ** 2.0 / self.a
        other = others[random.randint(len(others), size=n)]
        return other - (other - x) * zz[:, None], (self.ndim - 1.0) * np.log(zz)


#: The sampler's moves by name (``fit.mcmc.moves``): functions of (ndim, jitter)
#: giving emcee move objects with their weights, each pairing walkers within a bin.
#: Differential evolution proposes along the differences of other walkers'
#: positions, so it follows the correlated directions of the continuity ratios and
#: the age-dust-metallicity degeneracy; on the demo's bins its integrated
#: autocorrelation times are about half the stretch move's (docs/sampling.md).
MOVES = {
    "de": lambda ndim, jitter: [(BinDEMove(ndim, jitter), 0.8),
                                (BinSnookerMove(ndim), 0.2)],
    "stretch": lambda ndim, jitter: [(BinStretchMove(ndim), 1.0)],
}


def sampler_moves(name, ndim, jitter):
    """The emcee moves registered under ``name`` (:data:`MOVES`)."""
    if name not in MOVES:
        raise InputError(f"unknown MCMC moves '{name}'; known: {sorted(MOVES)}",
                         path="fit.mcmc.moves", fix=f"use one of {sorted(MOVES)}")
    return MOVES[name](ndim, jitter)


class StackedPosterior:
    """The log posteriors of several bins' :class:`PhotometryPosterior`, for one
    stacked ensemble: a vector's last coordinate is its bin's slot (0, 1, ...).

    Every vector's model spectrum is computed in one call of the SPS engine (the
    bins share the model and the redshift); each bin then adds its own prior and
    likelihood. Bins whose priors differ in the mass prior's range only, fitted to
    photometry alone (a job's usual case), have their priors and likelihoods
    evaluated at once too.
    """

    def __init__(self, posts):
        self.posts = list(posts)
        p0 = self.posts[0]
        if any(p.model is not p0.model or p.ndim != p0.ndim or p.z != p0.z
               for p in self.posts):
            raise ValueError("stacked bins must share the model, the redshift and ndim")
        self.model = p0.model
        self.shared = all(_prior_key(p) == _prior_key(p0) for p in self.posts) \
            and p0.mass_prior.form == "uniform" and all(p.spec is None for p in self.posts)
        if self.shared:
            self._flux = np.stack([p.flux for p in self.posts])
            self._var = np.stack([p.var for p in self.posts])
            self._mass_range = np.array([[p.mass_prior.lo, p.mass_prior.hi]
                                         for p in self.posts])

    def _evaluate_shared(self, th, slot):
        """:meth:`evaluate` for bins sharing their priors but the mass prior's range
        (uniform) and fitted to photometry only: one pass for all."""
        p0 = self.posts[0]
        lp, full, z = p0.log_prior(th, mass=False)
        lo, hi = self._mass_range[slot].T
        lp += np.where((full[:, -1] >= lo) & (full[:, -1] <= hi), 0.0, -np.inf)
        ok = np.isfinite(lp)
        out = np.full(len(th), -np.inf)
        derived = np.full((len(th), len(DERIVED)), np.nan)
        if ok.any():
            spec, der = self.model.spectra(full[ok, :-1], return_derived=True)
            s = slot[ok]
            out[ok], derived[ok] = p0.log_like(lp[ok], full[ok], spec, der, z[ok],
                                               flux=self._flux[s], var=self._var[s])
        return np.where(np.isfinite(out), out, -np.inf), derived

    def evaluate(self, theta):
        """log posterior (n,) and derived quantities (n, len(DERIVED)) of ``theta``
        (n, ndim + 1), the last column the slot."""
        theta = np.atleast_2d(theta)
        slot = np.rint(theta[:, -1]).astype(int)
        th = theta[:, :-1]
        if self.shared:
            return self._evaluate_shared(th, slot)
        n = len(th)
        lp = np.full(n, -np.inf)
        full = np.zeros((n, len(self.model.param_names) + 1))
        zs = np.full(n, self.posts[0].z)
        for j, post in enumerate(self.posts):
            sel = slot == j
            if sel.any():
                lp[sel], full[sel], zs[sel] = post.log_prior(th[sel])
        ok = np.isfinite(lp)
        out = np.full(n, -np.inf)
        derived = np.full((n, len(DERIVED)), np.nan)
        if ok.any():
            spec, der = self.model.spectra(full[ok, :-1], return_derived=True)
            idx = np.flatnonzero(ok)
            for j, post in enumerate(self.posts):
                m = slot[idx] == j
                if not m.any():
                    continue
                rows = idx[m]
                out[rows], derived[rows] = post.log_like(
                    lp[rows], full[rows], spec[m], {k: v[m] for k, v in der.items()},
                    zs[rows])
        return np.where(np.isfinite(out), out, -np.inf), derived


def _prior_key(post):
    """What a bin's posterior shares with another's whose priors are the same, but for
    the mass prior's range (:class:`StackedPosterior`)."""
    def one(p):
        if p is None:
            return None
        kw = tuple((k, np.asarray(v, float).tobytes()) for k, v in sorted(p.kw.items()))
        return (p.name, p.form, p.lo, p.hi, kw)

    corr = post.correlation
    return ([one(p) for p in post.priors], tuple(post.free), tuple(post.filters),
            one(post.z_prior),
            post.mass_prior.form, np.asarray(post.sys_err, float).tobytes(), post.kind, post.nu,
            None if corr is None else (corr.names, corr.matrix.tobytes(), corr.mu.tobytes(),
                                       corr.sigma.tobytes()))


def _jitter(post):
    """Proposal jitter per sampled coordinate: 1e-4 of its prior range."""
    pri = [post.priors[i] for i in post.free]
    if post.z_prior is not None:
        pri = pri + [post.z_prior]
    return 1e-4 * np.array([p.hi - p.lo for p in pri] + [post.mass_prior.hi - post.mass_prior.lo])


def run_mcmc_stacked(posts, p0s, nsteps, burn, seed, thin=1, progress=False, moves="de",
                     n_tau=50.0, max_steps=None):
    """Run the MCMC of several bins as one emcee ensemble, each bin's walkers moved
    by walkers of the same bin only (:data:`MOVES`), until every bin's chain is
    ``n_tau`` autocorrelation times long after burn-in or ``max_steps`` long.

    A half-step evaluates the proposals of every bin in one call of the SPS
    engine (:class:`StackedPosterior`), whose cost is mostly fixed per call: ten
    bins cost about a third of what they cost one by one. Each bin's chain is
    its own (emcee accepts walker by walker, and no move mixes bins), and its
    autocorrelation time is its own; the chain length is the longest any of
    them needs, so a bin's samples depend on which bins share its job (the
    same configuration still gives the same bytes).

    Parameters
    ----------
    posts : list of PhotometryPosterior
        Sharing the model, the redshift and the sampled dimensions.
    p0s : list of ndarray (nwalkers, ndim)
        Starting walkers of each bin (:func:`initial_walkers`), the same number.
    nsteps, burn, seed, thin, progress, moves, n_tau, max_steps
        As in :func:`run_mcmc`.

    Returns
    -------
    list of dict, one per bin, as :func:`run_mcmc` returns.
    """
    nwalkers, ndim = p0s[0].shape
    if any(p.shape != (nwalkers, ndim) for p in p0s):
        raise ValueError("every bin needs the same number of walkers and dimensions")
    max_steps = int(nsteps if max_steps is None else max(max_steps, nsteps))
    if burn >= nsteps:
        raise InputError(f"burn-in ({burn}) must be shorter than the chain ({nsteps})",
                         path="fit.mcmc.burn", fix="lower fit.mcmc.burn")
    stack = StackedPosterior(posts)
    p0 = np.concatenate([np.column_stack([p, np.full(nwalkers, float(j))])
                         for j, p in enumerate(p0s)])

    def log_prob(theta):  # the derived quantities travel as emcee blobs: no second pass
        lp, derived = stack.evaluate(theta)
        return np.column_stack([lp, derived])

    n_bins = len(posts)
    for p in p0s:  # each bin's walkers, as emcee checks one ensemble's (the slots are not)
        if not emcee.ensemble.walkers_independent(p):
            raise ValueError("a bin's initial walkers are not linearly independent")
    moves_ = sampler_moves(moves, ndim, _jitter(posts[0]))
    rng = np.random.RandomState(seed)
    parts = [[] for _ in range(n_bins)]      # per bin: (chain, log_prob, blobs, accepted)
    active = list(range(n_bins))
    coords, lp, blobs = p0, None, None
    taus = [np.full(ndim, np.nan)] * n_bins
    done_steps, grow = 0, nsteps
    while active:
        # one segment for the bins still short of n_tau; those that reached it are
        # frozen and leave the ensemble, so the calls shrink with them
        sampler = emcee.EnsembleSampler(nwalkers * len(active), ndim + 1, log_prob,
                                        vectorize=True, moves=moves_)
        state = emcee.State(coords, log_prob=lp, blobs=blobs, random_state=rng.get_state())
        state = sampler.run_mcmc(state, grow, progress=progress, skip_initial_state_check=True,
                                 progress_kwargs=bar_kwargs(
                                     desc=f"MCMC, {len(active)} bin(s), steps {done_steps}+",
                                     unit="step"))
        rng.set_state(sampler.random_state)
        done_steps += grow
        ch, lps, bls = sampler.get_chain(), sampler.get_log_prob(), sampler.get_blobs()
        acc = sampler.acceptance_fraction * grow
        keep, need = [], []
        for a, j in enumerate(active):
            w = slice(a * nwalkers, (a + 1) * nwalkers)
            parts[j].append((ch[:, w, :ndim], lps[:, w], bls[:, w], acc[w]))
            chain_j = np.concatenate([c for c, _, _, _ in parts[j]])[burn:]
            taus[j] = _autocorr(chain_j)
            longest = _longest(taus[j])
            after = done_steps - burn
            if n_tau > 0 and after < n_tau * longest and done_steps < max_steps:
                keep.append(a)
                need.append(np.ceil(1.1 * n_tau * longest) - after if np.isfinite(longest)
                            else nsteps)
        if not keep:
            break
        rows = np.concatenate([np.arange(a * nwalkers, (a + 1) * nwalkers) for a in keep])
        coords = state.coords[rows].copy()
        coords[:, -1] = np.repeat(np.arange(len(keep), dtype=float), nwalkers)  # new slots
        lp, blobs = state.log_prob[rows], state.blobs[rows]
        stack = StackedPosterior([posts[active[a]] for a in keep])
        active = [active[a] for a in keep]
        grow = int(min(max(max(need), 50), max_steps - done_steps))
    out = []
    for j, post in enumerate(posts):
        chain = np.concatenate([c for c, _, _, _ in parts[j]])
        n_j = len(chain)
        lnp = np.concatenate([x for _, x, _, _ in parts[j]])
        bl = np.concatenate([b for _, _, b, _ in parts[j]])
        acc = np.sum([a for _, _, _, a in parts[j]], axis=0) / n_j
        sl = slice(burn, None, thin)
        out.append(summarise_chain(
            post, chain[sl].reshape(-1, ndim), lnp[sl].ravel(),
            bl[sl].reshape(-1, bl.shape[-1]), taus[j], n_j, burn, n_tau, nwalkers,
            float(np.mean(acc))))
    return out


def _longest(tau):
    """The longest autocorrelation time, infinite when any parameter's could not be
    estimated (a walker that never moved): such a chain is not called converged."""
    tau = np.asarray(tau, float)
    return float(np.max(tau)) if tau.size and np.all(np.isfinite(tau)) else float("inf")


def _autocorr(chain):
    """Integrated autocorrelation time (steps) of each parameter of one bin's chain
    (n_steps, n_walkers, ndim); NaN where it cannot be estimated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tau = np.asarray(emcee.autocorr.integrated_time(chain, quiet=True, tol=0), float)
    return np.where(np.isfinite(tau) & (tau > 0), tau, np.nan)


def summarise_chain(post, chain, lnp, blobs, tau, nsteps, burn, n_tau, nwalkers,
                    acceptance):
    """One bin's result dict (see :func:`run_mcmc`) from its flat chain after burn-in
    (``chain`` (n, ndim), ``lnp``, ``blobs`` (n, len(DERIVED)))."""
    longest = _longest(tau)
    n_tau_got = (nsteps - burn) / max(longest, 1.0)
    converged = bool(n_tau <= 0 or n_tau_got >= n_tau)
    if not converged:
        log.warning("the chain reached fit.mcmc.max_steps (%d) at %.0f autocorrelation times "
                    "after burn-in, short of %g: tau is a lower bound and the effective "
                    "sample size an upper one; the bin is marked MCMC_CONVERGED = 0",
                    nsteps, n_tau_got, n_tau)
    ok = np.isfinite(lnp)
    chain, lnp, blobs = chain[ok], lnp[ok], blobs[ok]
    zs = post.redshift(chain) if post.z_prior is not None else None
    chain = post.full(chain)  # the fixed parameters back in, as columns of the samples
    der = {k: blobs[:, i] for i, k in enumerate(DERIVED)}
    best = int(np.argmax(lnp))
    best_phot = post.photometry(chain[best:best + 1],
                                z=None if zs is None else zs[best:best + 1])[0][0]
    names = post.names
    dcols = derived_columns(chain[:, :-1], names, der, 10 ** chain[:, -1])
    dcols.pop("log_mass_formed")
    zcol = [] if zs is None else [zs]
    samples = np.column_stack([chain] + zcol + [dcols[k] for k in dcols])
    all_names = names + ["log_mass_formed"] + ["redshift"] * len(zcol) + list(dcols)
    finite = np.all(np.isfinite(samples), axis=0)
    samples, all_names = samples[:, finite], [n for n, f in zip(all_names, finite) if f]
    pct = weighted_percentiles(samples, np.ones(len(samples)))
    return {"names": all_names, "samples": samples, "percentiles": pct,
            "acceptance_fraction": float(acceptance),
            "autocorr_time": tau, "n_steps": int(nsteps), "n_tau": float(n_tau_got),
            "converged": converged,
            "ess": float(nwalkers * (nsteps - burn) / max(longest, 1.0)),
            "best_theta": chain[best],
            "best_lnp": float(lnp[best]), "best_photometry": best_phot,
            "best_z": float(post.z if zs is None else zs[best])}


def run_mcmc(post, p0, nsteps, burn, seed, thin=1, progress=False, moves="de", n_tau=50.0,
             max_steps=None):
    """Run emcee until the chain is ``n_tau`` autocorrelation times long, and summarise
    it: :func:`run_mcmc_stacked` with one bin.

    The chain runs ``nsteps`` steps (``burn`` of them burn-in), then grows until the
    part after burn-in exceeds ``n_tau`` times the longest integrated
    autocorrelation time of the sampled parameters (emcee's criterion for a
    trustworthy estimate of tau, and so of the effective sample size), or until
    ``max_steps`` in all (then ``converged`` is False). Each extension aims 10%
    past the length the current estimate of tau asks for, so few are needed; the
    chain stays one seeded sequence, so its bytes do not depend on them.

    Parameters
    ----------
    post : PhotometryPosterior
    p0 : ndarray (nwalkers, ndim)
    nsteps, burn : int
        Shortest chain and burn-in, steps.
    seed : int
    thin : int
    moves : str
        A name in :data:`MOVES`.
    n_tau : float
        Target length after burn-in in autocorrelation times (0: run ``nsteps``).
    max_steps : int, optional
        Longest chain (default ``nsteps``: no growth).

    Returns
    -------
    dict with names, samples (flat, post-burn, thinned, incl. the redshift when it
    is free and the derived columns), percentiles (3, n), acceptance_fraction,
    autocorr_time (steps, per sampled parameter), n_steps (the chain's length),
    n_tau (its length after burn-in over the longest tau), converged, ess
    (walkers x steps after burn-in / longest tau), best (theta, lnp),
    best_photometry, best_z.
    """
    return run_mcmc_stacked([post], [p0], nsteps, burn, seed, thin=thin, progress=progress,
                            moves=moves, n_tau=n_tau, max_steps=max_steps)[0]


def mass_prior_from(rdsps_log_mass, width=3.0):
    """A wide uniform prior on log_mass_formed around the RDSPS value (±``width`` dex)."""
    return Prior("log_mass_formed", rdsps_log_mass - width, rdsps_log_mass + width)
