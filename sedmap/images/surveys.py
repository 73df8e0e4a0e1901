"""Read one survey image into a :class:`~sedmap.io.bandimage.BandImage`.

``load_band(spec)`` implements docs/surveys.md: it opens the file, reads the
science image and its celestial WCS, optionally cleans cosmic rays
(:mod:`.cosmic`), estimates the background (:mod:`.background`), builds the
variance with the survey's own recipe in native units, and converts data and
variance to erg/s/cm^2/AA per pixel.

Band spec keys (``images.bands`` entries)
-----------------------------------------
``filter``, ``survey``, ``file`` (required); ``hdu`` (index or EXTNAME of the
science image; default: the survey's science extension, else the first 2-D
image); ``psf_fwhm`` (arcsec) or ``psf_file`` + ``psf_pixscale`` (arcsec/px;
the FWHM is then measured from the PSF image unless ``psf_fwhm`` is given);
``psf_model`` (``gaussian`` | ``moffat`` | ``airy``), ``moffat_beta`` and
``psf_obscuration`` (the Airy pattern's central obscuration, 0 <= eps < 1); one of
``unc_file`` / ``weight_file`` / ``var_file`` where the survey takes one;
``cosmic_rays`` (bool); ``calib_err`` (fractional 1-sigma calibration error of
the band's zero point; default: the survey's documented value, see below);
``gain`` (overrides the header);
``zeropoint`` (AB; generic only); ``sky`` (generic only: does the image still
hold the sky?); ``bkg_box`` (background mesh, pixels, default 64). Any other
key is an error, so a typo cannot be silently ignored.

Checks before the recipe runs
-----------------------------
Each recipe assumes its survey's own delivery format; ``SURVEYS`` states the
assumptions and ``_check_assumptions`` verifies them for every survey, so a new
survey cannot skip them. On a mismatch ``InputError`` names what differs and
the file, and points a processed file to ``survey: generic`` (BUNIT or
``zeropoint`` plus a noise map). There is no fallback.

* Filter: spitzer, herschel, jwst, hsc and legacy take only their own filters
  (``spitzer_irac_36..80``, ``spitzer_mips_24/70/160``; ``herschel_pacs_70/100/160``,
  ``herschel_spire_250/350/500``; ``jwst_nircam_*``, ``jwst_miri_*``; ``hsc_g..y``;
  ``decam_g/r/i/z``, ``bass_g/r``, ``mzls_z``).
* Pixel scale, from the WCS (``proj_plane_pixel_scales``), each axis within
  ``PIXSCALE_TOL`` (5%) of galex 1.5", sdss 0.396", 2mass 1.0", wise 1.375",
  des 0.263", panstarrs 0.25", hsc 0.168", legacy 0.262"; hst 0.02-0.21"
  (drizzled products come at any output scale and drizzling conserves flux, so
  only ground-based scales are refused); ranges per band for the surface-
  brightness maps: spitzer IRAC 0.55-1.25", MIPS 24/70/160 1.2-2.6", 4-10",
  8-16"; herschel PACS 70/100 1-3.2", PACS 160 1-6.4", SPIRE 250/350/500 3-8",
  4-12", 6-16"; jwst NIRCam 0.01-0.12", MIRI 0.03-0.2"; generic: any. A frame
  reprojected onto larger pixels still holds
  values per native pixel: read as the survey's, every flux would be off by the
  pixel-area ratio (an SDSS frame on 1.19" pixels: 9x too faint).
* BUNIT, when present and understood (:func:`bunit_kind`), of the kind the
  recipe reads: counts (2mass, wise, des, panstarrs, hsc), a count rate (galex,
  hst), nanomaggies (sdss, legacy), MJy/sr (spitzer, jwst), Jy/pixel, Jy/beam or
  MJy/sr (herschel). E.g. a WISE image in MJy/sr, an SDSS image in DN
  or an HST image in ELECTRONS (not per second) is refused. Absent or
  unparsable BUNITs pass, except for spitzer, herschel and jwst, whose
  conversion is read from BUNIT: it must be present and parsable.
* FILTER/BAND: a header that names another band than the spec's ``filter``
  is refused: galex ``BAND`` (1 NUV, 2 FUV), sdss ``FILTER`` (``'g'``), 2mass
  ``FILTER`` (``'j'``), wise ``BAND`` (1-4), des ``BAND``/``FILTER`` (``'g
  DECam SDSS c0001 ...'``: first word), panstarrs ``FPA.FILTER`` (``'g.00000'``:
  before the dot), hst ``FILTER``/``FILTER1``/``FILTER2`` (``F814W``), spitzer
  ``INSTRUME`` + ``CHNLNUM`` (IRAC 1-4, MIPS 1-3 = 24/70/160 um), herschel
  ``WAVELNTH``/``DETECTOR``/``FILTER`` (``250.0``, ``PSW``), jwst ``FILTER``/
  ``PUPIL`` (``F200W``), hsc ``FILTER`` (``HSC-I2``), legacy ``BAND``/``FILTER``
  (``g``); a value that is a sedmap filter name is compared as a name (generic
  too). Values the
  survey does not write (``'CLEAR2L'``, ``'unknown'``) are ignored, and a
  header that also names the configured band is not refused.
* The header keys and HDUs the recipe reads, e.g. sdss: HDU 1 calib vector or
  ``NMGY``, and ``GAIN``/``DARKVAR`` or ``CAMCOL``; des: ``MAGZERO``, ``GAIN``
  and ``WGT`` (or ``weight_file``); jwst: ``BUNIT``, ``PIXAR_SR`` and ``ERR`` (or
  ``VAR_POISSON`` + ``VAR_RNOISE``, or ``unc_file``); hsc: ``VARIANCE`` (or
  ``var_file``); legacy: ``weight_file`` or an ``INVVAR``/``IVAR`` extension.

Calibration error
-----------------
``meta['calib_err']`` is the band's fractional zero-point uncertainty: the
spec's ``calib_err`` if given, else the survey's documented value
(:func:`default_calib_err`; docs/surveys.md lists them with references:
galex 0.052 FUV / 0.026 NUV, sdss 0.05 u / 0.02 gri / 0.03 z, 2mass 0.027 J /
0.028 H, Ks, wise 0.024 / 0.028 / 0.045 / 0.057, des 0.01, panstarrs 0.015
griz / 0.02 y, hst 0.02, spitzer IRAC 0.03 / MIPS 0.04, 0.05, 0.12, herschel
PACS 0.05 / SPIRE 0.07, jwst NIRCam 0.02 / MIRI 0.03, hsc 0.02, legacy 0.02,
generic 0: the user must state it);
``meta['calib_err_source']`` says which. It scales every pixel of the band
together, so it is NOT part of the pixel variance (added per pixel it would
shrink by sqrt(N) in a bin of N pixels, and cap every bin's S/N at
1/calib_err); the fit adds ``(calib_err * F_bin)**2`` to each binned flux's
variance, in quadrature with ``fit.sys_err``.

Background
----------
Surveys whose images still hold the sky (galex, 2mass, wise, spitzer,
herschel, jwst, generic with ``sky: true``) get the full ``Background2D`` map
subtracted: IRAC/MIPS mosaics keep the zodiacal light, SPIRE maps have an
arbitrary zero level, and an ``_i2d`` keeps whatever the skymatch step left
(MIRI's thermal background is large). The images of sky-subtracted surveys
(sdss, hst, des, panstarrs, hsc, legacy, generic) are left as they are: their
pipelines fitted the sky on scales far larger than a cutout,
while a local estimate on a galaxy-dominated cutout measures galaxy light.
On the SN 2006bh cutouts the source-masked "residual" of DES and PS1 is
+0.5 sigma per pixel but falls with radius from the galaxy (1.0, 0.4, 0.16
sigma at 90, 110, 145 px): it is the elliptical's outer halo, not a sky
pedestal; on the mock HST stamp (sky exactly 0) it is +0.12 sigma. It is
reported as ``meta['residual_level']`` (native units) and not subtracted.
``rms_bkg`` is the ``Background2D`` rms map either way.

Variance recipes (native units; ``raw`` = pixel value before our background
subtraction, ``S`` = after it, = ``raw`` for sky-subtracted surveys; see
docs/surveys.md)
----------------------------------------------------------------------------
* galex: ``max(raw, bkg) / EXPTIME``. docs/surveys.md
  says ``max(raw, 0)``; the two agree wherever a pixel is above the sky, but
  GALEX counts are so low (FUV sky ~1e-3 cps/px) that many pixels record zero
  photons, and a zero variance would mask them (and, beyond 50% of the
  image, reject it). The sky model's Poisson variance is the right floor.
  Pixels in blocks of >= 15x15 exact zeros are outside the detector's field
  and are masked. The background is the sigma-clipped *mean* per box: at
  < 1 count per pixel the median of Poisson counts is 0.
* sdss: ``dn = raw / calib + sky_dn``; ``var = (max(dn, 0) / gain +
  darkVariance) * calib**2`` (the clip only matters for pixels more negative
  than the sky, i.e. artefacts). ``calib`` is the HDU1 vector per column and
  ``sky_dn`` the bilinear interpolation of HDU2's ``ALLSKY`` at (``YINTERP``
  [row], ``XINTERP`` [col]). Cutouts (image narrower than the calib vector,
  or shape unlike ``XINTERP``/``YINTERP``): the column is unknown, so
  ``calib`` is the median of the vector (not ``NMGY``: the vector includes
  the flat field, ~2% off ``NMGY``) and ``sky_dn`` the median of ``ALLSKY``.
  Without HDU1, ``calib = NMGY``. Without HDU2, the sky term comes from the
  measured noise: ``var = rms_bkg**2 + max(raw, 0) * calib / gain``.
  ``meta['sdss_mode']`` says which was used. Gain and dark variance: the
  SDSS DR table per camcol/filter (run-dependent entries by ``RUN``), unless
  the header has ``GAIN``/``DARKVAR`` (or the spec ``gain``). As in
  docs/surveys.md, 1 nmgy = 3.631e-6 Jy in every band, although the SDSS
  docs put u and z ~0.04 and 0.02 mag off AB (u_AB = u - 0.04,
  z_AB = z + 0.02), which is not applied.
* 2mass: ``max(S, 0) / (GAIN * NFRAMES) + rms_bkg**2`` (GAIN 10, NFRAMES 6
  unless in the header or spec).
* wise: ``unc**2`` from ``unc_file``; without it ``rms_bkg**2`` (sky noise
  only, flagged in ``meta['var_recipe']``).
* hst: ``1/WHT + max(raw, 0) / EXPTIME``; WHT from the ``WHT`` extension or
  ``weight_file``, read as inverse variance in (e-/s)^-2 (``final_wht_type``
  IVM or ERR in AstroDrizzle; the default EXP weight is an exposure time,
  not an inverse variance).
* des: ``1/WGT + max(raw, 0) / GAIN`` (``WGT`` extension or ``weight_file``).
* panstarrs: the variance map if given (``var_file``, or ``weight_file``:
  PS1's own ``.wt`` stack products hold the *variance*, despite the name),
  else ``rms_bkg**2 + max(raw, 0) / gain`` (``CELL.GAIN``, default 1).
* spitzer: ``unc**2`` from ``unc_file`` (MJy/sr); else, from a coverage map
  given as ``weight_file`` (frames per pixel), ``s1 / cov`` with ``s1 =
  median(rms_bkg**2 * cov)`` (sky noise of one frame); else ``rms_bkg**2``.
  Zero coverage is masked. Coverage and rms maps give sky noise only.
* herschel: ``unc**2`` from ``unc_file``, else from the file's ``error`` or
  ``stDev`` extension (the map's unit), else ``rms_bkg**2``.
* jwst: ``ERR**2`` (or ``unc_file**2``, or ``VAR_POISSON + VAR_RNOISE
  [+ VAR_FLAT]``), (MJy/sr)^2; ``WHT == 0`` masked.
* hsc: the ``VARIANCE`` extension (or ``var_file``), counts^2; pixels with a
  ``HSC_MASK_PLANES`` bit (BAD, SAT, NO_DATA, EDGE, CR, INTRP; bit numbers from
  the MASK header's ``MP_<PLANE>`` keys) masked.
* legacy: ``1/invvar`` (``weight_file``, else an ``INVVAR``/``IVAR``
  extension), nanomaggies^2: sky noise only, ``+ max(raw, 0) / gain`` when the
  spec gives ``gain`` (electrons per nanomaggy).
* generic: ``var_file``, ``unc_file**2`` or ``1/weight_file``, exactly one.

Zero weights are masked; negative weights, variances or uncertainties raise.
No recipe includes the calibration error (see above).

Flux conversion: AB zero point ``ZP``: ``f_nu = v 10**(-0.4 (ZP - 8.90))`` Jy
(sdss: ``ZP`` = 22.5, i.e. 1 nmgy = 3.631e-6 Jy; des: ``MAGZERO``;
panstarrs: ``FPA.ZP`` for ``v / EXPTIME``); Vega (2mass, wise):
``f_nu = F0 v 10**(-0.4 MAGZP)``; then ``f_lambda = f_nu c / pivot**2``.
galex: 1.40e-15 (FUV) and 2.06e-16 (NUV) erg/s/cm^2/AA per cps; hst:
``PHOTFLAM`` per e-/s; hsc: ZP = 2.5 log10(``FLUXMAG0``), else ``MAGZERO``,
else 27 (``HSC_ZEROPOINT``); legacy: ZP 22.5. Flux densities (``BUNIT``):
Jy/pixel as is; MJy/sr times the pixel solid angle (jwst ``PIXAR_SR``, which
must agree with the WCS pixel within 10%; else the WCS pixel area); SPIRE
Jy/beam times pixel area / beam area (``SPIRE_BEAM_AREA_ARCSEC2``: 469.35,
831.27, 1804.31 arcsec^2); then ``f_lambda = f_nu c / pivot**2``. Generic:
astropy-parsable ``BUNIT`` that is a flux density per pixel (f_lambda, f_nu or
maggies, optionally ``/pix``), or the spec ``zeropoint`` (AB).

Output: masked pixels (NaN data, zero weight, bad variance, no coverage) have
``data`` and ``var`` set to NaN and ``mask`` True.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs.utils import proj_plane_pixel_area, proj_plane_pixel_scales
from scipy import ndimage

from ..constants import (
    AB_JY,
    ARCSEC_PER_RAD,
    C_AA_PER_S,
    GALEX_FLAM_PER_CPS,
    HSC_MASK_PLANES,
    HSC_ZEROPOINT,
    JY_CGS,
    NMGY_ZEROPOINT,
    SPIRE_BEAM_AREA_ARCSEC2,
    VEGA_F0_JY,
)
from ..errors import InputError
from ..filters import get_filter
from ..io.bandimage import BandImage, psf_options
from ..io.fits_utils import read_wcs, read_whole_fits
from .background import DEFAULT_BOX, estimate_background
from .cosmic import clean_cosmic_rays
from .psf import PSF_MODELS

__all__ = ["KNOWN_SURVEYS", "PIXSCALE_TOL", "SPEC_KEYS", "ab_flam_factor", "bunit_kind",
           "default_calib_err", "load_band", "sdss_gain_darkvar", "vega_flam_factor"]

#: Keys a band spec may have.
SPEC_KEYS = frozenset({
    "filter", "survey", "file", "hdu", "psf_fwhm", "psf_file", "psf_pixscale", "psf_model",
    "moffat_beta", "psf_obscuration", "unc_file", "weight_file", "var_file", "cosmic_rays",
    "calib_err", "gain", "zeropoint", "sky", "bkg_box", "noise_hdu",
})
NOISE_KEYS = ("unc_file", "weight_file", "var_file")

#: Largest fraction of the image whose variance may be NaN/<= 0 (else InputError).
MAX_BAD_VAR_FRACTION = 0.5

#: Largest relative difference between a file's pixel scale and its survey's native one.
PIXSCALE_TOL = 0.05

# SDSS gain (e-/DN) and dark variance (DN^2) per camcol (rows 1-6) and filter (u g r i z),
# from the SDSS DR data model of frame files. Run-dependent entries are applied in
# sdss_gain_darkvar.
_SDSS_GAIN = np.array([
    [1.62, 3.32, 4.71, 5.165, 4.745],
    [1.595, 3.855, 4.6, 6.565, 5.155],
    [1.59, 3.845, 4.72, 4.86, 4.885],
    [1.6, 3.995, 4.76, 4.885, 4.775],
    [1.47, 4.05, 4.725, 4.64, 3.48],
    [2.17, 4.035, 4.895, 4.76, 4.69],
])
_SDSS_DARKVAR = np.array([
    [9.61, 15.6025, 1.8225, 7.84, 0.81],
    [12.6025, 1.44, 1.00, 5.76, 1.0],
    [8.7025, 1.3225, 1.3225, 4.6225, 1.0],
    [12.6025, 1.96, 1.3225, 6.25, 9.61],
    [9.3025, 1.1025, 0.81, 7.84, 1.8225],
    [7.0225, 1.8225, 0.9025, 5.0625, 1.21],
])
# (camcol, band index): (run threshold, value for run > threshold)
_SDSS_GAIN_LATE = {(2, 0): (1100, 1.825)}
_SDSS_DARKVAR_LATE = {(2, 3): (1500, 6.25), (4, 3): (1500, 7.5625), (4, 4): (1500, 12.6025),
                      (5, 4): (1500, 2.1025)}

_SPEC_PATH = "images.bands"
_REQUIRED = object()
_FLAM = u.erg / u.s / u.cm**2 / u.AA
_FNU = u.erg / u.s / u.cm**2 / u.Hz


# --------------------------------------------------------------------------- conversions

def ab_flam_factor(zeropoint, pivot_aa):
    """erg/s/cm^2/AA per unit pixel value of an image with AB zero point ``zeropoint``."""
    fnu = AB_JY * 10.0 ** (-0.4 * float(zeropoint)) * JY_CGS
    return fnu * C_AA_PER_S / pivot_aa**2


def vega_flam_factor(f0_jy, magzp, pivot_aa):
    """erg/s/cm^2/AA per unit pixel value of an image with Vega zero point ``magzp``."""
    fnu = float(f0_jy) * 10.0 ** (-0.4 * float(magzp)) * JY_CGS
    return fnu * C_AA_PER_S / pivot_aa**2


def sdss_gain_darkvar(camcol, band, run=None):
    """SDSS (gain e-/DN, dark variance DN^2) of ``camcol`` (1-6) and ``band`` (ugriz)."""
    camcol, j = int(camcol), "ugriz".index(band)
    if not 1 <= camcol <= 6:
        raise ValueError(f"camcol must be 1-6, got {camcol}")
    gain = float(_SDSS_GAIN[camcol - 1, j])
    dark = float(_SDSS_DARKVAR[camcol - 1, j])
    if run is not None:
        if (camcol, j) in _SDSS_GAIN_LATE and run > _SDSS_GAIN_LATE[camcol, j][0]:
            gain = _SDSS_GAIN_LATE[camcol, j][1]
        if (camcol, j) in _SDSS_DARKVAR_LATE and run > _SDSS_DARKVAR_LATE[camcol, j][0]:
            dark = _SDSS_DARKVAR_LATE[camcol, j][1]
    return gain, dark


# --------------------------------------------------------------------------- FITS reading

def _read_fits(path, what="image"):
    """The whole FITS file in memory; InputError when missing or unreadable.

    Raw survey files often raise harmless astropy warnings, so only truncation,
    bad padding or extra bytes count as damage here.
    """
    return read_whole_fits(
        path, what=f"{what} file",
        missing_fix="check the 'file' (or unc/weight/var/psf file) path of this band in "
                    "images.bands.",
        corrupt_fix="download the file again.",
        is_damage=lambda w: any(s in str(w.message).lower()
                                for s in ("truncat", "padding", "extra bytes")))


def _image_hdu(hdul, path, hdu=None, prefer=()):
    """Index of the science image: ``hdu`` if given, else a preferred EXTNAME, else the
    first HDU with 2-D data."""
    if hdu is not None:
        try:
            h = hdul[hdu]
        except (KeyError, IndexError):
            names = [x.name for x in hdul]
            raise InputError(f"no HDU {hdu!r} (the file has {names}).", path,
                             "set 'hdu' of this band to one of those.") from None
        if h.data is None or np.ndim(h.data) != 2 or not h.is_image:
            raise InputError(f"HDU {hdu!r} is not a 2-D image.", path,
                             "set 'hdu' of this band to the science image.")
        return hdul.index(h)
    for name in prefer:
        if name in hdul and hdul[name].is_image and np.ndim(hdul[name].data) == 2:
            return hdul.index(hdul[name])
    for i, h in enumerate(hdul):
        if h.is_image and h.data is not None and np.ndim(h.data) == 2:
            return i
    raise InputError("no 2-D image in the file.", path,
                     "give a FITS image (set 'hdu' if it is not the first 2-D one).")


def _aux_image(path, shape, key, band_path, hdu=None):
    """A 2-D auxiliary map (unc/weight/var) of the same shape as the science image: HDU
    ``hdu`` of its file (a name or index: the ``noise_hdu`` of the band spec, which
    lets the map be an extension of the image's own file), else its first 2-D image."""
    hdul = _read_fits(path, what=key.replace("_file", ""))
    i = _image_hdu(hdul, path, hdu=hdu)
    arr = np.asarray(hdul[i].data, dtype=np.float64)
    if arr.shape != tuple(shape):
        raise InputError(f"{key} has shape {arr.shape} but the image {band_path} has "
                         f"{tuple(shape)}.", path, f"give the {key} that belongs to that image.")
    return arr


# --------------------------------------------------------------------------- band context

@dataclasses.dataclass
class _Band:
    """What a survey recipe sees."""

    spec: dict
    path: Path
    survey: str
    filter: object
    hdul: fits.HDUList
    header: fits.Header       # science HDU
    primary: fits.Header
    raw: np.ndarray           # native units, before our background subtraction
    data: np.ndarray = None   # native units, background subtracted (sky-in surveys)
    bkg: np.ndarray = None
    rms: np.ndarray = None
    bad: np.ndarray = None    # NaN data / no coverage
    wcs: object = None        # celestial WCS of the science image

    def pixel_area_sr(self):
        """Solid angle of one pixel, sr, from the WCS (at its reference pixel)."""
        deg2 = float(proj_plane_pixel_area(self.wcs.celestial))
        return deg2 * 3600.0**2 / ARCSEC_PER_RAD**2

    def key(self, name, default=_REQUIRED, positive=True):
        """Float header value (science header first, then primary), or ``default``."""
        for h in (self.header, self.primary):
            if name in h:
                try:
                    value = float(h[name])
                except (TypeError, ValueError):
                    raise InputError(f"header key {name}={h[name]!r} is not a number.",
                                     self.path, f"fix {name} in the header.") from None
                if not np.isfinite(value) or (positive and value <= 0):
                    raise InputError(f"header key {name}={value} must be a finite"
                                     f"{' positive' if positive else ''} number.", self.path,
                                     f"fix {name} in the header.")
                return value
        if default is _REQUIRED:
            raise InputError(f"header key {name} is missing (the {self.survey} recipe needs "
                             "it).", self.path,
                             f"use the survey's original file, which has {name}, or add it.")
        return default

    def spec_or_key(self, spec_key, header_key, default=_REQUIRED):
        """The spec value if set, else the header value, else ``default``."""
        if self.spec.get(spec_key) is not None:
            return float(self.spec[spec_key])
        return self.key(header_key, default)

    def aux(self, key):
        """The auxiliary map named by spec ``key`` (None if not given)."""
        if self.spec.get(key) is None:
            return None
        return _aux_image(self.spec[key], self.raw.shape, key, self.path,
                          hdu=self.spec.get("noise_hdu"))

    def weight_to_var(self, w, name):
        """Inverse variance -> (variance, zero-weight flag); InputError on negative weight."""
        nneg = int(np.count_nonzero(w < 0))
        if nneg:
            raise InputError(f"{name} (inverse variance) is negative in {nneg} pixels, i.e. "
                             "a negative variance.", self.path,
                             "give the survey's weight map unchanged (>= 0; 0 = no data).")
        zero = ~(w > 0)  # zero or NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(zero, np.nan, 1.0 / np.where(zero, 1.0, w))
        return var, zero

    def check_nonneg(self, arr, name):
        """InputError if ``arr`` (a variance or 1-sigma map) is negative anywhere."""
        nneg = int(np.count_nonzero(arr < 0))
        if nneg:
            raise InputError(f"{name} is negative in {nneg} pixels.", self.path,
                             f"give a {name} map that is >= 0 everywhere.")

    def pivot(self):
        return self.filter.pivot_wavelength


@dataclasses.dataclass
class _Native:
    """A recipe's result: native variance, f_lambda per native unit, flags, meta."""

    var: np.ndarray
    factor: float
    flag: np.ndarray = None
    meta: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _Survey:
    """A survey's recipe and what it assumes of the file; :func:`load_band` checks the
    assumptions (:func:`_check_assumptions`) before the recipe runs.

    recipe : ``_Band -> _Native`` (variance and f_lambda per native unit)
    sky_in_image : whether the delivered image still holds the sky
    noise_keys : the noise-map spec keys it accepts
    prefer_hdu : EXTNAMEs of its science image
    bkg_estimator : ``Background2D`` statistic
    pixscale : native pixel scale, arcsec: a number (each axis within
        ``PIXSCALE_TOL``), a ``(min, max)`` range, or None (not checked); or a dict
        of those keyed by filter-name prefix (the longest prefix of the band's
        filter name applies)
    unit : kind of pixel value the recipe reads (:func:`bunit_kind`): ``'count'``,
        ``'count/s'``, ``'nanomaggy'``, ``'Jy/pix'``, ``'Jy/beam'`` or ``'MJy/sr'``,
        or a tuple of kinds it reads; a BUNIT of another kind is refused. None:
        BUNIT not checked
    filters : regex (full match) of the sedmap filter names the survey observes;
        another filter is refused. None: any filter
    needs : what the recipe reads from the file; each item is a tuple of
        alternatives, one of which must be present: ``'KEY'`` (science or primary
        header), ``'spec:key'`` (band spec), ``'hdu:EXTNAME'``, ``'vec:N'`` (a 1-D
        image in HDU N)
    band_keys : header keys that name the band
    band_re : regex of the band tokens this survey writes there (None: only exact
        sedmap filter names are compared)
    band_alias : header token -> the token of the sedmap filter name
    band_check : optional ``(header, filter name) -> [(key, value, token, names the
        filter?)]`` for band headers that need more than one key (Spitzer's
        ``INSTRUME`` + ``CHNLNUM``)
    calib_err : default fractional calibration error per filter name, ``'*'``
        for any other filter (docs/surveys.md gives the references)
    """

    recipe: Callable
    sky_in_image: bool
    noise_keys: tuple = ()
    prefer_hdu: tuple = ()
    bkg_estimator: str = "median"
    pixscale: object = None
    unit: object = None
    needs: tuple = ()
    band_keys: tuple = ()
    band_re: str = None
    band_alias: dict = dataclasses.field(default_factory=dict)
    calib_err: dict = dataclasses.field(default_factory=lambda: {"*": 0.0})
    filters: str = None
    band_check: Callable = None

    @property
    def units(self):
        """The BUNIT kinds the recipe reads (empty: BUNIT not checked)."""
        return (self.unit,) if isinstance(self.unit, str) else tuple(self.unit or ())

    def pixscale_for(self, filter_name):
        """The pixel-scale assumption (number, range or None) for ``filter_name``."""
        if not isinstance(self.pixscale, dict):
            return self.pixscale
        keys = [k for k in self.pixscale if filter_name.startswith(k)]
        return self.pixscale[max(keys, key=len)] if keys else None


# --------------------------------------------------------------------------- recipes

def _table_value(table, b, what):
    name = b.filter.name
    if name not in table:
        raise InputError(f"survey {b.survey} has no {what} for filter {name!r} (known: "
                         f"{sorted(table)}).", b.path,
                         f"use one of those filters with survey {b.survey}, or survey "
                         "'generic' with a zeropoint.")
    return table[name]


def _galex(b):
    flam = _table_value(GALEX_FLAM_PER_CPS, b, "cps to flux conversion")
    exptime = b.key("EXPTIME")
    var = np.maximum(b.raw, b.bkg) / exptime
    return _Native(var, flam, meta={"exptime": exptime, "native_unit": "count/s",
                                    "flam_per_cps": flam})


def _sdss_sky_dn(b, ny, nx):
    """Sky in DN per pixel from HDU2, plus the mode string; None when there is no HDU2."""
    if len(b.hdul) < 3 or not isinstance(b.hdul[2], fits.BinTableHDU):
        return None, "no HDU2"
    tab = b.hdul[2].data
    names = [n.upper() for n in tab.columns.names]
    if not {"ALLSKY", "XINTERP", "YINTERP"} <= set(names):
        raise InputError(f"SDSS HDU2 lacks ALLSKY/XINTERP/YINTERP (has {names}).", b.path,
                         "use the SDSS frame file unchanged.")
    allsky = np.asarray(tab["ALLSKY"][0], dtype=np.float64)
    xi = np.asarray(tab["XINTERP"][0], dtype=np.float64).ravel()
    yi = np.asarray(tab["YINTERP"][0], dtype=np.float64).ravel()
    if allsky.ndim != 2:
        raise InputError(f"SDSS ALLSKY is not 2-D (shape {allsky.shape}).", b.path,
                         "use the SDSS frame file unchanged.")
    if xi.size == nx and yi.size == ny:
        rows, cols = np.meshgrid(yi, xi, indexing="ij")
        sky = ndimage.map_coordinates(allsky, [rows, cols], order=1, mode="nearest")
        return sky, "frame"
    return np.full((ny, nx), float(np.median(allsky))), "cutout"


def _sdss(b):
    ny, nx = b.raw.shape
    h = b.header
    band = str(h.get("FILTER", b.primary.get("FILTER", ""))).strip().lower()
    if band not in tuple("ugriz"):
        band = b.filter.name[-1] if b.filter.name.startswith("sdss_") else ""
    if band not in tuple("ugriz"):
        raise InputError("no SDSS band: header FILTER is missing and the filter is not "
                         "sdss_u..sdss_z.", b.path, "use the SDSS frame file unchanged.")
    gain = b.spec.get("gain") or b.key("GAIN", None)
    dark = b.key("DARKVAR", None, positive=False)
    if gain is None or dark is None:
        camcol = b.key("CAMCOL", None)
        if camcol is None or not 1 <= camcol <= 6:
            raise InputError("header has neither GAIN/DARKVAR nor a CAMCOL (1-6) to look "
                             "them up.", b.path, "use the SDSS frame file unchanged, or set "
                             "GAIN and DARKVAR.")
        run = b.key("RUN", None)
        g0, d0 = sdss_gain_darkvar(camcol, band, run)
        gain = g0 if gain is None else gain
        dark = d0 if dark is None else dark
    gain = float(gain)

    calib, mode = None, []
    if len(b.hdul) > 1 and b.hdul[1].is_image and b.hdul[1].data is not None \
            and np.ndim(b.hdul[1].data) == 1:
        vec = np.asarray(b.hdul[1].data, dtype=np.float64)
        if vec.size == nx:
            calib = np.broadcast_to(vec[None, :], (ny, nx))
            mode.append("calib vector")
        else:
            calib = np.full((ny, nx), float(np.median(vec)))
            mode.append("calib median (cutout)")
    if calib is None:
        nmgy = b.key("NMGY", None)
        if nmgy is None:
            raise InputError("SDSS frame has neither the HDU1 calibration vector nor NMGY.",
                             b.path, "use the SDSS frame file unchanged (HDU1 = calib).")
        calib = np.full((ny, nx), nmgy)
        mode.append("NMGY")
    if np.any(~(calib > 0)):
        raise InputError("SDSS calibration (nmgy/count) is not positive everywhere.", b.path,
                         "use the SDSS frame file unchanged.")
    sky, how = _sdss_sky_dn(b, ny, nx)
    if sky is not None:
        dn = b.raw / calib + sky
        var = (np.maximum(dn, 0.0) / gain + dark) * calib**2
        mode.append(f"sky {how}")
        sky_level = float(np.median(sky))
    else:
        var = b.rms**2 + np.maximum(b.raw, 0.0) * calib / gain
        mode.append("sky from rms_bkg (no HDU2)")
        sky_level = None
    meta = {"gain": gain, "dark_variance": dark, "sdss_mode": ", ".join(mode),
            "native_unit": "nanomaggy", "zeropoint": NMGY_ZEROPOINT, "sky_dn": sky_level,
            "nmgy_per_count": float(np.median(calib))}
    _sdss_wcs_check(b, meta)
    return _Native(var, ab_flam_factor(NMGY_ZEROPOINT, b.pivot()), meta=meta)


def _sdss_wcs_check(b, meta):
    """Flag cutouts that kept the full frame's WCS unshifted (CRPIX at the frame centre)."""
    if len(b.hdul) < 3 or not isinstance(b.hdul[2], fits.BinTableHDU):
        return
    try:
        nx_full = np.size(b.hdul[2].data["XINTERP"][0])
        ny_full = np.size(b.hdul[2].data["YINTERP"][0])
    except KeyError:
        return
    ny, nx = b.raw.shape
    crpix = (b.header.get("CRPIX1"), b.header.get("CRPIX2"))
    if (ny, nx) != (ny_full, nx_full) and None not in crpix and \
            abs(crpix[0] - (nx_full / 2 + 1)) < 1 and abs(crpix[1] - (ny_full + 1) / 2) < 1:
        meta["wcs_suspect"] = True
        warnings.warn(f"{b.path}: a {ny}x{nx} SDSS cutout whose WCS has the full frame's "
                      f"CRPIX ({crpix[0]}, {crpix[1]}): the WCS was probably not shifted for "
                      "the cutout; check the astrometry.", stacklevel=3)


def _twomass(b):
    f0 = _table_value({k: v for k, v in VEGA_F0_JY.items() if k.startswith("2mass")}, b,
                      "Vega zero-point flux")
    magzp = b.key("MAGZP", positive=False)
    gain = b.spec_or_key("gain", "GAIN", 10.0)
    nframes = b.key("NFRAMES", 6.0)
    var = np.maximum(b.data, 0.0) / (gain * nframes) + b.rms**2
    return _Native(var, vega_flam_factor(f0, magzp, b.pivot()),
                   meta={"zeropoint_vega": magzp, "f0_jy": f0, "gain": gain,
                         "nframes": nframes, "native_unit": "DN"})


def _wise(b):
    f0 = _table_value({k: v for k, v in VEGA_F0_JY.items() if k.startswith("wise")}, b,
                      "Vega zero-point flux")
    magzp = b.key("MAGZP", positive=False)
    unc = b.aux("unc_file")
    if unc is not None:
        b.check_nonneg(unc, "uncertainty (unc_file)")
        var, recipe = unc**2, "unc**2"
    else:
        var, recipe = b.rms**2, "rms_bkg**2 (no unc_file: sky noise only)"
    return _Native(var, vega_flam_factor(f0, magzp, b.pivot()),
                   meta={"zeropoint_vega": magzp, "f0_jy": f0, "native_unit": "DN",
                         "var_recipe": recipe})


def _hst(b):
    photflam = b.key("PHOTFLAM")
    exptime = b.key("EXPTIME")
    w = b.aux("weight_file")
    if w is None:
        if "WHT" not in b.hdul:
            raise InputError("no WHT extension and no weight_file.", b.path,
                             "give the drizzled file with its WHT extension, or weight_file.")
        w = np.asarray(b.hdul["WHT"].data, dtype=np.float64)
        if w.shape != b.raw.shape:
            raise InputError(f"WHT has shape {w.shape}, SCI {b.raw.shape}.", b.path,
                             "use the drizzled file unchanged.")
    var, zero = b.weight_to_var(w, "WHT")
    var = var + np.maximum(b.raw, 0.0) / exptime
    return _Native(var, photflam, flag=zero,
                   meta={"photflam": photflam, "exptime": exptime, "native_unit": "electron/s"})


def _des(b):
    magzero = b.key("MAGZERO", positive=False)
    gain = b.spec_or_key("gain", "GAIN")
    w = b.aux("weight_file")
    if w is None:
        if "WGT" not in b.hdul:
            raise InputError("no WGT extension and no weight_file.", b.path,
                             "give the DES coadd with its WGT extension, or weight_file.")
        w = np.asarray(b.hdul["WGT"].data, dtype=np.float64)
        if w.shape != b.raw.shape:
            raise InputError(f"WGT has shape {w.shape}, SCI {b.raw.shape}.", b.path,
                             "use the DES coadd file unchanged.")
    var, zero = b.weight_to_var(w, "WGT")
    var = var + np.maximum(b.raw, 0.0) / gain
    return _Native(var, ab_flam_factor(magzero, b.pivot()), flag=zero,
                   meta={"zeropoint": magzero, "gain": gain, "native_unit": "electron",
                         "exptime": b.key("EXPTIME", None)})


def _panstarrs(b):
    zp = b.key("FPA.ZP", positive=False)
    exptime = b.key("EXPTIME")
    gain = b.spec_or_key("gain", "CELL.GAIN", 1.0)
    given = [k for k in ("var_file", "weight_file") if b.spec.get(k) is not None]
    if len(given) > 1:
        raise InputError("both var_file and weight_file are given.", b.path,
                         "give one (PS1's .wt stack file is a variance map).")
    if given:
        var = b.aux(given[0])
        b.check_nonneg(var, f"variance ({given[0]})")
        recipe = f"{given[0]} (variance)"
    else:
        var = b.rms**2 + np.maximum(b.raw, 0.0) / gain
        recipe = "rms_bkg**2 + max(data, 0) / gain"
    return _Native(var, ab_flam_factor(zp, b.pivot()) / exptime,
                   meta={"zeropoint": zp, "exptime": exptime, "gain": gain,
                         "native_unit": "count", "var_recipe": recipe})


# --- flux-density surveys (Spitzer, Herschel, JWST) and the HSC / Legacy Surveys coadds

def _ext_map(b, name):
    """A 2-D extension ``name`` of the image's own file, as float, the image's shape."""
    arr = np.asarray(b.hdul[name].data, dtype=np.float64)
    if arr.shape != b.raw.shape:
        raise InputError(f"the {name} extension has shape {arr.shape} but the image "
                         f"{b.raw.shape}.", b.path, f"use the {b.survey} file unchanged.")
    return arr


def _flam_per_jy(b):
    """erg/s/cm^2/AA per Jy (f_nu) at the band's pivot wavelength."""
    return JY_CGS * C_AA_PER_S / b.pivot() ** 2


def _jy_per_native(b, pixel_sr=None):
    """Jy per pixel per unit pixel value of an image whose BUNIT is a flux density.

    ``Jy/pix`` kinds (``Jy``, ``Jy/pixel``) are per pixel already; ``MJy/sr`` kinds are
    multiplied by the pixel's solid angle (``pixel_sr``, sr, else the WCS's); ``Jy/beam``
    by (pixel area / beam area), the beam areas (arcsec^2) being
    ``SPIRE_BEAM_AREA_ARCSEC2``. Returns (Jy per pixel per native unit, description).
    """
    bunit = b.header.get("BUNIT", b.primary.get("BUNIT"))
    kind = bunit_kind(bunit)
    reads = SURVEYS[b.survey].units
    if kind not in reads:   # unparsable or dimensionless (the checks let them pass)
        raise InputError(f"BUNIT {bunit!r} is not a unit the {b.survey} recipe reads "
                         f"({', '.join(reads)}).", b.path,
                         f"use the {b.survey} file unchanged (it states its unit in "
                         "BUNIT). " + _PROCESSED_FIX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = u.Unit(str(bunit).strip(), parse_strict="raise")
    unit = unit * u.pix ** -dict(zip(unit.bases, unit.powers)).get(u.pix, 0)
    if kind == "Jy/pix":
        return float(unit.to(u.Jy)), f"BUNIT {bunit} (Jy per pixel)"
    area = b.pixel_area_sr() if pixel_sr is None else float(pixel_sr)
    if kind == "MJy/sr":
        return float(unit.to(u.Jy / u.sr)) * area, \
            f"BUNIT {bunit} x pixel solid angle {area:.6g} sr"
    beam = _table_value(SPIRE_BEAM_AREA_ARCSEC2, b, "beam area (Jy/beam)")
    pix = area * ARCSEC_PER_RAD**2
    return float(unit.to(u.Jy / u.beam)) * pix / beam, \
        f"BUNIT {bunit} x pixel area {pix:.4g} / beam area {beam} arcsec^2"


def _unc_var(b, unc, name):
    """unc**2 of a 1-sigma map (InputError where it is negative)."""
    b.check_nonneg(unc, f"uncertainty ({name})")
    return unc**2


_SPITZER_CHANNELS = {
    "IRAC": {1: "spitzer_irac_36", 2: "spitzer_irac_45", 3: "spitzer_irac_58",
             4: "spitzer_irac_80"},
    "MIPS": {1: "spitzer_mips_24", 2: "spitzer_mips_70", 3: "spitzer_mips_160"},
}


def _spitzer_band_check(h, conf):
    """The band that ``INSTRUME`` (IRAC, MIPS) and ``CHNLNUM`` (1-4, 1-3) name."""
    inst = str(h.get("INSTRUME", "")).strip().upper()
    if inst not in _SPITZER_CHANNELS:
        return []
    ch = h.get("CHNLNUM")
    name = _SPITZER_CHANNELS[inst].get(ch) if isinstance(ch, int) and \
        not isinstance(ch, bool) else None
    if name is not None:
        return [("INSTRUME/CHNLNUM", f"{inst} {ch}", name, name == conf)]
    return [("INSTRUME", inst, inst.lower(), f"_{inst.lower()}_" in conf)]


def _spitzer(b):
    """IRAC/MIPS mosaic in MJy/sr; variance from ``unc_file`` (MJy/sr, 1 sigma), else
    from the coverage map ``weight_file`` (frames per pixel: the sky noise of one
    frame, ``median(rms_bkg**2 * cov)``, divided by the coverage), else ``rms_bkg**2``."""
    jy, how = _jy_per_native(b)
    given = [k for k in ("unc_file", "weight_file") if b.spec.get(k) is not None]
    if len(given) > 1:
        raise InputError("both unc_file and weight_file (coverage) are given.", b.path,
                         "give one: the mosaic's uncertainty map (unc_file, preferred) or "
                         "its coverage map (weight_file).")
    flag = None
    if given == ["unc_file"]:
        var, recipe = _unc_var(b, b.aux("unc_file"), "unc_file"), "unc**2"
    elif given == ["weight_file"]:
        cov = b.aux("weight_file")
        b.check_nonneg(cov, "coverage (weight_file)")
        flag = ~(cov > 0)
        ok = ~flag & ~b.bad & np.isfinite(b.rms)
        if not ok.any():
            raise InputError("the coverage map is zero wherever the image has data.",
                             b.path, "give the coverage map of this mosaic.")
        sigma1_sq = float(np.median(b.rms[ok] ** 2 * cov[ok]))
        var = np.where(flag, np.nan, sigma1_sq / np.where(flag, 1.0, cov))
        recipe = "median(rms_bkg**2 * cov) / cov (coverage map: sky noise only)"
    else:
        var, recipe = b.rms**2, "rms_bkg**2 (no unc_file or coverage map: sky noise only)"
    return _Native(var, jy * _flam_per_jy(b), flag=flag,
                   meta={"native_unit": str(b.header.get("BUNIT", b.primary.get("BUNIT"))),
                         "jy_per_native": jy, "flux_unit": how, "var_recipe": recipe})


#: Herschel map extensions holding the 1-sigma error, in the order they are looked for.
_HERSCHEL_ERROR_HDUS = ("error", "stDev")


def _herschel(b):
    """PACS (Jy/pixel) or SPIRE (Jy/beam; MJy/sr for extended-emission maps) map;
    variance ``unc**2`` from ``unc_file``, else the file's ``error`` or ``stDev``
    extension (same unit as the map), else ``rms_bkg**2``."""
    jy, how = _jy_per_native(b)
    if b.spec.get("unc_file") is not None:
        var, recipe = _unc_var(b, b.aux("unc_file"), "unc_file"), "unc_file**2"
    else:
        names = [n for n in _HERSCHEL_ERROR_HDUS if _has(b, f"hdu:{n}")]
        if names:
            var = _unc_var(b, _ext_map(b, names[0]), f"{names[0]} extension")
            recipe = f"{names[0]}**2"
        else:
            var, recipe = b.rms**2, "rms_bkg**2 (no error map: sky noise only)"
    return _Native(var, jy * _flam_per_jy(b),
                   meta={"native_unit": str(b.header.get("BUNIT", b.primary.get("BUNIT"))),
                         "jy_per_native": jy, "flux_unit": how, "var_recipe": recipe})


def _jwst(b):
    """NIRCam/MIRI ``_i2d`` SCI in MJy/sr times ``PIXAR_SR``; variance ``ERR**2`` (or
    ``unc_file**2``, or ``VAR_POISSON + VAR_RNOISE [+ VAR_FLAT]``), pixels with
    ``WHT == 0`` masked."""
    pixar = b.key("PIXAR_SR")
    wcs_sr = b.pixel_area_sr()
    if abs(pixar / wcs_sr - 1.0) > 2 * PIXSCALE_TOL:
        raise InputError(f"PIXAR_SR = {pixar:.4g} sr but the WCS pixel is {wcs_sr:.4g} sr: "
                         "the image was resampled after the pipeline wrote PIXAR_SR.",
                         b.path, _GENERIC_FIX)
    jy, how = _jy_per_native(b, pixel_sr=pixar)
    if b.spec.get("unc_file") is not None:
        var, recipe = _unc_var(b, b.aux("unc_file"), "unc_file"), "unc_file**2"
    elif _has(b, "hdu:ERR"):
        var, recipe = _unc_var(b, _ext_map(b, "ERR"), "ERR extension"), "ERR**2"
    else:
        parts = [n for n in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT") if _has(b, f"hdu:{n}")]
        if not {"VAR_POISSON", "VAR_RNOISE"} <= set(parts):
            raise InputError(f"no ERR extension, and of VAR_POISSON and VAR_RNOISE only "
                             f"{parts}.", b.path,
                             "use the _i2d file unchanged (ERR, VAR_POISSON, VAR_RNOISE), or "
                             "give unc_file.")
        var = sum(_ext_map(b, n) for n in parts)
        b.check_nonneg(np.nan_to_num(var), "variance (VAR_* extensions)")
        recipe = " + ".join(parts)
    flag = None
    if _has(b, "hdu:WHT"):
        flag = ~(_ext_map(b, "WHT") > 0)
    return _Native(var, jy * _flam_per_jy(b), flag=flag,
                   meta={"native_unit": str(b.header.get("BUNIT", b.primary.get("BUNIT"))),
                         "pixar_sr": pixar, "jy_per_native": jy, "flux_unit": how,
                         "var_recipe": recipe})


def _hsc_mask(b):
    """Pixels of the MASK extension with a bit of ``HSC_MASK_PLANES`` set (their bit
    numbers from its ``MP_<PLANE>`` header keys), and the planes used; (None, ()) when
    the file has no MASK extension."""
    if not _has(b, "hdu:MASK"):
        return None, ()
    hdu = b.hdul["MASK"]
    bits = {}
    for key in hdu.header:
        if key.startswith("MP_"):
            try:
                bits[key[3:]] = int(hdu.header[key])
            except (TypeError, ValueError):
                continue
    if not bits:
        raise InputError("the MASK extension has no MP_<PLANE> header keys naming its bits.",
                         b.path, "use the HSC coadd file unchanged.")
    used = tuple(p for p in HSC_MASK_PLANES if p in bits)
    mask = np.asarray(hdu.data)
    if mask.shape != b.raw.shape or not np.issubdtype(mask.dtype, np.integer):
        raise InputError(f"the MASK extension is not an integer image of the image's shape "
                         f"({mask.dtype}, {mask.shape}).", b.path,
                         "use the HSC coadd file unchanged.")
    value = int(sum(1 << bits[p] for p in used))
    return (mask.astype(np.int64) & value) != 0, used


def _hsc(b):
    """HSC coadd (``calexp``): IMAGE with AB zero point 2.5 log10(``FLUXMAG0``) (else
    ``MAGZERO``, else 27); variance from the VARIANCE extension (or ``var_file``);
    MASK planes ``HSC_MASK_PLANES`` masked."""
    fluxmag0 = b.key("FLUXMAG0", None)
    if fluxmag0 is not None:
        zp, zp_from = 2.5 * np.log10(fluxmag0), "FLUXMAG0"
    elif b.key("MAGZERO", None, positive=False) is not None:
        zp, zp_from = b.key("MAGZERO", positive=False), "MAGZERO"
    else:
        zp, zp_from = HSC_ZEROPOINT, "HSC-SSP coadd default"
    if b.spec.get("var_file") is not None:
        var, recipe = b.aux("var_file"), "var_file"
    else:
        var, recipe = _ext_map(b, "VARIANCE"), "VARIANCE extension"
    b.check_nonneg(np.nan_to_num(var), f"variance ({recipe})")
    flag, planes = _hsc_mask(b)
    return _Native(var, ab_flam_factor(zp, b.pivot()), flag=flag,
                   meta={"zeropoint": float(zp), "zeropoint_from": zp_from,
                         "native_unit": "count", "var_recipe": recipe,
                         "mask_planes": list(planes)})


#: Extensions of a Legacy Surveys cutout that hold the inverse variance.
_LEGACY_IVAR_HDUS = ("INVVAR", "IVAR")


def _legacy(b):
    """Legacy Surveys DR9/DR10 image in nanomaggies (AB 22.5); variance ``1/invvar``
    (``weight_file``, else an INVVAR/IVAR extension; sky noise), plus ``max(S, 0) /
    gain`` when the spec gives ``gain`` (electrons per nanomaggy)."""
    if b.spec.get("weight_file") is not None:
        w, source = b.aux("weight_file"), "weight_file"
    else:
        source = next(n for n in _LEGACY_IVAR_HDUS if _has(b, f"hdu:{n}"))
        w = _ext_map(b, source)
    var, zero = b.weight_to_var(w, f"invvar ({source})")
    gain = b.spec.get("gain")
    recipe = f"1/invvar ({source})"
    if gain is not None:
        var = var + np.maximum(b.raw, 0.0) / float(gain)
        recipe += " + max(data, 0) / gain"
    else:
        recipe += " (sky noise only: no gain)"
    return _Native(var, ab_flam_factor(NMGY_ZEROPOINT, b.pivot()), flag=zero,
                   meta={"zeropoint": NMGY_ZEROPOINT, "native_unit": "nanomaggy",
                         "gain": gain, "var_recipe": recipe})


def _generic_factor(b):
    """f_lambda per native unit from spec zeropoint (AB) or the header BUNIT."""
    if b.spec.get("zeropoint") is not None:
        return ab_flam_factor(float(b.spec["zeropoint"]), b.pivot()), \
            f"AB zeropoint {float(b.spec['zeropoint'])}"
    bunit = b.header.get("BUNIT", b.primary.get("BUNIT"))
    fix = ("set BUNIT to a flux density per pixel astropy understands (e.g. 'Jy', "
           "'nanomaggy', 'erg/s/cm2/Angstrom', optionally '/pix'), or give the band a "
           "'zeropoint' (AB).")
    if bunit is None or not str(bunit).strip():
        raise InputError("no BUNIT in the header and no 'zeropoint' in the band spec.",
                         b.path, fix)
    text = str(bunit).strip().replace("nanomaggies", "nanomaggy").replace("maggies", "maggy")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unit = u.Unit(text, parse_strict="raise")
    except (ValueError, TypeError):
        raise InputError(f"BUNIT {bunit!r} is not a unit astropy can parse.", b.path,
                         fix) from None
    per_pix = {base: p for base, p in zip(unit.bases, unit.powers) if base == u.pix}
    if per_pix.get(u.pix, 0) == -1:
        unit = unit * u.pix
    for target, to_flam in ((_FLAM, 1.0), (_FNU, C_AA_PER_S / b.pivot() ** 2),
                            (u.mgy, AB_JY * JY_CGS * C_AA_PER_S / b.pivot() ** 2)):
        try:
            return float(unit.to(target)) * to_flam, f"BUNIT {bunit}"
        except u.UnitConversionError:
            continue
    raise InputError(f"BUNIT {bunit!r} ({unit.physical_type}) is not a flux density per "
                     "pixel.", b.path, fix)


def _generic(b):
    factor, how = _generic_factor(b)
    given = [k for k in NOISE_KEYS if b.spec.get(k) is not None]
    if len(given) != 1:
        raise InputError(f"survey generic needs exactly one of {list(NOISE_KEYS)}, got "
                         f"{given or 'none'}.", b.path,
                         "give the band's 1-sigma (unc_file), inverse-variance (weight_file) "
                         "or variance (var_file) map.")
    key = given[0]
    arr = b.aux(key)
    flag = None
    if key == "weight_file":
        var, flag = b.weight_to_var(arr, "weight_file")
    elif key == "unc_file":
        b.check_nonneg(arr, "uncertainty (unc_file)")
        var = arr**2
    else:
        b.check_nonneg(arr, "variance (var_file)")
        var = arr
    return _Native(var, factor, flag=flag, meta={"flux_unit": how, "var_recipe": key})


# --------------------------------------------------------------------------- assumptions

_COUNT_RE = r"(counts?|cts?|cnts?|electrons?|e-|dn|adus?|photons?)"
_RATE_RE = r"(/s|/sec|/second|s-1|s\^-1|s\*\*-1|s\^\(-1\)|persec|persecond)"
_COUNT_UNITS = frozenset({u.ct, u.electron, u.adu, u.DN, u.ph})

#: The fix of every "this is not the survey's own file" error.
_PROCESSED_FIX = ("A file that was resampled, rescaled or converted is not in the survey's "
                  "format: use survey: generic with the image's BUNIT (a flux density per "
                  "pixel) or an AB 'zeropoint', and a noise map (unc_file, weight_file or "
                  "var_file).")
_GENERIC_FIX = "give the survey's original file. " + _PROCESSED_FIX


def bunit_kind(bunit):
    """Kind of a BUNIT: ``'count'``, ``'count/s'``, ``'nanomaggy'`` (each optionally per
    pixel); ``'Jy/pix'`` (a spectral flux density f_nu, optionally per pixel: ``Jy``,
    ``Jy/pixel``), ``'MJy/sr'`` (f_nu per solid angle: ``MJy/sr``, ``Jy/sr``),
    ``'Jy/beam'`` (f_nu per beam); ``'other'`` (any other unit astropy parses), or None
    (absent, dimensionless or unparsable: no verdict).

    Counts of any carrier (counts, electrons, DN, ADU, photons) are one kind. Maggies
    and f_lambda units are ``'other'``.
    """
    if bunit is None or isinstance(bunit, bool) or not str(bunit).strip():
        return None
    text = re.sub(r"\s+", "", str(bunit)).lower()
    text = re.sub(r"(/|per)(pix|pixel|px)$", "", text)
    if text in ("nanomaggy", "nanomaggies", "nmgy"):
        return "nanomaggy"
    if text == "cps" or re.fullmatch(_COUNT_RE + _RATE_RE, text):
        return "count/s"
    if re.fullmatch(_COUNT_RE, text):
        return "count"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unit = u.Unit(str(bunit).strip(), parse_strict="raise")
    except (ValueError, TypeError):
        return None
    powers = {base: p for base, p in zip(unit.bases, unit.powers) if base != u.pix}
    if not powers:
        return None                                  # dimensionless (or only per pixel)
    counts = [x for x in powers if x in _COUNT_UNITS]
    if len(counts) == 1 and powers[counts[0]] == 1 and set(powers) <= {counts[0], u.s}:
        return {0: "count", -1: "count/s"}.get(powers.get(u.s, 0), "other")
    if set(powers) == {u.nmgy} and powers[u.nmgy] == 1 and unit.scale == 1:
        return "nanomaggy"
    core = unit * u.pix ** -dict(zip(unit.bases, unit.powers)).get(u.pix, 0)
    for kind, ref in (("Jy/pix", u.Jy), ("MJy/sr", u.Jy / u.sr), ("Jy/beam", u.Jy / u.beam)):
        if core.is_equivalent(ref):
            return kind
    return "other"


_UNIT_TEXT = {"count": "counts (electrons, DN, ADU) per pixel",
              "count/s": "a count rate (counts or electrons per second) per pixel",
              "nanomaggy": "nanomaggies per pixel",
              "Jy/pix": "a flux density per pixel (Jy/pixel)",
              "MJy/sr": "a surface brightness (MJy/sr)",
              "Jy/beam": "a flux density per beam (Jy/beam)",
              "other": "a unit that is none of counts, a count rate, nanomaggies, Jy/pixel, "
                       "MJy/sr or Jy/beam"}


def default_calib_err(survey, filter_name):
    """Default fractional calibration error of ``filter_name`` observed by ``survey``.

    The survey's value for that filter, else its ``'*'`` value, else its largest
    (a filter the table does not list: the survey's worst band). See docs/surveys.md.
    """
    table = SURVEYS[survey].calib_err
    if filter_name in table:
        return float(table[filter_name])
    return float(table.get("*", max(table.values())))


def _has(b, need):
    """Whether the file (or the band spec) provides one alternative of a recipe need."""
    if need.startswith("spec:"):
        return b.spec.get(need[5:]) is not None
    if need.startswith("hdu:"):
        name = need[4:]
        return name in b.hdul and b.hdul[name].is_image and b.hdul[name].data is not None
    if need.startswith("vec:"):
        i = int(need[4:])
        return len(b.hdul) > i and b.hdul[i].is_image and np.ndim(b.hdul[i].data) == 1
    return need in b.header or need in b.primary


def _need_text(need):
    if need.startswith("spec:"):
        return f"the band spec's '{need[5:]}'"
    if need.startswith("hdu:"):
        return f"a {need[4:]} extension"
    if need.startswith("vec:"):
        return f"a 1-D vector in HDU {need[4:]}"
    return f"header key {need}"


def _band_token(value, alias):
    """The band a FILTER/BAND header value names: a sedmap filter name when the value
    is one, else its first word before any '.', lower case (``'g DECam SDSS c0001
    ...'`` -> ``g``, ``'g.00000'`` -> ``g``, ``1`` -> ``'1'``), through ``alias``."""
    text = str(value).strip()
    if not text or isinstance(value, bool):
        return None, False
    try:
        return get_filter(text).name, True
    except InputError:
        pass
    tok = text.lower().split()[0].split(".")[0]
    return alias.get(tok, tok), False


def _check_assumptions(b, info, scales):
    """InputError unless the file is what the survey recipe assumes: its native pixel
    scale (``scales``: arcsec per pixel along each axis), a BUNIT of the recipe's kind,
    a FILTER/BAND naming the configured band, and the header keys / HDUs it reads."""
    # the survey's own filters (its zero points, beams and pixel scales are per band)
    if info.filters is not None and not re.fullmatch(info.filters, b.filter.name):
        raise InputError(f"survey {b.survey} does not observe filter {b.filter.name} (its "
                         f"filters match {info.filters!r}).", b.path,
                         f"set 'filter' to the band of this {b.survey} image, or use survey "
                         "generic for another instrument's image.")
    # pixel scale: values per native pixel on pixels of another size are off by the
    # pixel-area ratio (the reason for this check: a reprojected SDSS frame read as sdss)
    want = info.pixscale_for(b.filter.name)
    if want is not None:
        s = np.asarray(scales, dtype=float)
        if isinstance(want, tuple):
            ok = bool(np.all((s >= want[0]) & (s <= want[1])))
            native = f'{want[0]}-{want[1]}" pixels'
        else:
            ok = bool(np.all(np.abs(s / want - 1.0) <= PIXSCALE_TOL))
            native = (f'{want}" pixels (within {PIXSCALE_TOL:.0%}); if it was resampled from '
                      f"native pixels, every flux would be off by the pixel-area ratio, a "
                      f"factor {np.prod(s) / want**2:.2f}")
        if not ok:
            got = (f'{s[0]:.3f}"' if abs(s[0] - s[1]) <= 1e-3 * s.max()
                   else f'{s[0]:.3f}" x {s[1]:.3f}"')
            raise InputError(f"pixel scale {got} (from the WCS) but survey {b.survey} "
                             f"delivers {native}.", b.path, _GENERIC_FIX)
    # BUNIT of another kind than the recipe reads
    bunit = b.header.get("BUNIT", b.primary.get("BUNIT"))
    kind = bunit_kind(bunit)
    if info.units and kind is not None and kind not in info.units:
        reads = " or ".join(_UNIT_TEXT[k] for k in info.units)
        raise InputError(f"BUNIT {str(bunit).strip()!r} ({_UNIT_TEXT[kind]}) contradicts "
                         f"survey {b.survey}, whose recipe reads {reads}.",
                         b.path, _GENERIC_FIX)
    # a FILTER/BAND header that names another band: only exact sedmap filter names and
    # the tokens this survey writes count, and a header that also names the configured
    # band (inconsistent) is not refused
    conf = b.filter.name
    conf_tok = info.band_alias.get(conf.rsplit("_", 1)[-1], conf.rsplit("_", 1)[-1])
    found = []   # (key, value, token, names the configured band?)
    for h in (b.header, b.primary):
        for key in (k for k in info.band_keys if k in h):
            tok, is_name = _band_token(h[key], info.band_alias)
            if is_name:
                found.append((key, h[key], tok, tok == conf))
            elif tok and info.band_re and re.fullmatch(info.band_re, tok):
                found.append((key, h[key], tok, tok == conf_tok))
        if info.band_check is not None:
            found.extend(info.band_check(h, conf))
    if found and not any(f[3] for f in found):
        key, value, tok, _ = found[0]
        raise InputError(f"header {key}={value!r} names band {tok!r}, but the band spec "
                         f"says filter {conf} ({conf_tok!r}).", b.path,
                         f"check this band's 'file' and 'filter': give the {conf} image, or "
                         "set 'filter' to the band of this file.")
    # header keys and HDUs the recipe reads
    missing = [" or ".join(_need_text(n) for n in alts) for alts in info.needs
               if not any(_has(b, n) for n in alts)]
    if missing:
        raise InputError(f"the {b.survey} recipe needs {'; '.join(missing)}, which the file "
                         "lacks.", b.path,
                         "use the survey's original file (or add what is missing). "
                         + _PROCESSED_FIX)


#: survey -> recipe and assumptions (see _Survey). Pixel scales: native (DES, PS1, SDSS)
#: or delivery (GALEX, 2MASS atlas, WISE atlas) pixels; HST drizzled products come at
#: any output scale (ACS/WFC3: typically 0.03-0.13"; drizzling conserves flux, so any
#: scale is right), and the range only refuses ground-based scales. Spitzer, Herschel
#: and JWST maps are surface brightnesses (or Jy/beam) converted with the WCS pixel area
#: (JWST: PIXAR_SR, checked against the WCS), so their ranges only bracket the scales
#: the archives deliver (IRAC 0.6"/1.2", MIPS24 1.2-2.55", PACS 1-3.2" (160: 6.4"),
#: SPIRE 6/10/14", NIRCam 0.03/0.06", MIRI 0.11"); HSC (0.168") and Legacy Surveys
#: (0.262") coadds are at native scale. calib_err: docs/surveys.md (references).
SURVEYS = {
    "galex": _Survey(_galex, True, bkg_estimator="mean", pixscale=1.5, unit="count/s",
                     needs=(("EXPTIME",),), band_keys=("BAND", "FILTER"),
                     band_re=r"[fn]uv", band_alias={"1": "nuv", "2": "fuv"},
                     calib_err={"galex_fuv": 0.052, "galex_nuv": 0.026}),
    "sdss": _Survey(_sdss, False, pixscale=0.396, unit="nanomaggy",
                    needs=(("vec:1", "NMGY"), ("GAIN", "spec:gain", "CAMCOL"),
                           ("DARKVAR", "CAMCOL")),
                    band_keys=("FILTER",), band_re=r"[ugriz]",
                    calib_err={"sdss_u": 0.05, "sdss_g": 0.02, "sdss_r": 0.02,
                               "sdss_i": 0.02, "sdss_z": 0.03}),
    "2mass": _Survey(_twomass, True, pixscale=1.0, unit="count", needs=(("MAGZP",),),
                     band_keys=("FILTER",), band_re=r"[jhk]", band_alias={"ks": "k"},
                     calib_err={"2mass_j": 0.027, "2mass_h": 0.028, "2mass_k": 0.028}),
    "wise": _Survey(_wise, True, ("unc_file",), pixscale=1.375, unit="count",
                    needs=(("MAGZP",),), band_keys=("BAND", "FILTER"), band_re=r"w[1-4]",
                    band_alias={str(i): f"w{i}" for i in range(1, 5)},
                    calib_err={"wise_w1": 0.024, "wise_w2": 0.028, "wise_w3": 0.045,
                               "wise_w4": 0.057}),
    "hst": _Survey(_hst, False, ("weight_file",), ("SCI",), pixscale=(0.02, 0.21),
                   unit="count/s",
                   needs=(("PHOTFLAM",), ("EXPTIME",), ("hdu:WHT", "spec:weight_file")),
                   band_keys=("FILTER", "FILTER1", "FILTER2"), band_re=r"f\d{3,4}[a-z]{1,2}",
                   calib_err={"*": 0.02}),
    "des": _Survey(_des, False, ("weight_file",), ("SCI",), pixscale=0.263, unit="count",
                   needs=(("MAGZERO",), ("GAIN", "spec:gain"), ("hdu:WGT", "spec:weight_file")),
                   band_keys=("BAND", "FILTER"), band_re=r"[ugrizy]", calib_err={"*": 0.01}),
    "panstarrs": _Survey(_panstarrs, False, ("var_file", "weight_file"), pixscale=0.25,
                         unit="count", needs=(("FPA.ZP",), ("EXPTIME",)),
                         band_keys=("FPA.FILTER", "FPA.FILTERID"), band_re=r"[grizy]",
                         calib_err={"*": 0.015, "panstarrs_y": 0.02}),
    "spitzer": _Survey(_spitzer, True, ("unc_file", "weight_file"), unit="MJy/sr",
                       pixscale={"spitzer_irac": (0.55, 1.25), "spitzer_mips_24": (1.2, 2.6),
                                 "spitzer_mips_70": (4.0, 10.0),
                                 "spitzer_mips_160": (8.0, 16.0)},
                       filters=r"spitzer_(irac_(36|45|58|80)|mips_(24|70|160))",
                       needs=(("BUNIT",),), band_check=_spitzer_band_check,
                       calib_err={"spitzer_irac_36": 0.03, "spitzer_irac_45": 0.03,
                                  "spitzer_irac_58": 0.03, "spitzer_irac_80": 0.03,
                                  "spitzer_mips_24": 0.04, "spitzer_mips_70": 0.05,
                                  "spitzer_mips_160": 0.12}),
    "herschel": _Survey(_herschel, True, ("unc_file",), ("image",),
                        unit=("Jy/pix", "Jy/beam", "MJy/sr"),
                        pixscale={"herschel_pacs_70": (1.0, 3.2),
                                  "herschel_pacs_100": (1.0, 3.2),
                                  "herschel_pacs_160": (1.0, 6.4),
                                  "herschel_spire_250": (3.0, 8.0),
                                  "herschel_spire_350": (4.0, 12.0),
                                  "herschel_spire_500": (6.0, 16.0)},
                        filters=r"herschel_(pacs_(70|100|160)|spire_(250|350|500))",
                        needs=(("BUNIT",),), band_keys=("WAVELNTH", "DETECTOR", "FILTER"),
                        band_re=r"70|100|160|250|350|500",
                        band_alias={"psw": "250", "pmw": "350", "plw": "500"},
                        calib_err={"herschel_pacs_70": 0.05, "herschel_pacs_100": 0.05,
                                   "herschel_pacs_160": 0.05, "herschel_spire_250": 0.07,
                                   "herschel_spire_350": 0.07, "herschel_spire_500": 0.07}),
    "jwst": _Survey(_jwst, True, ("unc_file",), ("SCI",), unit="MJy/sr",
                    pixscale={"jwst_nircam": (0.01, 0.12), "jwst_miri": (0.03, 0.2)},
                    filters=r"jwst_(nircam|miri)_f\d{3,4}[wmn]2?",
                    needs=(("BUNIT",), ("PIXAR_SR",),
                           ("hdu:ERR", "hdu:VAR_POISSON", "spec:unc_file")),
                    band_keys=("FILTER", "PUPIL"), band_re=r"f\d{3,4}[wmn]2?",
                    calib_err={"*": 0.02, **{f"jwst_miri_f{c}": 0.03 for c in (
                        "560w", "770w", "1000w", "1130w", "1280w", "1500w", "1800w",
                        "2100w", "2550w")}}),
    "hsc": _Survey(_hsc, False, ("var_file",), ("IMAGE",), pixscale=0.168, unit="count",
                   filters=r"hsc_[grizy]", needs=(("hdu:VARIANCE", "spec:var_file"),),
                   band_keys=("FILTER", "BAND"), band_re=r"[grizy]",
                   band_alias={"hsc-g": "g", "hsc-r": "r", "hsc-r2": "r", "hsc-i": "i",
                               "hsc-i2": "i", "hsc-z": "z", "hsc-y": "y"},
                   calib_err={"*": 0.02}),
    "legacy": _Survey(_legacy, False, ("weight_file",), pixscale=0.262, unit="nanomaggy",
                      filters=r"decam_[griz]|bass_[gr]|mzls_z",
                      needs=(("spec:weight_file", "hdu:INVVAR", "hdu:IVAR"),),
                      band_keys=("BAND", "FILTER"), band_re=r"[griz]",
                      calib_err={"*": 0.02}),
    "generic": _Survey(_generic, False, NOISE_KEYS, band_keys=("FILTER",),
                       calib_err={"*": 0.0}),
}
KNOWN_SURVEYS = tuple(SURVEYS)


# --------------------------------------------------------------------------- spec & PSF

def _check_spec(spec):
    """Validate the band spec; return (path, survey name, Filter)."""
    if not isinstance(spec, dict):
        raise InputError(f"a band spec must be a mapping, got {type(spec).__name__}.",
                         _SPEC_PATH, "write each band as {filter, survey, file, ...}.")
    where = spec.get("file") or _SPEC_PATH
    missing = [k for k in ("filter", "survey", "file") if spec.get(k) in (None, "")]
    if missing:
        raise InputError(f"band spec lacks {missing}.", where,
                         "give every band a filter, a survey and a file.")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise InputError(f"unknown band spec keys {unknown}.", where,
                         f"use only {sorted(SPEC_KEYS)}.")
    path = Path(spec["file"])
    survey = str(spec["survey"]).strip().lower()
    if survey not in SURVEYS:
        raise InputError(f"unknown survey {spec['survey']!r}.", path,
                         f"use one of {list(KNOWN_SURVEYS)} ('generic' with BUNIT or a "
                         "zeropoint for anything else).")
    try:
        filt = get_filter(spec["filter"])
    except InputError as exc:
        raise InputError(exc.problem, path, exc.fix) from None
    allowed = SURVEYS[survey].noise_keys
    for k in NOISE_KEYS:
        if spec.get(k) is not None and k not in allowed:
            raise InputError(f"survey {survey} does not take {k}.", path,
                             f"remove {k}" + (f" (it takes {list(allowed)})." if allowed
                                              else "; its variance comes from the image."))
    for k in ("psf_fwhm", "psf_pixscale", "gain", "bkg_box", "moffat_beta"):
        v = spec.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not np.isfinite(v) or v <= 0):
            raise InputError(f"{k}={v!r} must be a positive number.", path, f"fix {k}.")
    for k in ("calib_err", "zeropoint"):
        v = spec.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not np.isfinite(v) or (k == "calib_err" and v < 0)):
            raise InputError(f"{k}={v!r} must be a finite number"
                             f"{' >= 0' if k == 'calib_err' else ''}.", path, f"fix {k}.")
    for k in ("cosmic_rays", "sky"):
        if spec.get(k) is not None and not isinstance(spec[k], (bool, np.bool_)):
            raise InputError(f"{k}={spec[k]!r} must be true or false.", path, f"fix {k}.")
    if spec.get("zeropoint") is not None and survey != "generic":
        raise InputError(f"'zeropoint' is for survey generic; {survey} takes its zero point "
                         "from the header.", path, "remove 'zeropoint'.")
    if spec.get("sky") is not None and survey != "generic":
        raise InputError(f"'sky' is for survey generic; {survey} is known to "
                         f"{'hold' if SURVEYS[survey].sky_in_image else 'not hold'} the sky.",
                         path, "remove 'sky'.")
    model = psf_options(spec)["psf_model"]
    if model not in PSF_MODELS:
        raise InputError(f"psf_model={model!r}.", path,
                         f"use one of {', '.join(repr(m) for m in PSF_MODELS)}.")
    eps = spec.get("psf_obscuration")
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))
                            or not np.isfinite(eps) or not 0 <= eps < 1):
        raise InputError(f"psf_obscuration={eps!r} must be a number in [0, 1) (the central "
                         "obscuration's linear fraction of the aperture).", path,
                         "fix psf_obscuration: 0 for none, ~0.11 for JWST, ~0.33 for HST.")
    return path, survey, filt


