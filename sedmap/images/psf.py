"""PSFs on the common grid, matching kernels, and PSF matching of flux and variance.

Every PSF here is a 2D array with an odd number of pixels on each side, its
centre on the centre of the central pixel, **integrated over pixels** (the
value of a pixel is the fraction of a point source's flux that falls in it)
and normalised to sum 1.

The stage works on the common grid (``grid.reproject_band`` first), so the
source PSF of every band and the target PSF are sampled on the same pixels.
The matching kernel ``K`` solves ``PSF_band * K = PSF_target`` (``*``:
convolution) through the ratio of their Fourier transforms (photutils), and
``match_band`` convolves the flux with ``K`` and the variance with ``K**2``:
for independent pixels, ``Var(sum_j K_j f_j) = sum_j K_j**2 Var(f_j)``.
piXedfit convolves the variance with ``K``, which overestimates the
variance of a smooth kernel by ``1 / sum(K**2)`` (~40x for a kernel of 6"
FWHM on 1.5" pixels).
"""

import numpy as np
from scipy import ndimage
from scipy.optimize import brentq
from scipy.signal import fftconvolve
from scipy.special import erf, j1

from ..constants import FWHM_TO_SIGMA
from ..errors import InputError

try:  # photutils >= 3
    from photutils.psf_matching import SplitCosineBellWindow, TopHatWindow
    from photutils.psf_matching import make_kernel as _make_kernel
except ImportError:  # photutils 2.x
    from photutils.psf.matching import SplitCosineBellWindow, TopHatWindow
    from photutils.psf.matching import create_matching_kernel as _make_kernel

__all__ = [
    "PSF_MODELS",
    "SplitCosineBellWindow",
    "TopHatWindow",
    "airy_lambda_over_d",
    "airy_profile",
    "airy_psf",
    "auto_window",
    "band_kernel",
    "cutoff_window",
    "effective_fwhm",
    "gaussian_psf",
    "kernel_oversampling",
    "load_psf",
    "match_band",
    "matching_kernel",
    "measure_fwhm",
    "moffat_psf",
    "pad_to",
    "psf_for_band",
    "reprojected_fwhm",
    "reprojection_sigma",
    "resample_psf",
    "target_psf_fwhm",
]


#: Fraction by which a source PSF's FWHM may exceed the target's before
#: ``matching_kernel`` refuses (measurement noise on real PSFs).
FWHM_TOLERANCE = 0.01


# ------------------------------------------------------------------ helpers


def _odd_size(size, half, what="PSF"):
    """The stamp side in pixels: ``2 * half + 1`` by default, else ``size`` (odd)."""
    if size is None:
        return 2 * int(half) + 1
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise InputError(f"{what} size must be an odd number of pixels, got {size}.",
                         path="psf", fix="give an odd size (e.g. 2 * half-width + 1)")
    return size


def _check_positive(**values):
    for name, v in values.items():
        if v is None or not np.isfinite(v) or v <= 0:
            raise InputError(f"{name} must be a positive number, got {v!r}.", path="psf",
                             fix=f"set {name} (arcsec) to a positive value")


