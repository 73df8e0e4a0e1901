"""Per-band intermediate of the imaging stage: ``results/{galaxy}/images/{filter}_{step}.fits``.

Layout::

    PRIMARY   PRODUCT='BANDIMAGE', FILTER, SURVEY, PSFFWHM (arcsec), PSFMODEL, MOFFBETA,
              PSFPIX (arcsec, when a PSF image is stored), STEP ('calibrated'|'matched'),
              SOURCE (the raw file), BKGERR (error of the subtracted sky level,
              erg/s/cm2/AA per native pixel), NOUTLIER (matched: extreme or
              non-finite pixels repaired before matching, sedmap.images.outliers),
              KNEG (matched: the matching kernel's negative weight over its
              positive weight; near 1 for PSFs of nearly equal width, whose
              kernel is a ringing sub-pixel smoothing, harmless to the signal
              and its K^2 variance), SEDMAPV, CONFHASH
    DATA      float64 (ny, nx), BUNIT 'erg s-1 cm-2 AA-1' (flux per pixel), WCS
    VAR       float64 (ny, nx), BUNIT 'erg2 s-2 cm-4 AA-2', WCS
    MASK      uint8 (ny, nx), 1 = unusable pixel, WCS
    PSF       optional float64 PSF image (odd size, sum 1), sampled at PSFPIX
"""

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .fits_utils import (
    check_shape,
    flux_bunit,
    flux_var_unit,
    get_hdu,
    get_image,
    header_float,
    image_hdu,
    open_fits,
    primary_hdu,
    read_wcs,
    write_fits,
)

PRODUCT = "BANDIMAGE"

#: A band's optional PSF settings and their values where a band spec leaves them out:
#: the one home of these defaults (the schema's ``images.bands`` items show them,
#: checked equal by tests/test_layers.py; the mock's bands use them too).
PSF_OPTIONS = {"psf_model": "gaussian", "moffat_beta": 4.765, "psf_obscuration": 0.0}