def _psf_fwhm_from_image(psf, pixscale):
    """FWHM (arcsec) of a PSF image: the diameter of the circle with the area above half max."""
    area = np.count_nonzero(psf >= 0.5 * psf.max())
    return float(2.0 * np.sqrt(area / np.pi) * pixscale)


def _load_psf(spec, path):
    """(psf image or None, psf_pixscale or None, FWHM arcsec)."""
    fwhm = spec.get("psf_fwhm")
    if spec.get("psf_file") is None:
        if fwhm is None:
            raise InputError("no PSF: neither psf_fwhm nor psf_file is given.", path,
                             "give psf_fwhm (arcsec) or psf_file + psf_pixscale for this band.")
        return None, None, float(fwhm)
    pfile = Path(spec["psf_file"])
    if spec.get("psf_pixscale") is None:
        raise InputError("psf_file is given without psf_pixscale.", pfile,
                         "give psf_pixscale (arcsec per PSF pixel).")
    hdul = _read_fits(pfile, what="PSF")
    psf = np.asarray(hdul[_image_hdu(hdul, pfile)].data, dtype=np.float64)
    if psf.shape[0] % 2 == 0 or psf.shape[1] % 2 == 0:
        raise InputError(f"PSF image has even shape {psf.shape}.", pfile,
                         "give a PSF of odd size, centred on the central pixel.")
    total = float(np.sum(psf)) if np.all(np.isfinite(psf)) else np.nan
    if not total > 0:
        raise InputError("PSF image has NaN pixels or a non-positive sum.", pfile,
                         "give a finite PSF image with a positive sum.")
    psf = psf / total
    if fwhm is None:
        fwhm = _psf_fwhm_from_image(psf, float(spec["psf_pixscale"]))
    return psf, float(spec["psf_pixscale"]), float(fwhm)