def pad_to(image, shape):
    """Zero-pad (or centre-crop) an odd-sized image to the odd ``shape``, keeping its centre.

    Parameters
    ----------
    image : ndarray (ny, nx), both odd
    shape : tuple (ny', nx'), both odd

    Returns
    -------
    ndarray of ``shape``
    """
    image = np.asarray(image, dtype=float)
    out = np.zeros(shape, dtype=float)
    (ny, nx), (my, mx) = image.shape, shape
    # overlap of the two centred boxes
    hy, hx = min(ny, my) // 2, min(nx, mx) // 2
    out[my // 2 - hy: my // 2 + hy + 1, mx // 2 - hx: mx // 2 + hx + 1] = \
        image[ny // 2 - hy: ny // 2 + hy + 1, nx // 2 - hx: nx // 2 + hx + 1]
    return out


# ------------------------------------------------------------- analytic PSFs

#: the analytic PSF shapes a band's ``psf_model`` may name (:func:`psf_for_band`)
PSF_MODELS = ("gaussian", "moffat", "airy")


def gaussian_psf(fwhm_arcsec, pixscale, size=None):
    """Circular Gaussian PSF, integrated exactly over square pixels.

    Parameters
    ----------
    fwhm_arcsec : float
        Full width at half maximum, arcsec.
    pixscale : float
        Arcsec per pixel.
    size : int, optional
        Side of the stamp in pixels (odd). Default ``2 * ceil(3 FWHM / pixscale) + 1``
        (a 6 FWHM wide stamp: it holds 1 - 1e-9 of the flux).

    Returns
    -------
    psf : ndarray (size, size)
        Fraction of the flux per pixel, sum 1, centred on the central pixel.
    """
    _check_positive(psf_fwhm=fwhm_arcsec, pixscale=pixscale)
    size = _odd_size(size, np.ceil(3.0 * fwhm_arcsec / pixscale))
    sigma = fwhm_arcsec * FWHM_TO_SIGMA / pixscale  # pixels
    edges = np.arange(size + 1) - size / 2.0
    p1 = np.diff(0.5 * (1.0 + erf(edges / (np.sqrt(2.0) * sigma))))
    psf = np.outer(p1, p1)
    return psf / psf.sum()


def moffat_alpha(fwhm, beta):
    """Moffat core width ``alpha`` (same unit as ``fwhm``) for a FWHM and ``beta``."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_psf(fwhm, beta, pixscale, size=None, oversample=9):
    """Circular Moffat PSF ``(1 + r^2/alpha^2)^-beta``, integrated over square pixels.

    The profile is sampled on an ``oversample`` x ``oversample`` sub-grid of
    every pixel and summed (midpoint rule; error < 1e-4 of the peak for
    FWHM >= 0.8 pixel).

    Parameters
    ----------
    fwhm : float
        Full width at half maximum, arcsec.
    beta : float
        Moffat index (> 1); 4.765 is the atmospheric-turbulence value.
    pixscale : float
        Arcsec per pixel.
    size : int, optional
        Side in pixels (odd). Default: 6 FWHM or the diameter holding 99.9% of
        the flux, ``2 alpha sqrt(1000^(1/(beta-1)) - 1)``, whichever is larger.
    oversample : int
        Sub-pixels per pixel along each axis (odd).

    Returns
    -------
    psf : ndarray (size, size), sum 1
    """
    _check_positive(psf_fwhm=fwhm, pixscale=pixscale)
    if not np.isfinite(beta) or beta <= 1.0:
        raise InputError(f"Moffat beta must be > 1, got {beta!r}.", path="psf",
                         fix="use beta > 1 (4.765 for seeing-limited images)")
    alpha = moffat_alpha(fwhm, beta)
    r999 = alpha * np.sqrt(1000.0 ** (1.0 / (beta - 1.0)) - 1.0)
    size = _odd_size(size, np.ceil(max(3.0 * fwhm, r999) / pixscale))
    ov = int(oversample) | 1
    # sub-pixel centres, in pixels from the stamp centre
    x = (np.arange(size * ov) + 0.5) / ov - size / 2.0
    a = alpha / pixscale
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    fine = (1.0 + r2 / a**2) ** (-beta)
    psf = fine.reshape(size, ov, size, ov).sum(axis=(1, 3))
    return psf / psf.sum()


# ----------------------------------------------------- diffraction-limited PSFs

#: Fraction of an Airy pattern's light that the default stamp of :func:`airy_psf`
#: leaves outside (the rings fall as r^-3: the light beyond r only as 1/r).
AIRY_LIGHT_OUTSIDE = 0.01


def _jinc(x):
    """``2 J1(x) / x``, 1 at x = 0 (the amplitude of a uniformly lit disc's pattern)."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x == 0.0, 1.0, x)
    return np.where(x == 0.0, 1.0, 2.0 * j1(safe) / safe)


def airy_profile(v, obscuration=0.0):
    """Intensity of the Airy pattern of an obscured circular aperture, peak 1.

    ``I(v) = [(2 J1(v)/v - eps^2 2 J1(eps v)/(eps v)) / (1 - eps^2)]^2`` with
    ``v = pi r D / lambda`` (r in radians) and ``eps`` the obscuration's linear
    fraction of the aperture diameter D.

    Parameters
    ----------
    v : float or ndarray
        Dimensionless radius ``pi r / (lambda / D)``.
    obscuration : float
        Central obscuration, linear ratio eps (0 <= eps < 1).
    """
    eps = float(obscuration)
    amp = _jinc(v) - eps**2 * _jinc(eps * np.asarray(v, dtype=float))
    return (amp / (1.0 - eps**2)) ** 2


def _check_obscuration(obscuration):
    eps = obscuration
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not np.isfinite(eps) or not 0.0 <= eps < 1.0:
        raise InputError(f"psf_obscuration must be a number in [0, 1), got {eps!r}.",
                         path="psf", fix="give the central obscuration's linear fraction of "
                                         "the aperture: 0 (none), ~0.11 JWST, ~0.33 HST")
    return float(eps)


def airy_lambda_over_d(fwhm, obscuration=0.0):
    """``lambda / D`` (same unit as ``fwhm``) of the obscured Airy pattern of FWHM ``fwhm``.

    Solved numerically for the half-maximum radius ``v_h`` of
    :func:`airy_profile` (``fwhm = 2 v_h / pi * lambda / D``): 1.029 lambda/D
    for eps = 0, 1.022 for eps = 0.11, 0.972 for eps = 0.33 (an obscuration
    narrows the core and moves its light into the rings).
    """
    _check_positive(psf_fwhm=fwhm)
    eps = _check_obscuration(obscuration)
    # the core falls monotonically from 1 at v = 0 to its first zero, beyond
    # v = 2.405 (J0's first zero, the limit eps -> 1): the half maximum lies inside
    v_half = brentq(lambda v: float(airy_profile(v, eps)) - 0.5, 1e-3, 2.4, xtol=1e-12)
    return np.pi * float(fwhm) / (2.0 * v_half)


def airy_psf(fwhm, obscuration, pixscale, size=None, oversample=9):
    """Diffraction-limited PSF of a circular aperture with a central obscuration,
    integrated over square pixels (a WebbPSF-like core and rings, without spikes).

    The intensity is :func:`airy_profile`, ``[2J1(v)/v - eps^2 2J1(eps v)/(eps v)]^2``
    with ``v = pi r / (lambda/D)``; ``lambda/D`` is solved from ``fwhm`` for that
    ``eps`` (:func:`airy_lambda_over_d`; ``fwhm = 1.029 lambda/D`` for eps = 0).
    It is sampled on an ``oversample`` x ``oversample`` sub-grid of every pixel and
    summed (midpoint rule, as :func:`moffat_psf`), one quadrant in blocks of rows
    and mirrored (the pattern is symmetric), then renormalised to sum 1.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum of the pattern (not pixel-integrated), arcsec.
    obscuration : float
        Linear central obscuration eps, 0 <= eps < 1 (JWST ~0.11, HST ~0.33).
    pixscale : float
        Arcsec per pixel.
    size : int, optional
        Side in pixels (odd). Default: the diameter outside which
        :data:`AIRY_LIGHT_OUTSIDE` (1%) of the infinite pattern's light falls,
        radius ``2 (lambda/D) / (0.01 pi^2 (1 - eps))`` arcsec (the light beyond
        ``v`` is ``2 / (pi v (1 - eps))`` for large v): about 20 FWHM for
        eps = 0, 23 for eps = 0.11, 31 for eps = 0.33; at least 6 FWHM.
    oversample : int
        Sub-pixels per pixel along each axis (odd).

    Returns
    -------
    psf : ndarray (size, size), sum 1
    """
    _check_positive(psf_fwhm=fwhm, pixscale=pixscale)
    eps = _check_obscuration(obscuration)
    lod = airy_lambda_over_d(fwhm, eps)  # arcsec
    r_out = 2.0 * lod / (AIRY_LIGHT_OUTSIDE * np.pi**2 * (1.0 - eps))
    size = _odd_size(size, np.ceil(max(3.0 * fwhm, r_out) / pixscale))
    half, ov = size // 2, int(oversample) | 1
    # sub-pixel centres of the quadrant's pixels 0..half, pixels from the stamp centre
    u = (np.arange((half + 1) * ov) + 0.5) / ov - 0.5
    scale = np.pi * pixscale / lod  # v per pixel
    quad = np.empty((half + 1, half + 1))
    rows = max(1, 2**21 // (ov * ov * (half + 1)))  # pixel rows per block (~16 MB)
    for j0 in range(0, half + 1, rows):
        jend = min(j0 + rows, half + 1)
        uy = u[j0 * ov: jend * ov]
        v = scale * np.hypot(uy[:, None], u[None, :])
        fine = airy_profile(v, eps).reshape(jend - j0, ov, half + 1, ov)
        quad[j0:jend] = fine.sum(axis=(1, 3))
    psf = np.concatenate([quad[:0:-1], quad], axis=0)
    psf = np.concatenate([psf[:, :0:-1], psf], axis=1)
    return psf / psf.sum()


# ------------------------------------------------------------ empirical PSFs


def _centroid(psf):
    """Centroid (y, x) of a PSF's core, pixels: first moments in a circle of
    twice the half-maximum radius, re-centred three times from the peak."""
    yc, xc = np.unravel_index(np.argmax(psf), psf.shape)
    yc, xc = float(yc), float(xc)
    peak = psf.max()
    r_hm = np.sqrt(max(np.count_nonzero(psf >= 0.5 * peak), 1) / np.pi)
    rad = max(2.0 * r_hm, 2.0)
    yy, xx = np.indices(psf.shape, dtype=float)
    for _ in range(3):
        w = np.where((yy - yc) ** 2 + (xx - xc) ** 2 <= rad**2, np.clip(psf, 0, None), 0.0)
        s = w.sum()
        if s <= 0:
            break
        yc, xc = (w * yy).sum() / s, (w * xx).sum() / s
    return yc, xc


def _overlap_matrix(n_out, n_in, centre_in, scale):
    """1D resampling matrix R (n_out, n_in): R[j, k] = length of output pixel j
    inside input pixel k, in input pixels. Output pixel j spans
    ``centre_in + (j - n_out//2 -+ 0.5) * scale`` (input pixel units)."""
    j = np.arange(n_out) - n_out // 2
    lo = centre_in + (j - 0.5) * scale
    hi = centre_in + (j + 0.5) * scale
    k = np.arange(n_in)
    a = np.maximum(lo[:, None], k[None, :] - 0.5)
    b = np.minimum(hi[:, None], k[None, :] + 0.5)
    return np.clip(b - a, 0.0, None)


def resample_psf(psf, from_pixscale, to_pixscale, size=None, subtract_background=True):
    """Resample a PSF image to another pixel scale, centred, odd-sized, sum 1.

    Parameters
    ----------
    psf : ndarray (ny, nx)
        PSF image, any normalisation (e.g. peak 1), sampled at ``from_pixscale``.
    from_pixscale, to_pixscale : float
        Arcsec per pixel of the input and the output.
    size : int, optional
        Output side in pixels (odd). Default: the largest odd stamp that lies
        inside the input image once centred on its centroid.
    subtract_background : bool
        Subtract the median of the outermost 2-pixel frame first. The
        empirical PSFs of Abdurro'uf et al. (GALEX, SDSS, 2MASS) sit on a flat
        pedestal of 1e-4 to 3e-3 of the peak that would otherwise carry 5-30%
        of the "PSF" flux out to the stamp edge.

    Returns
    -------
    psf : ndarray (size, size)
        Fraction of the flux per output pixel, sum 1; the input's centroid
        lies on the centre of the central pixel.

    Notes
    -----
    Downsampling (``to_pixscale >= from_pixscale``) integrates the input,
    taken as constant over each input pixel, over each output pixel: it
    conserves flux exactly and adds the input pixel's box (negligible for
    0.25" input pixels). Upsampling interpolates the surface brightness
    with a cubic spline.
    """
    _check_positive(psf_pixscale=from_pixscale, pixscale=to_pixscale)
    psf = np.array(psf, dtype=float)
    if psf.ndim != 2 or min(psf.shape) < 3:
        raise InputError(f"a PSF must be a 2D image, got shape {psf.shape}.", path="psf")
    psf[~np.isfinite(psf)] = 0.0
    if subtract_background:
        frame = np.ones(psf.shape, bool)
        frame[2:-2, 2:-2] = False
        psf = psf - np.median(psf[frame])
    if psf.max() <= 0:
        raise InputError("the PSF image has no positive pixel.", path="psf",
                         fix="check the PSF file")
    yc, xc = _centroid(psf)
    scale = to_pixscale / from_pixscale  # input pixels per output pixel
    if size is None:
        room = min(yc + 0.5, psf.shape[0] - 0.5 - yc, xc + 0.5, psf.shape[1] - 0.5 - xc)
        size = 2 * max(int(np.floor(room / scale - 0.5)), 1) + 1
    size = _odd_size(size, 0)
    if scale >= 1.0:
        ry = _overlap_matrix(size, psf.shape[0], yc, scale)
        rx = _overlap_matrix(size, psf.shape[1], xc, scale)
        out = ry @ psf @ rx.T
    else:
        j = (np.arange(size) - size // 2) * scale
        yy, xx = np.meshgrid(yc + j, xc + j, indexing="ij")
        out = ndimage.map_coordinates(psf, [yy, xx], order=3, mode="constant", cval=0.0)
    total = out.sum()
    if not total > 0:
        raise InputError("the resampled PSF has no flux.", path="psf",
                         fix="check the PSF file and its pixel scale")
    return out / total


def _header_pixscale(header):
    for key in ("PIXSCALE", "SECPIX", "PIXSCAL1"):
        if key in header:
            return abs(float(header[key]))
    for key in ("CDELT1", "CD1_1"):
        if key in header and float(header[key]) != 0:
            return abs(float(header[key])) * 3600.0
    return None


def load_psf(path, pixscale_file=None, to_pixscale=None, size=None, subtract_background=True):
    """Read a PSF image from FITS and resample it (``resample_psf``).

    Parameters
    ----------
    path : str or Path
        FITS file (may be gzipped); the first HDU holding a 2D image is used.
    pixscale_file : float, optional
        Arcsec per pixel of the file; default from the header (``PIXSCALE``,
        ``SECPIX``, ``CDELT1``/``CD1_1``).
    to_pixscale : float, optional
        Arcsec per pixel wanted; default: the file's (only centred and normalised).
    size, subtract_background
        See ``resample_psf``.

    Returns
    -------
    psf : ndarray, sum 1

    Raises
    ------
    InputError
        Missing, unreadable or corrupt file, no 2D image in it, no pixel scale.
    """
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.data is not None and np.ndim(h.data) == 2), None)
            if hdu is None:
                raise InputError("no 2D image in this file.", path=path,
                                 fix="give a FITS file whose image is the PSF")
            data = np.array(hdu.data, dtype=float)
            header = hdu.header.copy()
    except FileNotFoundError:
        raise InputError("PSF file not found.", path=path, fix="check the psf_file path") from None
    except InputError:
        raise
    except (OSError, TypeError, ValueError, IndexError, KeyError) as exc:  # corrupt FITS
        raise InputError(f"cannot read the PSF file ({type(exc).__name__}: {exc}).", path=path,
                         fix="give a valid FITS image") from None
    if pixscale_file is None:
        pixscale_file = _header_pixscale(header)
        if pixscale_file is None:
            raise InputError("the PSF's pixel scale is unknown (no PIXSCALE/SECPIX/CDELT1 key).",
                             path=path, fix="set psf_pixscale (arcsec per pixel) for this band")
    if to_pixscale is None:
        to_pixscale = pixscale_file
    try:
        return resample_psf(data, pixscale_file, to_pixscale, size=size,
                            subtract_background=subtract_background)
    except InputError as exc:
        raise InputError(exc.problem, path=path, fix=exc.fix) from None


def reprojection_sigma(band):
    """Gaussian sigma (arcsec) of the blur added by reprojecting a band's image.

    ``reproject_exact`` treats each native pixel as a uniform square and
    integrates it over the output pixels: on top of the output pixel (which
    the PSFs here include), a source is spread by one native pixel box,
    variance ``p_in^2 / 12`` per axis, averaged over the sub-pixel phases of
    the two grids (measured: 0.164 arcsec^2 for 1.375" pixels rotated by 7
    degrees, 0.158 predicted). PSF FWHMs and PSF images are taken to describe
    the PSF as seen in the native image (pixel response included), as survey
    values measured on stars do.
    """
    return band.pixscale / np.sqrt(12.0)


def reprojected_fwhm(fwhm, native_pixscale):
    """FWHM (arcsec) of a PSF of ``fwhm`` arcsec on the common grid after reprojection
    from native pixels of ``native_pixscale`` arcsec: widened in quadrature by one
    native pixel box (:func:`reprojection_sigma`)."""
    return float(np.hypot(fwhm, native_pixscale / np.sqrt(12.0) / FWHM_TO_SIGMA))


def effective_fwhm(band, reprojected=True):
    """The band's PSF FWHM on the common grid, arcsec: ``psf_fwhm`` widened in
    quadrature by the reprojection blur (``reprojection_sigma``) when
    ``reprojected``."""
    f = band.psf_fwhm
    if f is None or not np.isfinite(f) or f <= 0:
        raise InputError(f"band {band.filter}: psf_fwhm is missing or not positive ({f!r}).",
                         path=band.path or band.filter, fix="set psf_fwhm (arcsec) for this band")
    return reprojected_fwhm(f, band.pixscale) if reprojected else float(f)


def _gaussian_blur(psf, sigma_pix):
    """Convolve a PSF image with a Gaussian of ``sigma_pix`` pixels (Fourier, exact)."""
    if sigma_pix <= 0:
        return psf
    fy = np.fft.fftfreq(psf.shape[0])[:, None]
    fx = np.fft.rfftfreq(psf.shape[1])[None, :]
    otf = np.exp(-2.0 * np.pi**2 * sigma_pix**2 * (fx**2 + fy**2))
    out = np.fft.irfft2(np.fft.rfft2(psf) * otf, s=psf.shape)
    return out / out.sum()


def psf_for_band(band, pixscale, size=None, reprojected=True):
    """The band's PSF at the common pixel scale.

    Parameters
    ----------
    band : BandImage
        Uses ``psf`` + ``psf_pixscale`` when an image is given, else the
        analytic ``psf_model`` (``gaussian``; ``moffat``, ``moffat_beta``;
        ``airy``, ``psf_obscuration``) of ``psf_fwhm``.
    pixscale : float
        Arcsec per pixel of the common grid.
    size : int, optional
        Side in pixels (odd); default as in the PSF builders.
    reprojected : bool
        Include the blur that ``grid.reproject_band`` adds (one native pixel
        box, ``reprojection_sigma``): the PSF of the reprojected image, which
        is what the matching kernel must start from. Without it, stars on
        1.5" native pixels come out of matching 1.7% too broad in sigma^2,
        2.6% of the peak off the target profile (0.3% with it).

    Returns
    -------
    psf : ndarray (size, size), sum 1, pixel-integrated.
    """
    where = band.path or band.filter
    blur = reprojection_sigma(band) if reprojected else 0.0  # arcsec
    try:
        if band.psf is not None:
            if band.psf_pixscale is None:
                raise InputError("a PSF image is given without its pixel scale.",
                                 fix="set psf_pixscale (arcsec per PSF pixel)")
            psf = resample_psf(band.psf, band.psf_pixscale, pixscale, size=size)
            return _gaussian_blur(psf, blur / pixscale)
        if band.psf_model == "gaussian":
            return gaussian_psf(effective_fwhm(band, reprojected), pixscale, size)
        if band.psf_model == "moffat":
            psf = moffat_psf(band.psf_fwhm, band.moffat_beta, pixscale, size)
            return _gaussian_blur(psf, blur / pixscale)
        if band.psf_model == "airy":
            psf = airy_psf(band.psf_fwhm, band.psf_obscuration, pixscale, size)
            return _gaussian_blur(psf, blur / pixscale)
    except InputError as exc:
        raise InputError(f"band {band.filter}: {exc.problem}", path=where, fix=exc.fix) from None
    raise InputError(f"band {band.filter}: unknown psf_model {band.psf_model!r}.", path=where,
                     fix="use 'gaussian', 'moffat' or 'airy', or give a PSF image")


def measure_fwhm(psf, pixscale=1.0):
    """FWHM of a PSF image: ``2 sqrt(A / pi)`` with A the area above half the
    peak, measured on an 8x cubic-spline upsampling of the image.

    Returns the FWHM in ``pixscale`` units (pixels by default). It is that of
    the pixel-integrated PSF: for FWHM < 2 pixels it is overestimated (by
    ~10% at 1.5 pixel); pass the known FWHMs to ``matching_kernel`` instead.
    """
    psf = np.asarray(psf, dtype=float)
    fine = ndimage.zoom(psf, 8, order=3)
    area = np.count_nonzero(fine >= 0.5 * fine.max()) / 64.0
    return 2.0 * np.sqrt(area / np.pi) * pixscale


# --------------------------------------------------------- matching kernel


def auto_window(psf_target, high=1e-3, low=1e-5):
    """Fourier taper fitted to the target PSF.

    A ``SplitCosineBellWindow`` that is 1 out to the spatial frequency where
    the target's optical transfer function |T| falls below ``high`` (of its
    peak), and tapers to 0 where |T| falls below ``low``. Frequencies the
    target keeps are kept, so ``PSF_source * K = PSF_target`` holds to
    ~``high`` of the peak, while the frequencies where ``T/S`` is only
    noise (empirical source PSFs) are cut. Returns None when the target is
    so undersampled that |T| stays above ``high`` out to Nyquist.
    """
    n = min(psf_target.shape)
    otf = np.abs(np.fft.fftshift(np.fft.fft2(pad_to(psf_target, (n, n)))))
    otf /= otf.max()
    c = (n - 1) / 2.0
    yy, xx = np.indices(otf.shape)
    r = np.hypot(yy - c, xx - c)
    max_r = c

    def radius(level):
        # the outermost frequency radius at which |T| still reaches `level`
        above = r[otf >= level]
        return above.max() if above.size else 0.0

    r_hi = radius(high)
    if r_hi >= max_r:
        return None
    r_lo = min(max(radius(low), r_hi + 0.05 * max_r), max_r)
    beta = r_hi / max_r
    alpha = min((r_lo - r_hi) / max_r, 1.0 - beta)
    return SplitCosineBellWindow(alpha=alpha, beta=beta)


#: Largest factor by which the kernel of a band whose PSF has a hard cut-off in spatial
#: frequency (a diffraction-limited band, :func:`cutoff_window`) may amplify a frequency,
#: |T/S|.
MAX_KERNEL_GAIN = 10.0


def cutoff_window(psf_source, psf_target, max_gain=MAX_KERNEL_GAIN, taper=0.1, low=1e-5):
    """:func:`auto_window` of the target, ending before the frequencies where the kernel
    would amplify by more than ``max_gain`` (``|T| > max_gain |S|``).

    A diffraction-limited PSF (:func:`airy_psf`) transmits no frequency beyond
    ``D / lambda``, while a Gaussian target keeps some there (1.8% of its peak OTF for
    F444W's own FWHM). The Fourier ratio ``T / S`` then grows without bound towards
    the cut-off, up to where photutils' regularisation drops it: F444W's kernel to a
    Gaussian of its own FWHM had sum|K| = 613 and sum K^2 = 70 (the matched noise
    variance per unit input variance; 1.9 for a Moffat of the same FWHM), for a match
    no better than this window's. Here the window is 1 out to ``1 - taper`` of the
    first frequency radius where ``|T| > max_gain |S|`` (both OTFs normalised to 1,
    ``|T| >= low``) and tapers to 0 there: the matched PSF then lacks the target's
    light beyond the cut-off (``~ T(D/lambda)`` of its peak) and nothing is amplified
    by more than ``max_gain``. Where no frequency has that gain, it is
    :func:`auto_window` itself.

    Parameters
    ----------
    psf_source, psf_target : ndarray, same odd shape
        The band's PSF and the target on the kernel's grid.
    max_gain : float
        Largest |T/S| kept.
    taper : float
        Width of the cosine taper, as a fraction of the cut-off radius.
    low : float
        Target OTF level below which frequencies are ignored (auto_window's taper end).

    Returns
    -------
    SplitCosineBellWindow, or None (no taper at all: auto_window's None, no cut-off).
    """
    ps = np.asarray(psf_source, dtype=float)
    pt = np.asarray(psf_target, dtype=float)
    window = auto_window(pt, low=low)
    n = min(pt.shape)
    otf_s, otf_t = (np.abs(np.fft.fftshift(np.fft.fft2(pad_to(p / p.sum(), (n, n)))))
                    for p in (ps, pt))
    c = (n - 1) / 2.0
    yy, xx = np.indices(otf_t.shape)
    r = np.hypot(yy - c, xx - c) / c  # fraction of the largest radius, as the windows
    strained = (otf_t >= low) & (otf_t > max_gain * otf_s)
    if not strained.any():
        return window
    cut = float(r[strained].min())
    beta, end = (1.0, 1.0) if window is None else (window.beta, window.beta + window.alpha)
    if cut >= end:
        return window
    start = min(beta, (1.0 - taper) * cut)
    return SplitCosineBellWindow(alpha=cut - start, beta=start)


def matching_kernel(psf_source, psf_target, window="auto", *, fwhm_source=None,
                    fwhm_target=None, name=None, regularization=1e-4):
    """Kernel K with ``psf_source * K = psf_target`` (photutils, Fourier ratio).

    Parameters
    ----------
    psf_source, psf_target : ndarray, odd sides
        PSFs on the same pixel grid (the common grid); the smaller is
        zero-padded to the larger.
    window : "auto", None or callable
        Fourier taper (photutils window class instance); ``"auto"``:
        ``auto_window(psf_target)``.
    fwhm_source, fwhm_target : float, optional
        Known FWHMs (arcsec) for the "source broader than target" check; when
        either is missing both are measured (``measure_fwhm``, in pixels).
    name : str, optional
        Band (filter and file) named in errors.
    regularization : float
        photutils threshold: frequencies where the source OTF is below this
        fraction of its peak are dropped.

    Returns
    -------
    kernel : ndarray, shape of the (padded) PSFs, sum 1. A source PSF equal
    to the target (the worst band itself) gets the identity (a delta).

    Notes
    -----
    The Fourier ratio is exact on the periodic grid: PSF * K reproduces the
    target to ~2e-4 of its peak (the ``auto`` taper) for Gaussian, Moffat
    and the empirical GALEX/SDSS/2MASS PSFs. For a source PSF only slightly
    narrower than the target (FWHM ratio > ~0.95) the kernel is a sub-pixel
    smoothing and oscillates (sum|K| of 2-3); that is harmless for the
    PSF-convolved signal and its K^2 variance, and ``match_band`` masks by
    the signed kernel weight for that reason.

    Raises
    ------
    InputError
        The source PSF is broader than the target (FWHM larger by more than
        ``FWHM_TOLERANCE``): no kernel can sharpen it.
    """
    ps = np.asarray(psf_source, dtype=float)
    pt = np.asarray(psf_target, dtype=float)
    for p in (ps, pt):
        if p.ndim != 2 or p.shape[0] % 2 == 0 or p.shape[1] % 2 == 0:
            raise InputError(f"PSFs must be 2D with odd sides, got {p.shape}.",
                             path=name or "psf", fix="build PSFs with sedmap.images.psf")
    shape = (max(ps.shape[0], pt.shape[0]), max(ps.shape[1], pt.shape[1]))
    ps, pt = pad_to(ps, shape), pad_to(pt, shape)
    ps, pt = ps / ps.sum(), pt / pt.sum()

    if fwhm_source is not None and fwhm_target is not None:
        fs, ft, unit = float(fwhm_source), float(fwhm_target), "arcsec"
    else:
        fs, ft, unit = measure_fwhm(ps), measure_fwhm(pt), "pixels"
    if fs > (1.0 + FWHM_TOLERANCE) * ft:
        raise InputError(
            f"{'band ' + name + ': ' if name else ''}its PSF (FWHM {fs:.2f} {unit}) is broader "
            f"than the target PSF (FWHM {ft:.2f} {unit}); a matching kernel cannot sharpen it.",
            path=name or "psf",
            fix=f"set images.target_psf_fwhm to at least {fs:.2f} {unit} (the worst PSF of "
                "all bands), or leave it unset to use the worst band's PSF")
    if np.max(np.abs(ps - pt)) <= 1e-6 * pt.max():
        # same PSF (the worst band itself): the identity, not a low-pass filter
        kernel = np.zeros(shape)
        kernel[shape[0] // 2, shape[1] // 2] = 1.0
        return kernel
    if isinstance(window, str):
        if window != "auto":
            raise InputError(f"unknown window {window!r}.", path="psf",
                             fix="use 'auto', None or a photutils window")
        window = auto_window(pt)
    kernel = _make_kernel(ps, pt, window=window, regularization=regularization)
    return kernel / kernel.sum()


#: Sub-pixels across the source PSF's FWHM on the grid a matching kernel is built on
#: when the common grid undersamples that PSF (:func:`kernel_oversampling`).
MIN_PSF_SAMPLES = 3.0

#: Largest broadening of the target's FWHM (fractional) that building a kernel on the
#: common grid itself may leave; beyond it the kernel is built on a finer grid.
MAX_KERNEL_BROADENING = 0.02


def kernel_oversampling(fwhm_source, fwhm_target, pixscale):
    """Odd factor ``n`` by which the grid a matching kernel is built on subdivides the
    common grid's pixels (1: the common grid itself).

    The reprojected image of a band whose PSF is narrower than a common pixel holds
    each source in the pixel it falls in: its PSF on the grid, pixel-integrated at the
    pixel's centre, is a delta, and a kernel divided by it (the Fourier ratio) keeps
    the whole pixel-integrated target, so the matched image carries the output pixel's
    box twice: its variance ``p**2 / 12`` too much (for a 2" band matched to a 25"
    target on 10" pixels, 3.7% in FWHM). Built where the source PSF spans
    :data:`MIN_PSF_SAMPLES` sub-pixels, the ratio is the continuous kernel, and its
    samples at the common pixels' centres (:func:`band_kernel`) leave the box once,
    as in the target. ``n > 1`` where the source PSF spans fewer than
    ``MIN_PSF_SAMPLES`` common pixels and the box would broaden the target's FWHM by
    more than :data:`MAX_KERNEL_BROADENING` (``(p**2 / 12) / sigma_t**2 / 2``); below
    that (the 12-band demo's SDSS bands on 1.5" pixels: 1.2%) the kernel is built
    on the common grid as it always was.

    Parameters
    ----------
    fwhm_source, fwhm_target : float
        The band's PSF on the common grid and the target, arcsec.
    pixscale : float
        Arcsec per common-grid pixel.
    """
    sigma_t = float(fwhm_target) * FWHM_TO_SIGMA
    if pixscale**2 / 12.0 / sigma_t**2 / 2.0 <= MAX_KERNEL_BROADENING:
        return 1
    n = int(np.ceil(MIN_PSF_SAMPLES * pixscale / float(fwhm_source)))
    return max(1, n + 1 - n % 2)


def band_kernel(band, pixscale, target_fwhm, size, fwhm_source, regularization=1e-4):
    """Matching kernel (``size`` x ``size``, odd, sum 1) of a band to a Gaussian target
    on the common grid, built at the sampling :func:`kernel_oversampling` asks for.

    With ``n = 1`` the band's PSF (:func:`psf_for_band`, reprojection blur included)
    and the pixel-integrated target are built on the common grid and
    :func:`matching_kernel` divides them. With ``n > 1`` both are built on
    sub-pixels of ``pixscale / n`` over the same ``size * pixscale`` arcsec, divided
    there, and the continuous kernel is sampled at the common pixels' centres
    (every n-th sub-pixel: ``n`` and ``size`` are odd, so the centres coincide) and
    renormalised. Either way the kernel sums to 1: flux is conserved. The kernel is
    tapered before any frequency it would amplify more than :data:`MAX_KERNEL_GAIN`
    times (:func:`cutoff_window`): a diffraction-limited PSF's cut-off, analytic
    (``airy``) or in a PSF file (WebbPSF, TinyTim); for the Gaussian, Moffat and
    empirical ground-based and IRAC PSFs of the demos and real examples this is
    photutils' window as it was.

    Parameters
    ----------
    band : BandImage
    pixscale : float
        Arcsec per common-grid pixel.
    target_fwhm : float
        The target Gaussian's FWHM, arcsec.
    size : int
        Side of the kernel, common pixels (odd).
    fwhm_source : float
        The band's FWHM on the common grid, arcsec (the broader-than-target check).
    """
    n = kernel_oversampling(fwhm_source, target_fwhm, pixscale)
    if n == 1:
        src = pad_to(psf_for_band(band, pixscale), (size, size))
        tgt = pad_to(gaussian_psf(target_fwhm, pixscale), (size, size))
        src, tgt = src / src.sum(), tgt / tgt.sum()
        return matching_kernel(src, tgt, cutoff_window(src, tgt),
                               fwhm_source=fwhm_source, fwhm_target=target_fwhm,
                               name=band.filter, regularization=regularization)
    sub = pixscale / n
    src = psf_for_band(band, sub, size=size * n)
    tgt = gaussian_psf(target_fwhm, sub, size=size * n)
    fine = matching_kernel(src, tgt, cutoff_window(src, tgt), fwhm_source=fwhm_source,
                           fwhm_target=target_fwhm, name=band.filter,
                           regularization=regularization)
    idx = (size * n) // 2 + n * (np.arange(size) - size // 2)
    kernel = fine[np.ix_(idx, idx)]
    return kernel / kernel.sum()


def kernel_negative_fraction(kernel):
    """The kernel's negative weight over its positive weight (0 for a positive
    kernel). Recorded as ``KNEG`` in each matched band's header: near 1 where the
    band's PSF is nearly the target's (the kernel then rings about a delta; the
    signed coverage of :func:`match_band` keeps that harmless)."""
    k = np.asarray(kernel, dtype=float)
    pos = k[k > 0].sum()
    return float(-k[k < 0].sum() / pos) if pos > 0 else float("nan")


# --------------------------------------------------------------- matching


def match_band(data, var, kernel, mask=None, max_lost=0.01, var_factor=1.0):
    """Convolve a band to the target PSF: flux with K, variance with K**2.

    Parameters
    ----------
    data : ndarray (..., ny, nx)
        Flux per pixel (erg/s/cm^2/AA) on the common grid; leading axes (e.g.
        noise realisations) are convolved independently and share ``var``
        and ``mask``.
    var : ndarray (ny, nx)
        Its variance, (erg/s/cm^2/AA)^2, pixels taken as independent.
    kernel : ndarray, odd sides, sum 1
        ``matching_kernel``; must be smaller than the image (``grid.check_psf_fits``).
    mask : ndarray of bool (ny, nx), optional
        True where a pixel is unusable; NaN or infinite data/var are masked too.
    max_lost : float
        Largest kernel weight ``|sum K|`` (K sums to 1) that may fall on
        masked pixels or outside the image before the output pixel is masked.
    var_factor : float
        Multiplies the output variance: ``grid.noise_correlation_factor`` for
        a reprojected band (the reprojected pixels are not independent).

    Returns
    -------
    data : ndarray (..., ny, nx), var : ndarray (ny, nx)
        Convolved flux and variance; NaN where masked.

    Notes
    -----
    Masked pixels are set to 0 and a coverage map ``c = valid * K`` is
    convolved alongside (``fftconvolve``, mode ``same``). An output pixel is
    masked when the kernel weight on masked pixels or beyond the image edge,
    ``|1 - c|``, exceeds ``max_lost`` (so a ring of about the kernel's
    half-width at the edges and around masked pixels is masked; the signed
    weight is used because kernels of nearly equal PSFs oscillate, and their
    oscillations cancel on the smooth, PSF-convolved signal). Where that signed
    weight is near 1 only by chance inside the ring (isolated pixels, lines one or
    two pixels wide), the pixels are masked too: the unmasked area is opened with
    a 3 x 3 square (``scipy.ndimage.binary_opening``). Elsewhere the
    missing weight is restored by dividing by ``c``: ``data' = (d*K) / c``
    and ``var' = (v*K^2) / c^2``, the exact variance of the renormalised
    weighted sum.
    """
    data = np.asarray(data, dtype=float)
    var = np.asarray(var, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    if data.shape[-2:] != var.shape:
        raise InputError(f"data {data.shape} and variance {var.shape} differ in shape.",
                         path="images")
    lead = data.shape[:-2]
    data = data.reshape((-1,) + var.shape)
    valid = np.isfinite(data).all(axis=0) & np.isfinite(var)
    if mask is not None:
        valid &= ~np.asarray(mask, dtype=bool)
    d0 = np.where(valid, data, 0.0)
    v0 = np.where(valid, var, 0.0)
    w = valid.astype(float)
    kernel = kernel / kernel.sum()
    cover = fftconvolve(w, kernel, mode="same")
    out_d = fftconvolve(d0, kernel[None], mode="same", axes=(-2, -1))
    out_v = fftconvolve(v0, kernel**2, mode="same") * float(var_factor)
    bad = (np.abs(1.0 - cover) > max_lost) | ~valid | (cover <= 0)
    # where an oscillating kernel reaches masked pixels, its signed weight there can
    # cancel by chance: lone pixels and 1-2 pixel lines pass inside the masked ring
    # (a lattice along the edges of JWST's Airy-to-Gaussian kernels); only areas at
    # least 3 pixels across are kept
    bad = ~ndimage.binary_opening(~bad, structure=np.ones((3, 3), bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        out_d = np.where(bad, np.nan, out_d / cover)
        out_v = np.where(bad, np.nan, out_v / cover**2)
    return out_d.reshape(lead + var.shape), out_v


def target_psf_fwhm(bands, reprojected=True):
    """The worst (largest) PSF FWHM of the bands, arcsec: the default target.

    With ``reprojected`` (default) each band's FWHM is that on the common grid
    (``effective_fwhm``), so that the worst band needs no sharpening either.
    """
    fwhms = [effective_fwhm(b, reprojected) for b in bands]
    if not fwhms:
        raise InputError("no bands to take the target PSF from.", path="images.bands",
                         fix="list at least one band")
    return max(fwhms)
