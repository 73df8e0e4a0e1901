"""The PSF each mock band is rendered with: a circular Gaussian of ``psf_fwhm`` (the
default), a Moffat (``psf_model: moffat``, ``moffat_beta``), the Airy pattern of an
obscured circular aperture (``psf_model: airy``, ``psf_obscuration``: a WebbPSF-like
core and rings, without the spikes), or an empirical PSF image
(``psf_file`` + ``psf_pixscale``, e.g. the IRAC in-flight PSFs), resampled to the
band's sub-pixels with :func:`sedmap.images.psf.load_psf`, as the imaging stage
reads the same file."""

import numpy as np
from scipy.signal import fftconvolve

from ..images.psf import airy_psf, load_psf, moffat_psf
from .geometry import _block_sum, _psf_convolve
from .survey_base import band_option


def is_gaussian(band):
    """Whether the band's PSF is the Gaussian of its ``psf_fwhm`` (no ``psf_file``, no
    other ``psf_model``)."""
    return "psf_file" not in band and band_option(band, "psf_model") == "gaussian"


def psf_kernel(band, sub):
    """The band's PSF on square sub-pixels of ``sub`` arcsec (sum 1, odd sides, centred),
    or None for the Gaussian, which :func:`convolve_psf` applies analytically."""
    if is_gaussian(band):
        return None
    if "psf_file" in band:
        return load_psf(band["psf_file"], float(band["psf_pixscale"]), to_pixscale=sub)
    fwhm = float(band["psf_fwhm"])  # a Moffat or an Airy pattern
    # sub-pixels far smaller than the core need no sub-sampling of their own
    over = 1 if fwhm / sub > 20 else 9
    if band_option(band, "psf_model") == "airy":
        return airy_psf(fwhm, float(band_option(band, "psf_obscuration")), sub,
                        oversample=over)
    return moffat_psf(fwhm, float(band_option(band, "moffat_beta")), sub, oversample=over)


def convolve_psf(img, band, sub):
    """``img`` (sub-pixels of ``sub`` arcsec on its last two axes) convolved with the
    band's PSF, zero outside the image."""
    kernel = psf_kernel(band, sub)
    if kernel is None:
        return _psf_convolve(img, band["psf_fwhm"], sub)
    kernel = kernel.reshape((1,) * (img.ndim - 2) + kernel.shape)
    return fftconvolve(img, kernel, mode="same", axes=(-2, -1))


#: sub-pixels per native pixel (each axis), at least, on which point sources are placed
STAR_SUBSAMPLE = 5


def point_sources(shape, k, xy, flux, band):
    """Point sources at native pixel positions ``xy`` [(x, y), 0-based] with ``flux``
    each, seen through the band's Moffat, Airy or PSF image, on the native pixels ``shape``
    (Gaussian bands: :func:`sedmap.mock.render._pixel_gaussian`, exact integrals).

    Each source is rendered in a cutout of sub-pixels (``max(k, STAR_SUBSAMPLE)`` per
    native pixel), shared bilinearly between the four sub-pixels around it (its
    centroid kept, at most a fifth of a native pixel of blur), convolved with the PSF
    there and summed to native pixels; the cutout holds the whole PSF, so its flux is
    the source's (less what falls off the image).
    """
    ny, nx = shape
    kk = max(int(k), STAR_SUBSAMPLE)
    kernel = psf_kernel(band, band["pixscale"] / kk)  # a Moffat, Airy or PSF image
    h = int(np.ceil(kernel.shape[0] / kk / 2.0)) + 1   # cutout half-side, native pixels
    m = 2 * h + 1
    out = np.zeros(shape)
    for (x, y), f in zip(xy, flux):
        ix, iy = round(x), round(y)
        fine = np.zeros((m * kk, m * kk))
        fx, fy = (x - ix + h + 0.5) * kk - 0.5, (y - iy + h + 0.5) * kk - 0.5
        jx, jy = int(np.floor(fx)), int(np.floor(fy))
        wx, wy = fx - jx, fy - jy
        for dy, wyy in ((0, 1 - wy), (1, wy)):
            for dx, wxx in ((0, 1 - wx), (1, wx)):
                fine[jy + dy, jx + dx] += f * wyy * wxx
        cut = _block_sum(fftconvolve(fine, kernel, mode="same"), kk)
        y0, x0 = iy - h, ix - h
        ys, xs = slice(max(y0, 0), min(y0 + m, ny)), slice(max(x0, 0), min(x0 + m, nx))
        if ys.start < ys.stop and xs.start < xs.stop:
            out[ys, xs] += cut[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return out