# --------------------------------------------------------------------------- main

def _no_coverage(raw, size=15):
    """Blocks of at least ``size`` x ``size`` exact zeros: outside the detector's field."""
    zero = raw == 0
    if not zero.any():
        return zero
    return ndimage.binary_opening(zero, structure=np.ones((size, size), dtype=bool))


#: Default background mesh, arcsec: a cut-out of a few arcmin holds a few boxes,
#: and each box is larger than a galaxy's clumps.
DEFAULT_BOX_ARCSEC = 32.0


def _pixel_scales(wcs):
    """Arcsec per pixel along each axis of the celestial WCS."""
    return proj_plane_pixel_scales(wcs.celestial) * 3600.0


def _default_box(wcs):
    pix = float(np.sqrt(np.prod(_pixel_scales(wcs))))
    return max(16, round(DEFAULT_BOX_ARCSEC / pix))


def load_band(spec):
    """Read one band's image into a :class:`BandImage` in erg/s/cm^2/AA per pixel.

    Parameters
    ----------
    spec : dict
        ``{filter, survey, file, [hdu], [psf_fwhm | psf_file + psf_pixscale],
        [psf_model], [moffat_beta], [psf_obscuration], [unc_file | weight_file | var_file],
        [cosmic_rays], [calib_err], [gain], [zeropoint], [sky], [bkg_box]}``
        (see the module docstring and docs/surveys.md).

    Returns
    -------
    BandImage
        ``data`` background subtracted; ``var`` by the survey recipe (no
        calibration error); ``mask`` True (and data/var NaN) where unusable;
        ``meta`` with the survey's numbers (zero point, exposure time, gain, sky
        level, native unit, ``flam_per_native``, ``n_cosmic``,
        ``bkg_subtracted``, ``calib_err`` (fractional, always present) and
        ``calib_err_source`` ...).

    Raises
    ------
    InputError
        Missing/corrupt file, no celestial WCS, unknown survey, filter or unit,
        a file that is not what the survey recipe assumes (pixel scale, BUNIT,
        FILTER/BAND, header keys or HDUs), negative variance, or
        NaN/non-positive variance over more than half of the image. The message
        names the file.
    """
    path, survey, filt = _check_spec(spec)
    info = SURVEYS[survey]
    psf, psf_pixscale, fwhm = _load_psf(spec, path)
    hdul = _read_fits(path)
    idx = _image_hdu(hdul, path, spec.get("hdu"), info.prefer_hdu)
    header = hdul[idx].header
    wcs = read_wcs(header, path, f"HDU {idx}")
    raw = np.array(hdul[idx].data, dtype=np.float64)
    b = _Band(spec=spec, path=path, survey=survey, filter=filt, hdul=hdul, header=header,
              primary=hdul[0].header, raw=raw, wcs=wcs)
    _check_assumptions(b, info, _pixel_scales(wcs))
    b.bad = ~np.isfinite(raw)
    if survey == "galex":
        b.bad |= _no_coverage(raw)
    if b.bad.all():
        raise InputError("the image has no finite pixel.", path, "check the file.")
    meta = {"survey": survey, "hdu": idx}

    if spec.get("cosmic_rays"):
        raw, cr = clean_cosmic_rays(np.where(b.bad, np.nan, raw))
        b.raw = raw
        meta["n_cosmic"] = int(cr.sum())

    sky_in = bool(spec.get("sky", False)) if survey == "generic" else info.sky_in_image
    # where the sky is subtracted here, its level matters: boxes of ~32" and a
    # source mask grown by 8 px keep the galaxy's faint wings out of it
    box = int(spec.get("bkg_box") or (_default_box(wcs) if sky_in else DEFAULT_BOX))
    b.bkg, b.rms = estimate_background(b.raw, mask=b.bad, box_size=box,
                                       estimator=info.bkg_estimator,
                                       dilate=8 if sky_in else 2,
                                       ellipse_scale=4.0 if sky_in else 0.0)
    good = ~b.bad
    level = float(np.median(b.bkg[good]))
    if sky_in:
        b.data = b.raw - b.bkg
        # uncertainty of the subtracted sky level: the rms over the ~ (3 box)^2 pixels
        # (box grid median-filtered 3x3) that set it; an offset common to many pixels,
        # so the matching step adds it after the convolution, not before
        n_eff = max(float(good.mean()) * (3 * box) ** 2 * 0.5, 1.0)
        meta.update(sky_level=level, bkg_subtracted="Background2D map",
                    bkg_err_native=float(np.median(b.rms[good])) / np.sqrt(n_eff))
    else:  # the survey subtracted the sky; see the module docstring
        b.data = b.raw.copy()
        meta.update(sky_level=0.0, residual_level=level, bkg_subtracted="none")
    meta["bkg_rms"] = float(np.median(b.rms[good]))

    res = info.recipe(b)
    var = np.asarray(res.var, dtype=np.float64)
    # the calibration error scales every pixel of the band together: it is not a pixel
    # variance (the fit adds (calib_err * F_bin)**2 to each binned flux's variance)
    if spec.get("calib_err") is not None:
        meta.update(calib_err=float(spec["calib_err"]), calib_err_source="band spec")
    else:
        meta.update(calib_err=default_calib_err(survey, filt.name),
                    calib_err_source=f"{survey} default (docs/surveys.md)")
    flag = b.bad if res.flag is None else (b.bad | res.flag)
    b.check_nonneg(np.where(flag, 0.0, var), "variance")
    badvar = ~flag & ~(np.isfinite(var) & (var > 0))
    nbad = int(badvar.sum())
    if nbad > MAX_BAD_VAR_FRACTION * var.size:
        raise InputError(f"the variance is NaN or <= 0 in {nbad} of {var.size} pixels "
                         f"(more than {MAX_BAD_VAR_FRACTION:.0%}).", path,
                         "check the noise map / header keys of this band (a sky-subtracted "
                         "image without noise in the sky cannot be used).")
    mask = flag | badvar
    factor = float(res.factor)
    meta["bkg_err"] = meta.get("bkg_err_native", 0.0) * factor  # flam per native pixel
    data = np.where(mask, np.nan, b.data * factor)
    var = np.where(mask, np.nan, var * factor**2)
    meta.update(res.meta)
    meta.update({"flam_per_native": factor, "n_masked": int(mask.sum())})
    return BandImage(filter=filt.name, data=data, var=var, wcs=wcs, psf_fwhm=fwhm, mask=mask,
                     psf=psf, psf_pixscale=psf_pixscale, **psf_options(spec), survey=survey,
                     path=str(path), meta=meta)