def psf_options(spec):
    """``{psf_model, moffat_beta, psf_obscuration}`` of a band spec or header dict:
    its own values, :data:`PSF_OPTIONS`'s where it leaves one out (or gives None)."""
    out = dict(PSF_OPTIONS)
    out.update({k: spec[k] for k in PSF_OPTIONS if spec.get(k) is not None})
    return {"psf_model": str(out["psf_model"]), "moffat_beta": float(out["moffat_beta"]),
            "psf_obscuration": float(out["psf_obscuration"])}



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
        ``gaussian``, ``moffat`` or ``airy`` (analytic PSFs).
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
    psf_obscuration : float
        Central obscuration of an ``airy`` PSF's aperture, linear ratio (0 <= eps < 1).
    """

    filter: str
    data: np.ndarray
    var: np.ndarray
    wcs: WCS
    psf_fwhm: float
    mask: np.ndarray = None
    psf: np.ndarray = None
    psf_pixscale: float = None
    psf_model: str = PSF_OPTIONS["psf_model"]
    moffat_beta: float = PSF_OPTIONS["moffat_beta"]
    survey: str = "generic"
    path: str = ""
    meta: dict = field(default_factory=dict)
    noise_corr: np.ndarray = None
    psf_obscuration: float = PSF_OPTIONS["psf_obscuration"]

    def __post_init__(self):
        if self.mask is None:
            self.mask = ~(np.isfinite(self.data) & np.isfinite(self.var) & (self.var > 0))

    @property
    def pixscale(self):
        """Pixel scale, arcsec (geometric mean of the two axes)."""
        s = proj_plane_pixel_scales(self.wcs.celestial) * 3600.0
        return float(np.sqrt(s[0] * s[1]))


def write_band_image(band, path, *, step, confhash=None):
    """Write a ``BandImage`` (data in erg/s/cm^2/AA per pixel) atomically."""
    cards = {"FILTER": band.filter, "SURVEY": band.survey}
    if band.psf_fwhm is not None:  # unknown in a calibrated image (set when matching)
        cards["PSFFWHM"] = (float(band.psf_fwhm), "PSF FWHM, arcsec")
    cards.update({"PSFMODEL": band.psf_model, "MOFFBETA": float(band.moffat_beta),
             "PSFOBSC": (float(band.psf_obscuration), "Airy PSF: central obscuration ratio"),
             "STEP": step, "SOURCE": str(band.path)[-60:],
             "BKGERR": (float(band.meta.get("bkg_err", 0.0)),
                        "sky-level error, erg/s/cm2/AA"),
             "SKYERR": (float(band.meta.get("sky_err", 0.0)),
                        "shared sky offset error per pixel (in VAR)"),
             "CALIBERR": (float(band.meta.get("calib_err", 0.0)),
                          "fractional zero-point error (not in VAR)")})
    if band.meta.get("native_fwhm") is not None:
        cards["NATFWHM"] = (float(band.meta["native_fwhm"]), "native PSF FWHM, arcsec")
    if band.meta.get("n_outlier") is not None:
        cards["NOUTLIER"] = (int(band.meta["n_outlier"]),
                             "bad pixels repaired before PSF matching")
    if band.meta.get("kernel_neg") is not None:
        cards["KNEG"] = (float(band.meta["kernel_neg"]),
                         "matching kernel: negative / positive weight")
    if band.psf is not None:
        cards["PSFPIX"] = (float(band.psf_pixscale), "PSF pixel scale, arcsec")
    hdus = [primary_hdu(PRODUCT, confhash, cards),
            image_hdu("DATA", np.asarray(band.data, dtype=float), confhash, band.wcs.celestial,
                      flux_bunit(1.0)),
            image_hdu("VAR", np.asarray(band.var, dtype=float), confhash, band.wcs.celestial,
                      flux_var_unit(1.0)),
            image_hdu("MASK", np.asarray(band.mask, dtype=np.uint8), confhash,
                      band.wcs.celestial)]
    if band.psf is not None:
        hdus.append(image_hdu("PSF", np.asarray(band.psf, dtype=float), confhash))
    if band.noise_corr is not None:
        hdus.append(image_hdu("NOISECORR", np.asarray(band.noise_corr, dtype=float), confhash))
    return write_fits(hdus, path)


def read_band_image(path):
    """Read a band image written by :func:`write_band_image` -> ``BandImage``."""
    hdul = open_fits(path, PRODUCT)
    head = hdul[0].header
    data = get_image(hdul, "DATA", path, 2).astype(float)
    var = get_image(hdul, "VAR", path, 2).astype(float)
    mask = get_image(hdul, "MASK", path, 2).astype(bool)
    check_shape(var, data.shape, "VAR", path, "DATA")
    check_shape(mask, data.shape, "MASK", path, "DATA")
    wcs = read_wcs(get_hdu(hdul, "DATA", path).header, path, "DATA")
    psf = get_image(hdul, "PSF", path, 2).astype(float) if "PSF" in hdul else None
    corr = get_image(hdul, "NOISECORR", path, 2).astype(float) if "NOISECORR" in hdul else None
    return BandImage(filter=str(head.get("FILTER")), data=data, var=var, wcs=wcs,
                     psf_fwhm=header_float(head, "PSFFWHM", path) if "PSFFWHM" in head else None,
                     mask=mask, psf=psf,
                     psf_pixscale=float(head["PSFPIX"]) if psf is not None else None,
                     **psf_options({"psf_model": head.get("PSFMODEL"),
                                    "moffat_beta": head.get("MOFFBETA"),
                                    "psf_obscuration": head.get("PSFOBSC")}),
                     survey=str(head.get("SURVEY", "generic")), path=str(path),
                     meta={"step": head.get("STEP"), "source": head.get("SOURCE"),
                           "bkg_err": float(head.get("BKGERR", 0.0)),
                           "sky_err": float(head.get("SKYERR", 0.0)),
                           "calib_err": float(head.get("CALIBERR", 0.0)),
                           "native_fwhm": (float(head["NATFWHM"]) if "NATFWHM" in head
                                           else None),
                           "n_outlier": (int(head["NOUTLIER"]) if "NOUTLIER" in head
                                         else None),
                           "kernel_neg": (float(head["KNEG"]) if "KNEG" in head
                                          else None)},
                     noise_corr=corr)
