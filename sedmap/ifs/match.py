"""Spatial matching of an IFS cube to the flux map: PSF matching and flux-conserving resampling.

The cube is brought onto the flux map's pixel grid and resolution by one
linear map per wavelength, applied to all wavelengths at once (sparse matrix
times a ``(n_spaxel, n_wave)`` block)::

    L = G @ P

``P`` (``overlap_matrix``) holds the exact overlap areas of the spaxels with
the flux-map pixels, in units of one flux-map pixel (spaxel quadrilaterals
clipped against the pixel squares in the flux map's pixel plane, so the
total flux is conserved exactly). ``G`` is the convolution, on the flux-map
grid, with the Gaussian kernel ``K`` that takes the cube's PSF to the flux
map's target PSF (``FluxCube.psf_fwhm``, header ``PSFFWHM``)::

    sigma_K**2 = sigma_target**2 - sigma_cube**2 - p_spaxel**2 / 12

(``p_spaxel**2 / 12``: the blur of resampling one spaxel box, as
``sedmap.images.psf.effective_fwhm`` counts it for the bands). Masked pixels
get zero weight and the result is renormalised by the covered weight
``c = L @ valid``; for independent spaxels of flux ``F_i`` and variance
``V_i`` and ``a_i`` the area of spaxel ``i`` in flux-map pixels::

    F_out = (L @ (valid * F / a)) / c
    V_out = (L**2 @ (valid * V / a**2)) / c**2

``L**2`` (element-wise) is the variance propagation with ``K**2`` and the
squared overlap weights (piXedfit convolves the variance with ``K``, which
overestimates it by ``1 / sum(K**2)``). An output pixel is bad at a
wavelength where more than ``max_lost`` of its weight falls on masked
spaxels or outside the cube.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from ..constants import FWHM_TO_SIGMA
from ..errors import InputError
from ..images.grid import pixel_area_arcsec2
from ..images.psf import FWHM_TOLERANCE
from ..progress import progress as progress_bar

__all__ = ["clip_area", "convolution_matrix", "gaussian_kernel", "match_cube",
           "overlap_matrix"]

_MAXV = 8  # a convex quadrilateral clipped by a square has at most 8 vertices


# --------------------------------------------------------------------------- geometry

def clip_area(quads, x0, y0):
    """Area of convex quadrilaterals inside unit squares centred on ``(x0, y0)``.

    Parameters
    ----------
    quads : ndarray (n, 4, 2)
        Vertices (x, y), in order (either sense), in pixel units.
    x0, y0 : ndarray (n,)
        Centres of the squares ``[x0 - 0.5, x0 + 0.5] x [y0 - 0.5, y0 + 0.5]``.

    Returns
    -------
    ndarray (n,)
        Overlap areas (pixel units): Sutherland-Hodgman clipping, vectorised.
    """
    quads = np.asarray(quads, dtype=float)
    n_poly = quads.shape[0]
    rows = np.arange(n_poly)
    poly = np.zeros((n_poly, _MAXV, 2))
    poly[:, :4] = quads
    count = np.full(n_poly, 4)
    for axis, bound, sign in ((0, x0 - 0.5, 1.0), (0, x0 + 0.5, -1.0),
                              (1, y0 - 0.5, 1.0), (1, y0 + 0.5, -1.0)):
        out = np.zeros_like(poly)
        m = np.zeros(n_poly, dtype=int)
        for k in range(_MAXV):
            active = k < count
            cur = poly[:, k]
            nxt = poly[rows, (k + 1) % np.maximum(count, 1)]
            dc = sign * (cur[:, axis] - bound)
            dn = sign * (nxt[:, axis] - bound)
            keep = active & (dc >= 0)
            out[rows[keep], m[keep]] = cur[keep]
            m += keep
            cross = active & ((dc >= 0) != (dn >= 0))
            t = dc / np.where(cross, dc - dn, 1.0)
            point = cur + t[:, None] * (nxt - cur)
            out[rows[cross], m[cross]] = point[cross]
            m += cross
        poly, count = out, m
    k = np.arange(_MAXV)
    nxt = poly[rows[:, None], (k[None] + 1) % np.maximum(count, 1)[:, None]]
    cross = poly[..., 0] * nxt[..., 1] - nxt[..., 0] * poly[..., 1]
    return 0.5 * np.abs(np.sum(np.where(k[None] < count[:, None], cross, 0.0), axis=1))


def overlap_matrix(wcs_in, shape_in, wcs_out, shape_out, use=None):
    """Overlap areas of input pixels with output pixels, in output-pixel units.

    Input pixel corners are mapped through the celestial WCSs into the output
    pixel plane, where each input pixel is a quadrilateral and each output
    pixel the unit square around its centre (exact up to the change of the
    projection across one pixel).

    Parameters
    ----------
    wcs_in, wcs_out : astropy.wcs.WCS
        2-D celestial WCSs (same celestial frame assumed).
    shape_in, shape_out : tuple (ny, nx)
    use : ndarray of bool (ny_in, nx_in), optional
        Input pixels to include (default all).

    Returns
    -------
    P : scipy.sparse.csr_matrix (ny_out * nx_out, n_use)
        ``P[j, i]``: area of input pixel ``i`` inside output pixel ``j``, as a
        fraction of the output pixel.
    area : ndarray (n_use,)
        Area of each input pixel in output pixels (``P`` columns sum to it
        where the pixel lies wholly inside the output grid).
    index : ndarray (n_use,)
        Flat indices (into ``shape_in``) of the input pixels, the columns of ``P``.
    """
    ny_in, nx_in = shape_in
    ny_out, nx_out = shape_out
    index = np.flatnonzero(np.ones(shape_in, bool) if use is None else np.asarray(use, bool))
    yc, xc = np.mgrid[0:ny_in + 1, 0:nx_in + 1] - 0.5
    world = wcs_in.pixel_to_world_values(xc.ravel(), yc.ravel())
    with np.errstate(invalid="ignore"):
        ox, oy = wcs_out.world_to_pixel_values(*world)
    ox, oy = ox.reshape(yc.shape), oy.reshape(yc.shape)
    iy, ix = np.unravel_index(index, shape_in)
    cy, cx = [iy, iy, iy + 1, iy + 1], [ix, ix + 1, ix + 1, ix]
    quads = np.stack([np.stack([ox[a, b], oy[a, b]], axis=-1) for a, b in zip(cy, cx)], axis=1)
    ok = np.all(np.isfinite(quads), axis=(1, 2))
    area = np.zeros(index.size)
    qx, qy = quads[..., 0], quads[..., 1]
    area[ok] = 0.5 * np.abs(np.sum(qx[ok] * np.roll(qy[ok], -1, 1)
                                   - np.roll(qx[ok], -1, 1) * qy[ok], axis=1))
    with np.errstate(invalid="ignore"):
        x_lo = np.floor(np.nanmin(qx, axis=1) + 0.5)
        x_hi = np.floor(np.nanmax(qx, axis=1) + 0.5)
        y_lo = np.floor(np.nanmin(qy, axis=1) + 0.5)
        y_hi = np.floor(np.nanmax(qy, axis=1) + 0.5)
    ok &= (x_hi >= 0) & (x_lo <= nx_out - 1) & (y_hi >= 0) & (y_lo <= ny_out - 1)
    n_out = ny_out * nx_out
    if not ok.any():
        return sparse.csr_matrix((n_out, index.size)), area, index
    x_lo, x_hi = np.clip(x_lo, 0, nx_out - 1), np.clip(x_hi, 0, nx_out - 1)
    y_lo, y_hi = np.clip(y_lo, 0, ny_out - 1), np.clip(y_hi, 0, ny_out - 1)
    wx = np.where(ok, x_hi - x_lo + 1, 0).astype(int)
    wy = np.where(ok, y_hi - y_lo + 1, 0).astype(int)
    dy, dx = np.mgrid[0:wy.max(), 0:wx.max()]
    pick = (dx[None] < wx[:, None, None]) & (dy[None] < wy[:, None, None])
    col, jy, jx = np.nonzero(pick)
    ox_pair = x_lo[col] + jx
    oy_pair = y_lo[col] + jy
    a = clip_area(quads[col], ox_pair, oy_pair)
    keep = a > 0
    rows = (oy_pair * nx_out + ox_pair).astype(int)[keep]
    P = sparse.csr_matrix((a[keep], (rows, col[keep])), shape=(n_out, index.size))
    return P, area, index


# --------------------------------------------------------------------------- kernels

def gaussian_kernel(sigma_pix):
    """Discrete circular Gaussian kernel with variance ``sigma_pix**2`` per axis, sum 1.

    Point-sampled out to 4 sigma for ``sigma_pix >= 0.7`` (variance exact to
    0.4%); below, the separable 3-tap ``[a, 1 - 2a, a]`` with ``a = sigma**2 / 2``
    (variance exact); a delta for ``sigma_pix <= 0``. The ratio of two
    pixel-integrated Gaussian PSFs' transforms is a Gaussian of
    ``sigma_t**2 - sigma_s**2``, so this is the matching kernel between them.

    Returns
    -------
    ndarray (2h + 1, 2h + 1)
    """
    s = float(sigma_pix)
    if not s > 0:
        return np.ones((1, 1))
    if s < 0.7:
        a = 0.5 * s * s
        k = np.array([a, 1.0 - 2.0 * a, a])
    else:
        h = int(np.ceil(4.0 * s))
        x = np.arange(-h, h + 1)
        k = np.exp(-0.5 * (x / s) ** 2)
    k /= k.sum()
    return np.outer(k, k)


def convolution_matrix(kernel, shape):
    """Sparse matrix of the 'same'-size convolution with ``kernel`` (zero beyond the edges).

    ``(G @ image.ravel()).reshape(shape)`` equals
    ``scipy.signal.convolve2d(image, kernel, mode='same')`` for odd kernels.
    """
    ny, nx = shape
    ky, kx = kernel.shape
    hy, hx = ky // 2, kx // 2
    yy, xx = np.mgrid[0:ny, 0:nx]
    rows, cols, vals = [], [], []
    for dy in range(-hy, hy + 1):
        for dx in range(-hx, hx + 1):
            w = kernel[dy + hy, dx + hx]
            if w == 0:
                continue
            sy, sx = yy - dy, xx - dx  # out[y, x] += K[dy, dx] * in[y - dy, x - dx]
            ok = (sy >= 0) & (sy < ny) & (sx >= 0) & (sx < nx)
            rows.append((yy * nx + xx)[ok])
            cols.append((sy * nx + sx)[ok])
            vals.append(np.full(int(ok.sum()), w))
    n = ny * nx
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                     np.concatenate(cols))), shape=(n, n))


# --------------------------------------------------------------------------- the stage step

def _footprint(wcs, shape):
    ny, nx = shape
    ra, dec = wcs.pixel_to_world_values([-0.5, nx - 0.5, nx - 0.5, -0.5],
                                        [-0.5, -0.5, ny - 0.5, ny - 0.5])
    return (f"RA {np.min(ra):.5f}..{np.max(ra):.5f}, "
            f"Dec {np.min(dec):+.5f}..{np.max(dec):+.5f}")


def kernel_sigmas(cube, photometry, psf_fwhm=None):
    """Gaussian sigma (flux-map pixels) of the matching kernel at each wavelength.

    Parameters
    ----------
    cube : IFSCube
    photometry : FluxCube
        Gives the target PSF FWHM (``psf_fwhm``, arcsec) and the pixel scale.
    psf_fwhm : float or array (n_wave,), optional
        The cube's PSF FWHM, arcsec; default ``cube.psf_fwhm``.

    Raises
    ------
    InputError
        The cube's PSF is unknown, or broader than the target PSF.
    """
    fwhm = cube.psf_fwhm if psf_fwhm is None else psf_fwhm
    if fwhm is None:
        raise InputError("the PSF FWHM of the cube is not in its header.", cube.path,
                         "give the cube's PSF FWHM in arcsec (psf_fwhm / ifs.psf_fwhm).")
    fwhm = np.broadcast_to(np.asarray(fwhm, dtype=float), cube.wave.shape)
    if not np.all(np.isfinite(fwhm) & (fwhm > 0)):
        raise InputError("the PSF FWHM of the cube is not a positive number.", cube.path,
                         "give the cube's PSF FWHM in arcsec (psf_fwhm / ifs.psf_fwhm).")
    # FWHM on the flux-map grid: + the blur of resampling one spaxel box (p / sqrt 12)
    eff = np.hypot(fwhm, cube.pixscale / np.sqrt(12.0) / FWHM_TO_SIGMA)
    target = float(photometry.psf_fwhm)
    worst = float(eff.max())
    if worst > (1.0 + FWHM_TOLERANCE) * target:
        raise InputError(
            f"the cube's PSF (FWHM {worst:.2f}\" on the flux-map grid) is broader than the "
            f"flux map's target PSF ({target:.2f}\"); spectra cannot be sharpened to match.",
            cube.path, f"rebuild the flux map with images.target_psf_fwhm >= {worst:.2f}, or "
            "check the cube's PSF FWHM.")
    pix = float(np.sqrt(pixel_area_arcsec2(photometry.wcs)))
    var = np.clip(target**2 - eff**2, 0.0, None) * FWHM_TO_SIGMA**2
    return np.sqrt(var) / pix


def _groups(sigma, tol=0.02):
    """Wavelength groups whose kernel sigmas differ by < ``tol`` pixels: list of (sigma, idx)."""
    key = np.round(sigma / tol).astype(int)
    return [(float(np.mean(sigma[key == k])), np.flatnonzero(key == k)) for k in np.unique(key)]


def output_noise_correlation(L, w, crop, radius, half=7):
    """Correlation coefficient of the noise of two output pixels by their offset.

    For ``out = L @ x`` with independent inputs of variance ``w``, the
    covariance of output pixels p and q is ``sum_j L_pj L_qj w_j``. It is
    computed for a block of up to (2 half + 1)² pixels around the centre of
    the footprint, against every pixel within ``radius``, and averaged per
    offset: ``rho(d) = <C(p, p+d) / sqrt(C(p, p) C(p+d, p+d))>``.

    Returns
    -------
    ndarray (2 radius + 1, 2 radius + 1), 1 at the centre.
    """
    ny, nx = crop
    diag = np.asarray(L.multiply(L) @ w).ravel()
    on = np.flatnonzero(diag > 0)
    yc, xc = int(np.median(on // nx)), int(np.median(on % nx))
    ys, xs = np.mgrid[max(yc - half, 0):min(yc + half + 1, ny),
                      max(xc - half, 0):min(xc + half + 1, nx)]
    sub = (ys * nx + xs).ravel()
    sub = sub[diag[sub] > 0]
    cov = (L[sub].multiply(w[None, :]) @ L.T).tocsr()
    rho = np.zeros((2 * radius + 1, 2 * radius + 1))
    py, px = sub // nx, sub % nx
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            qy, qx = py + dy, px + dx
            ok = (qy >= 0) & (qy < ny) & (qx >= 0) & (qx < nx)
            q = qy[ok] * nx + qx[ok]
            ok2 = diag[q] > 0
            if not ok2.any():
                continue
            rows = np.flatnonzero(ok)[ok2]
            c = np.asarray(cov[rows, q[ok2]]).ravel()
            rho[dy + radius, dx + radius] = np.mean(c / np.sqrt(diag[sub[rows]] * diag[q[ok2]]))
    return rho / rho[radius, radius]


def match_cube(cube, photometry, *, psf_fwhm=None, max_lost=0.05, min_good=0.5, chunk=256,
               progress=True, return_noise_corr=False):
    """Bring an IFS cube onto the flux map's grid and target PSF.

    Parameters
    ----------
    cube : IFSCube
        Flux per spaxel (``cube.fscale`` erg/s/cm2/Å) and its variance.
    photometry : FluxCube
        The flux map: its WCS and shape are the output grid, ``psf_fwhm``
        (arcsec) the target PSF, ``fscale`` the output unit.
    psf_fwhm : float or array (n_wave,), optional
        Override of the cube's PSF FWHM, arcsec.
    max_lost : float
        Largest fraction of an output pixel's (kernel-weighted) footprint that
        may fall on masked spaxels or outside the cube; beyond it the pixel is
        NaN at that wavelength.
    min_good : float
        An output pixel gets a spectrum (``mask``) when at least this fraction
        of its wavelengths is good.
    chunk : int
        Wavelengths per block (memory: ~``3 * chunk * n_spaxel`` floats).
    progress : bool
        tqdm progress bar over the blocks.
    return_noise_corr : bool
        Also return the correlation of the output pixels' noise by their offset
        (:func:`output_noise_correlation`, at the median kernel), which the
        PSF matching and the resampling introduce: a bin's summed spectrum
        counts it (:func:`sedmap.binning.bin_spectra`), as the image bins do.

    Returns
    -------
    flux : ndarray (n_wave, ny, nx) float32
        Flux per flux-map pixel, ``photometry.fscale`` erg/s/cm2/Å; NaN = bad.
    var : ndarray (n_wave, ny, nx) float32
        Its variance (``fscale**2``); NaN = bad.
    mask : ndarray (ny, nx) bool
        True where the pixel has a spectrum.
    noise_corr : ndarray (2R+1, 2R+1), only with ``return_noise_corr``

    Raises
    ------
    InputError
        The cube does not overlap the flux map (or too little of it to give
        one pixel a spectrum); its PSF is unknown or broader than the target.
    """
    shape_out = photometry.shape
    ny, nx = shape_out
    n_wave = cube.wave.size
    sig = kernel_sigmas(cube, photometry, psf_fwhm)
    P, area, index = overlap_matrix(cube.wcs, cube.shape, photometry.wcs, shape_out,
                                    use=cube.spaxel_mask)
    if P.nnz == 0:
        raise InputError(
            f"the cube's footprint ({_footprint(cube.wcs, cube.shape)}) does not overlap the "
            f"flux map ({_footprint(photometry.wcs, shape_out)}).", cube.path,
            "check that the cube and the flux map are of the same galaxy, and the WCS of both.")
    # crop: output pixels touched by spaxels, grown by the widest kernel's half-width
    touched = np.unravel_index(np.unique(P.tocoo().row), shape_out)
    grow = int(np.ceil(4.0 * sig.max())) + 1
    y0, y1 = max(touched[0].min() - grow, 0), min(touched[0].max() + grow + 1, ny)
    x0, x1 = max(touched[1].min() - grow, 0), min(touched[1].max() + grow + 1, nx)
    crop = (y1 - y0, x1 - x0)
    rows = ((np.arange(y0, y1)[:, None] * nx) + np.arange(x0, x1)[None]).ravel()
    P = P[rows]
    area = np.where(area > 0, area, 1.0)  # spaxels off the projection have no overlaps anyway

    units = cube.fscale / photometry.fscale
    out_f = np.full((n_wave,) + crop, np.nan, dtype=np.float32)
    out_v = np.full((n_wave,) + crop, np.nan, dtype=np.float32)
    groups = _groups(sig)
    blocks = [(s, idx[i:i + chunk]) for s, idx in groups for i in range(0, idx.size, chunk)]
    ops = {}
    for s, idx in progress_bar(blocks, desc="ifs match", unit="block",
                               disable=not progress):
        if s not in ops:
            L = (convolution_matrix(gaussian_kernel(s), crop) @ P).tocsr()
            ops[s] = (L, L.multiply(L).tocsr())
        L, L2 = ops[s]
        # (n_spaxel, n_block); only this block is copied out of the cube
        f = cube.flux[idx].reshape(idx.size, -1)[:, index].astype(np.float64).T
        v = cube.var[idx].reshape(idx.size, -1)[:, index].astype(np.float64).T
        good = np.isfinite(f) & np.isfinite(v)
        cover = L @ good.astype(float)
        num = L @ (np.where(good, f, 0.0) / area[:, None])
        vnum = L2 @ (np.where(good, v, 0.0) / area[:, None] ** 2)
        ok = cover >= 1.0 - max_lost
        with np.errstate(divide="ignore", invalid="ignore"):
            out_f[idx] = np.where(ok, num / cover * units, np.nan).T.reshape((-1,) + crop)
            out_v[idx] = np.where(ok, vnum / cover**2 * units**2, np.nan).T.reshape((-1,) + crop)
    good_frac = np.mean(np.isfinite(out_f), axis=0)
    mask_c = good_frac >= min_good
    if not mask_c.any():
        raise InputError(
            f"the cube overlaps the flux map ({_footprint(photometry.wcs, shape_out)}) too little "
            f"to give any pixel a spectrum (cube: {_footprint(cube.wcs, cube.shape)}).",
            cube.path, "check that the cube and the flux map are of the same galaxy, and the "
            "WCS of both.")
    out_f[:, ~mask_c] = np.nan
    out_v[:, ~mask_c] = np.nan
    flux = np.full((n_wave, ny, nx), np.nan, dtype=np.float32)
    var = np.full((n_wave, ny, nx), np.nan, dtype=np.float32)
    mask = np.zeros((ny, nx), dtype=bool)
    flux[:, y0:y1, x0:x1] = out_f
    var[:, y0:y1, x0:x1] = out_v
    mask[y0:y1, x0:x1] = mask_c
    if not return_noise_corr:
        return flux, var, mask
    s_mid = float(np.median(sig))
    L = (convolution_matrix(gaussian_kernel(s_mid), crop) @ P).tocsr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN spaxels
        vbar = np.nanmedian(cube.var.reshape(n_wave, -1)[:, index], axis=0).astype(float)
    w = np.where(np.isfinite(vbar), vbar, 0.0) / area**2
    radius = int(min(np.ceil(4.0 * s_mid) + 2, 12))
    return flux, var, mask, output_noise_correlation(L, w, crop, radius)
