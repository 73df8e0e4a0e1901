"""Spectro-photometric correction: scale each spectrum to the photometry with a smooth
Legendre polynomial in wavelength.

For every pixel with a spectrum ``f(λ)`` and the bands ``b`` of the flux map
whose filter curve lies wholly inside the spectrum's range, the corrected
spectrum is ``P(λ) f(λ)`` with::

    P(λ) = sum_k c_k L_k(x),   x = 2 (λ - λ_0) / (λ_1 - λ_0) - 1

(Legendre polynomials over the spectrum's range ``[λ_0, λ_1]``). The
coefficients minimise::

    chi2 = sum_b (phot_b - <P f>_b)**2 / (sigma_phot_b**2 + r0**2 sigma_syn_b**2)

where ``<P f>_b = sum_k c_k <L_k f>_b`` is the synthetic photometry
(``sedmap.filters.filter_matrix``: photon-weighted band average) of the
corrected spectrum itself, so the fit is linear and needs no pivot-wavelength
approximation. Bad spectral pixels get zero weight in the band averages (the
weights are renormalised over the good pixels); a band is used only where
its good weight is at least ``min_band_coverage``. ``r0`` is the constant
ratio of a first, order-0 pass (it scales the spectrum's own noise). With
fewer usable bands than ``order + 1`` the fit falls back to a constant.

The error spectrum is scaled by the same ``P(λ)`` (the uncertainty of ``P``
itself, correlated over all wavelengths, is not added). A pixel is dropped
from the mask (no spectrum) when no band is usable or ``P(λ) <= 0``
somewhere in the spectrum's range (photometry consistent with zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre

from ..constants import SPECPHOTO_FLAG_CONSTANT as FLAG_CONSTANT
from ..constants import SPECPHOTO_FLAG_NO_BAND as FLAG_NO_BAND
from ..constants import SPECPHOTO_FLAG_NONPOSITIVE as FLAG_NONPOSITIVE
from ..errors import InputError
from ..filters import filter_matrix, get_filter
from ..progress import progress as progress_bar

__all__ = ["CorrectionDiagnostics", "correct_spectra", "covered_bands", "legendre_x"]

# ``CorrectionDiagnostics.flag`` bits: FLAG_CONSTANT, FLAG_NO_BAND, FLAG_NONPOSITIVE
# (sedmap.constants.SPECPHOTO_FLAG_*)


@dataclass(eq=False)
class CorrectionDiagnostics:
    """Per-pixel record of the correction (maps on the flux-map grid; NaN / 0 where unused).

    The :class:`~sedmap.io.SpecPhotoCube` product has no place for these yet;
    :func:`sedmap.ifs.build_spec_photo` returns them.
    """

    bands: list                #: names of the bands the spectra cover (the ``band`` axis)
    order: int                 #: requested Legendre order
    coeffs: np.ndarray         #: (order + 1, ny, nx) Legendre coefficients c_k of P
    n_bands: np.ndarray        #: (ny, nx) int, bands used per pixel
    ratio: np.ndarray          #: (n_band, ny, nx) photometry / synthetic photometry, before
    residual: np.ndarray       #: (n_band, ny, nx) (phot - synthetic after) / sigma
    chi2: np.ndarray           #: (ny, nx) chi2 of the fit (0 when n_bands == order + 1)
    flag: np.ndarray           #: (ny, nx) int bitmask (FLAG_* constants), 0 = full fit


def legendre_x(wave):
    """Wavelength mapped linearly onto [-1, 1] over its own range."""
    wave = np.asarray(wave, dtype=float)
    return 2.0 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1.0


def covered_bands(names, wave):
    """Indices of the filters ``names`` whose curves lie wholly inside ``wave``'s range."""
    lo, hi = float(wave[0]), float(wave[-1])
    return [i for i, n in enumerate(names)
            if get_filter(n).wave_min >= lo and get_filter(n).wave_max <= hi]


def _solve(design, y, w):
    """Weighted least squares per pixel: design (n, b, k), y and w (n, b) -> coef (n, k)."""
    k = design.shape[-1]
    lhs = np.einsum("nbk,nb,nbl->nkl", design, w, design)
    rhs = np.einsum("nbk,nb,nb->nk", design, w, y)
    scale = np.trace(lhs, axis1=1, axis2=2)[:, None, None] / k
    lhs = lhs + 1e-12 * np.where(scale > 0, scale, 1.0) * np.eye(k)[None]
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


