"""The in-memory image of one band, shared by every imaging step."""

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales


@dataclass(eq=False)
class BandImage:
    """One band's image.

    Attributes
    ----------
    filter : str
        sedmap filter name (``sedmap.filters``).
    data : ndarray (ny, nx)
        Background-subtracted flux per pixel, erg/s/cm^2/AA (not scaled).
    var : ndarray (ny, nx)
        Variance of ``data``, (erg/s/cm^2/AA)^2; finite and > 0 where ``mask`` is False.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``data``.
    psf_fwhm : float
        FWHM of the PSF, arcsec.
    mask : ndarray (ny, nx) of bool
        True where a pixel is unusable (no data, saturated, NaN variance...).
    psf : ndarray or None
        PSF image (odd size, sum 1) sampled at ``psf_pixscale``, or None for an
        analytic PSF of ``psf_fwhm`` (``psf_model``).
    psf_pixscale : float or None
        Arcsec per PSF pixel.
    psf_model : str
        ``gaussian`` or ``moffat`` (analytic PSFs).
    moffat_beta : float
    survey : str
    path : str
        The file it came from (for error messages).
    meta : dict
        Anything else worth keeping (zero point, exposure time...).
    noise_corr : ndarray (2L+1, 2L+1) or None
        Correlation coefficient of the noise of two pixels by their offset
        (``grid.noise_correlation``; set on matched bands), None for
        independent pixels.
    """

    filter: str
    data: np.ndarray
    var: np.ndarray
    wcs: WCS
    psf_fwhm: float
    mask: np.ndarray = None
    psf: np.ndarray = None
    psf_pixscale: float = None
    psf_model: str = "gaussian"
    moffat_beta: float = 4.765
    survey: str = "generic"
    path: str = ""
    meta: dict = field(default_factory=dict)
    noise_corr: np.ndarray = None

    def __post_init__(self):
        if self.mask is None:
            self.mask = ~(np.isfinite(self.data) & np.isfinite(self.var) & (self.var > 0))

    @property
    def pixscale(self):
        """Pixel scale, arcsec (geometric mean of the two axes)."""
        s = proj_plane_pixel_scales(self.wcs.celestial) * 3600.0
        return float(np.sqrt(s[0] * s[1]))
