"""Likelihoods: photometry (Gaussian or Student-t, with a systematic floor) and a
spectrum term with a multiplicative Legendre normalisation, emission-line
masking and sigma clipping, for joint photometry + spectrum fits."""

import numpy as np
from numpy.polynomial import legendre
from scipy.special import gammaln

#: rest-frame wavelengths (AA) of the strong emission lines masked in spectra
EMISSION_LINES = np.array([3726.03, 3728.82, 3868.76, 3889.05, 3970.07, 4101.74, 4340.47,
                           4861.33, 4958.91, 5006.84, 5875.67, 6300.30, 6548.05, 6562.80,
                           6583.45, 6716.44, 6730.82])


def photometry_loglike(flux, var, model, sys_err=0.0, kind="gaussian", nu=3.0):
    """Log-likelihood of observed fluxes given model fluxes.

    Parameters
    ----------
    flux, var : ndarray (n_band,)
        Observed fluxes and variances.
    model : ndarray (n, n_band)
        Model fluxes (already scaled by the mass).
    sys_err : float
        Fractional systematic error added in quadrature: sigma^2 = var + (sys_err f)^2.
    kind : {'gaussian', 'student_t'}
    nu : float
        Degrees of freedom of the Student-t.

    Returns
    -------
    ndarray (n,)
    """
    s2 = var + (sys_err * flux) ** 2
    r2 = (flux - model) ** 2 / s2
    if kind == "gaussian":
        return -0.5 * np.sum(r2 + np.log(2 * np.pi * s2), axis=-1)
    if kind == "student_t":
        c = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi * s2)
        return np.sum(c - (nu + 1) / 2 * np.log1p(r2 / nu), axis=-1)
    raise ValueError(f"unknown likelihood {kind!r}")


def line_mask(wave_obs, z, del_wave=10.0, lines=EMISSION_LINES):
    """True where the spectrum is free of emission lines (±``del_wave`` AA, rest frame)."""
    rest = np.asarray(wave_obs) / (1 + z)
    return np.all(np.abs(rest[:, None] - lines[None, :]) > del_wave, axis=1)


def legendre_normalise(wave, flux, ivar, model, order=3):
    """Multiply ``model`` (n, n_wave) by the Legendre polynomial of ``order`` that best
    matches ``flux`` (weighted least squares); returns the normalised models (n, n_wave)."""
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    basis = legendre.legvander(x, order)  # (n_wave, order+1)
    model = np.atleast_2d(model)
    # design matrix per model: model * basis -> solve (A^T W A) c = A^T W f for all models
    a = model[:, :, None] * basis[None]                       # (n, n_wave, k)
    atw = a * ivar[None, :, None]
    lhs = np.einsum("nwk,nwl->nkl", atw, a)
    rhs = np.einsum("nwk,w->nk", atw, flux)
    # a ridge relative to each system's scale (fluxes per Msun can be ~1e-30)
    ridge = 1e-12 * np.trace(lhs, axis1=1, axis2=2)[:, None, None] / (order + 1)
    coef = np.linalg.solve(lhs + ridge * np.eye(order + 1)[None], rhs[..., None])[..., 0]
    return model * (basis @ coef.T).T