def correct_spectra(wave, flux, var, mask, photometry, *, order=2, min_band_coverage=0.95,
                    chunk=2048, path=None, progress=True):
    """Scale each spectrum to the photometry of its pixel with a Legendre polynomial.

    Parameters
    ----------
    wave : ndarray (n_wave,)
        Å, observed frame, in the medium of the filter curves (vacuum).
    flux, var : ndarray (n_wave, ny, nx)
        Spectra on the flux-map grid, in ``photometry.fscale`` erg/s/cm2/Å
        (Milky-Way extinction removed, like the photometry), and variances;
        NaN = bad pixel.
    mask : ndarray (ny, nx) bool
        Pixels with a spectrum; only those inside ``photometry.region`` are corrected.
    photometry : FluxCube
    order : int
        Legendre order of ``P(λ)`` (0 = a constant).
    min_band_coverage : float
        Smallest fraction of a band's filter weight on good spectral pixels
        for the band to be used in a pixel.
    chunk : int
        Pixels per block.
    path : str, optional
        File named in errors (the cube).
    progress : bool
        tqdm progress bar over the blocks.

    Returns
    -------
    flux, var : ndarray (n_wave, ny, nx) float32
        Corrected spectra and variances (``P**2 var``); NaN outside ``mask``.
    mask : ndarray (ny, nx) bool
        Pixels with a corrected spectrum.
    diagnostics : CorrectionDiagnostics

    Raises
    ------
    InputError
        The spectra cover none of the flux map's bands, or no pixel could be corrected.
    """
    order = int(order)
    if order < 0:
        raise InputError(f"the Legendre order must be >= 0, got {order}.", "ifs.order",
                         "use 0 (a constant) to 3.")
    names = photometry.filters.name
    wave = np.asarray(wave, dtype=float)
    cov = covered_bands(names, wave)
    if not cov:
        ranges = ", ".join(f"{n} {get_filter(n).wave_min:.0f}-{get_filter(n).wave_max:.0f}"
                           for n in names)
        raise InputError(f"the spectra ({wave[0]:.0f}-{wave[-1]:.0f} AA) cover none of the flux "
                         f"map's filters wholly ({ranges} AA), so they cannot be scaled to the "
                         "photometry.", path, "add a band inside the IFS wavelength range to "
                         "images.bands.")
    bands = [names[i] for i in cov]
    W = filter_matrix(bands, wave)                    # (n_b, n_wave)
    basis = legendre.legvander(legendre_x(wave), order)  # (n_wave, K)
    n_k, n_b = order + 1, len(cov)
    ny, nx = mask.shape
    use_pix = np.asarray(mask, bool) & np.asarray(photometry.region, bool)
    pix = np.flatnonzero(use_pix)
    phot = photometry.flux[cov].reshape(n_b, -1)[:, pix].T.astype(float)     # (n_s, n_b)
    perr = photometry.flux_err[cov].reshape(n_b, -1)[:, pix].T.astype(float)

    flat_f = flux.reshape(flux.shape[0], -1)
    flat_v = var.reshape(var.shape[0], -1)
    coef = np.zeros((pix.size, n_k))
    n_used = np.zeros(pix.size, dtype=int)
    ratio = np.full((pix.size, n_b), np.nan)
    resid = np.full((pix.size, n_b), np.nan)
    chi2 = np.full(pix.size, np.nan)
    flag = np.zeros(pix.size, dtype=int)
    starts = range(0, pix.size, chunk)
    for s in progress_bar(starts, desc="ifs correct", unit="block", disable=not progress):
        sl = slice(s, s + chunk)
        f = flat_f[:, pix[sl]].T.astype(float)   # (n, n_wave)
        v = flat_v[:, pix[sl]].T.astype(float)
        good = np.isfinite(f) & np.isfinite(v)
        f0, v0 = np.where(good, f, 0.0), np.where(good, v, 0.0)
        wsum = good.astype(float) @ W.T           # good weight per band (n, n_b)
        with np.errstate(divide="ignore", invalid="ignore"):
            # design[n, b, k] = <L_k f>_b, renormalised over good pixels
            design = np.stack([(f0 * basis[:, k]) @ W.T for k in range(n_k)], axis=-1)
            design /= wsum[..., None]
            syn_var = (v0 @ (W**2).T) / wsum**2
        y, ey = phot[sl], perr[sl]
        use = ((wsum >= min_band_coverage) & np.isfinite(y) & np.isfinite(ey) & (ey > 0)
               & np.all(np.isfinite(design), axis=2) & np.isfinite(syn_var))
        design = np.where(use[..., None], design, 0.0)
        y0 = np.where(use, y, 0.0)
        syn = design[..., 0]                      # L_0 = 1: synthetic photometry of f
        # pass 1: constant ratio r0 with photometric errors only
        w1 = np.where(use, 1.0 / np.where(use, ey, 1.0) ** 2, 0.0)
        den = np.sum(w1 * syn**2, axis=1)
        r0 = np.where(den > 0, np.sum(w1 * syn * y0, axis=1) / np.where(den > 0, den, 1.0), 0.0)
        # pass 2: errors of photometry and of the spectrum's synthetic photometry
        sig2 = np.where(use, ey**2 + r0[:, None] ** 2 * np.where(use, syn_var, 0.0), 1.0)
        w2 = np.where(use, 1.0 / sig2, 0.0)
        nu = use.sum(axis=1)
        full = nu >= n_k
        c = np.zeros((nu.size, n_k))
        if full.any():
            c[full] = _solve(design[full], y0[full], w2[full])
        const = ~full & (nu > 0)
        if const.any():
            c[const, :1] = _solve(design[const][..., :1], y0[const], w2[const])
        after = np.einsum("nbk,nk->nb", design, c)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[sl] = np.where(use, y / syn, np.nan)
            resid[sl] = np.where(use, (y - after) / np.sqrt(sig2), np.nan)
        chi2[sl] = np.where(nu > 0, np.sum(np.where(use, (y0 - after) ** 2 * w2, 0.0), axis=1),
                            np.nan)
        coef[sl], n_used[sl] = c, nu
        flag[sl] = np.where(const, FLAG_CONSTANT, 0) | np.where(nu == 0, FLAG_NO_BAND, 0)

    curve = basis @ coef.T                        # (n_wave, n_s)
    flag |= np.where(np.any(curve <= 0, axis=0) & (n_used > 0), FLAG_NONPOSITIVE, 0)
    keep = (flag & (FLAG_NO_BAND | FLAG_NONPOSITIVE)) == 0
    if not keep.any():
        raise InputError(f"no pixel's spectrum could be scaled to the photometry (bands "
                         f"{bands}; {int(np.count_nonzero(n_used == 0))} of {pix.size} pixels "
                         "have no usable band, the rest a correction <= 0).", path,
                         "check that the cube covers the galaxy region of the flux map, and "
                         "the units of both.")
    n_wave = wave.size
    out_f = np.full((n_wave, ny * nx), np.nan, dtype=np.float32)
    out_v = np.full((n_wave, ny * nx), np.nan, dtype=np.float32)
    kp = pix[keep]
    out_f[:, kp] = flat_f[:, kp] * curve[:, keep]
    out_v[:, kp] = flat_v[:, kp] * curve[:, keep] ** 2
    out_mask = np.zeros(ny * nx, dtype=bool)
    out_mask[kp] = True

    def grid(values, fill, dtype=float):
        lead = values.shape[1:]
        out = np.full(lead + (ny * nx,), fill, dtype=dtype)
        out[..., pix] = np.moveaxis(values, 0, -1)
        return out.reshape(lead + (ny, nx))

    diag = CorrectionDiagnostics(
        bands=bands, order=order, coeffs=grid(coef, np.nan), n_bands=grid(n_used, 0, int),
        ratio=grid(ratio, np.nan), residual=grid(resid, np.nan), chi2=grid(chi2, np.nan),
        flag=grid(flag, 0, int))
    return (out_f.reshape(n_wave, ny, nx), out_v.reshape(n_wave, ny, nx),
            out_mask.reshape(ny, nx), diag)
