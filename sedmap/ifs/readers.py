"""Readers of IFS data cubes: MaNGA, CALIFA and MUSE, into one in-memory :class:`IFSCube`.

Every reader returns the cube as delivered by its survey, only put into one
form:

* ``wave``: wavelength of each plane, Å, observed frame, in the medium of the
  survey (``air`` is True for CALIFA and MUSE, False for MaNGA);
* ``flux``, ``var``: ``(n_wave, ny, nx)`` float32, flux density *per spaxel*
  in units of ``fscale`` erg s⁻¹ cm⁻² Å⁻¹ and its variance (units
  ``fscale**2``); NaN wherever the pixel is unusable (flagged, not finite, or
  with a NaN, zero or negative variance);
* ``wcs``: the 2-D celestial WCS of the spaxel grid;
* ``psf_fwhm``: ``(n_wave,)`` spatial PSF FWHM, arcsec, or None if unknown;
* ``spaxel_mask``: ``(ny, nx)`` True where the spaxel has at least one usable
  pixel.

Units are read from ``BUNIT`` with astropy, after the usual survey spellings
are normalised (``Ang`` and a lone ``A`` mean Å, ``/spaxel`` is dropped since
flux per spaxel is what the cubes hold; a surface brightness per arcsec² is
multiplied by the spaxel area). A ``BUNIT`` that is not a flux density per
unit wavelength raises :class:`~sedmap.errors.InputError`; a missing one
falls back to the survey's documented scale (``SURVEY_FSCALE``) with a
warning in the log.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..errors import InputError
from ..filters import get_filter
from ..images.grid import pixel_area_arcsec2
from ..io.fits_utils import FLUX_UNIT, read_wcs, read_whole_fits

log = logging.getLogger(__name__)

__all__ = [
    "SURVEYS",
    "SURVEY_FSCALE",
    "IFSCube",
    "air_to_vacuum",
    "read_califa",
    "read_cube",
    "read_manga",
    "read_muse",
    "read_wcs_cube",
    "muse_fsf_fwhm",
    "noise_reading",
]

#: Surveys :func:`read_cube` knows (``wcs``: any cube with a WCS, :func:`read_wcs_cube`).
SURVEYS = ("manga", "califa", "muse", "wcs")

#: Per-pixel S/N a noise extension may imply, read as 1-sigma or as a variance:
#: :func:`noise_reading` accepts the one reading that falls in this range.
PLAUSIBLE_SNR = (1e-3, 1e4)

#: Flux scale (erg/s/cm2/Å per stored unit) each survey documents, used when BUNIT is absent.
SURVEY_FSCALE = {"manga": 1e-17, "califa": 1e-16, "muse": 1e-20}

#: CALIFA DR3 cubes: PSF FWHM ~2.5" (García-Benito et al. 2015), used when the header has none.
CALIFA_PSF_FWHM = 2.5

#: MaNGA DRP 3-D pixel mask bits that make a pixel unusable:
#: NOCOV (0), LOWCOV (1), DEADFIBER (2), FORESTAR (3), DONOTUSE (10).
MANGA_BAD_BITS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 10)

_CORRUPT_FIX = "download the cube again (the file is damaged or not a FITS file)."
_MISSING_FIX = "check the path of the IFS cube (ifs.cube in the config)."


@dataclass(eq=False)
class IFSCube:
    """An IFS data cube in memory (see the module docstring for the conventions)."""

    survey: str
    path: str
    wave: np.ndarray          #: (n_wave,) Å, observed frame, air if ``air``
    flux: np.ndarray          #: (n_wave, ny, nx) float32, fscale erg/s/cm2/Å per spaxel
    var: np.ndarray           #: (n_wave, ny, nx) float32, fscale**2; NaN = bad
    wcs: WCS                  #: 2-D celestial WCS of the spaxels
    fscale: float             #: flux * fscale is in erg/s/cm2/Å
    psf_fwhm: np.ndarray | None  #: (n_wave,) arcsec, or None if unknown
    spaxel_mask: np.ndarray   #: (ny, nx) bool, True = spaxel has usable pixels
    air: bool = False         #: wavelengths in air (True) or vacuum (False)
    ebv: float | None = None  #: Milky-Way E(B-V) in the header, if any (informative)

    @property
    def shape(self):
        """``(ny, nx)`` of the spaxel grid."""
        return tuple(self.flux.shape[1:])

    @property
    def pixscale(self):
        """Spaxel side, arcsec (square root of the spaxel area)."""
        return float(np.sqrt(pixel_area_arcsec2(self.wcs)))


# --------------------------------------------------------------------------- helpers

def air_to_vacuum(wave_air):
    """Vacuum wavelengths (Å) of air wavelengths (Å): Ciddor (1996) as in IDL ``airtovac``.

    Wavelengths below 2000 Å are returned unchanged (they are vacuum by convention).
    """
    wave = np.asarray(wave_air, dtype=float)
    sigma2 = (1e4 / wave) ** 2
    fact = 1.0 + 5.792105e-2 / (238.0185 - sigma2) + 1.67917e-3 / (57.362 - sigma2)
    return np.where(wave >= 2000.0, wave * fact, wave)


_UNIT_FIXES = (
    (re.compile(r"/\s*(spaxel|spax|pixel|pix)\b|\b(spaxel|spax|pixel|pix)(\^|\*\*)?-1\b",
                re.IGNORECASE), ""),
    (re.compile(r"\bAng\b"), "Angstrom"),
    (re.compile(r"\bA\b"), "Angstrom"),  # an Ampere never appears in a flux density
    (re.compile(r"\*\*\(\s*([-+]?\d+)\s*\)"), r"**\1"),  # 10**(-16)
    (re.compile(r"\^\(\s*([-+]?\d+)\s*\)"), r"**\1"),    # 10^(-16)
)

#: "<factor> (<unit>)^<power>", e.g. MaNGA's IVAR '1E+34 (erg/s/cm^2/Ang/spaxel)^-2'
#: and MUSE's '10**(-40)*(erg/s/cm**2/Angstrom)**2' (after the fixes above)
_POWER_OF_GROUP = re.compile(r"^\s*([0-9.eE+-]+(?:\*\*[-+]?\d+)?)?\s*\*?\s*\((.+)\)\s*"
                             r"(?:\^|\*\*)\s*\(?([-+]?\d+)\)?\s*$")


def _number(text):
    """``'1E+34'`` or ``'10**-40'`` as a float (empty: 1)."""
    if not text:
        return 1.0
    base, _, power = text.partition("**")
    return float(base) ** int(power) if power else float(base)


def _parse(bunit, path, where):
    text = str(bunit).strip()
    for pattern, repl in _UNIT_FIXES:
        text = pattern.sub(repl, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return u.Unit(text, parse_strict="raise")
        except (ValueError, TypeError) as exc:
            m = _POWER_OF_GROUP.match(text)
            try:
                if m:
                    factor = _number(m.group(1))
                    return u.CompositeUnit(factor, [u.Unit(m.group(2), parse_strict="raise")],
                                           [int(m.group(3))])
            except (ValueError, TypeError):
                pass
            raise InputError(f"{where}: unit {bunit!r} is not a unit astropy can parse ({exc}).",
                             path, "set BUNIT to a flux density such as "
                             "'1e-17 erg s-1 cm-2 Angstrom-1'.") from None


def unit_scale(bunit, power, path, where, spaxel_area):
    """Scale ``s`` such that ``data * s`` is in (erg/s/cm2/Å per spaxel) ** ``power``.

    ``power`` is 1 for a flux, 2 for a variance and -2 for an inverse variance.
    A surface brightness (per arcsec² or per sr) is turned into a flux per
    spaxel with ``spaxel_area`` (arcsec²). Raises InputError for anything that
    is not a flux density per unit wavelength (to that power).
    """
    unit = _parse(bunit, path, where)
    for per_area in (False, True):
        target = FLUX_UNIT**power * (u.arcsec ** (-2 * power) if per_area else 1)
        try:
            scale = float(unit.to(target))
        except u.UnitConversionError:
            continue
        scale *= spaxel_area**power if per_area else 1.0
        return float(f"{scale:.12g}")  # 1e-17, not 9.999999999999999e-18
    what = {1: "flux density per unit wavelength", 2: "variance of a flux density",
            -2: "inverse variance of a flux density"}[power]
    raise InputError(f"{where}: unit {bunit!r} is not a {what} (physical type "
                     f"{unit.physical_type}).", path,
                     "give the cube in erg s-1 cm-2 Angstrom-1 (times a scale) per spaxel, "
                     "with BUNIT set to match (an f_nu cube must be converted first).")


def _flux_scale(header, survey, path, where, spaxel_area, keys=("BUNIT",)):
    """Scale of the flux HDU, from the first of ``keys`` present, else the survey default."""
    for key in keys:
        if header.get(key) not in (None, ""):
            return unit_scale(header[key], 1, path, where, spaxel_area)
    log.warning("%s: %s has no BUNIT; assuming the %s convention, %g erg/s/cm2/AA per spaxel",
                path, where, survey, SURVEY_FSCALE[survey])
    return SURVEY_FSCALE[survey]


def _var_scale(header, power, flux_scale, path, where, spaxel_area):
    """Scale of a variance (power 2) or inverse variance (-2) HDU; default: that of the flux."""
    if header.get("BUNIT") not in (None, ""):
        return unit_scale(header["BUNIT"], power, path, where, spaxel_area)
    return flux_scale**power


def _open(path):
    path = Path(path)
    return path, read_whole_fits(path, missing_fix=_MISSING_FIX, corrupt_fix=_CORRUPT_FIX,
                                 what="IFS cube")


def _cube_hdu(hdul, name, path, survey):
    """Data of the 3-D image HDU ``name`` (int index or EXTNAME); InputError if absent."""
    if (isinstance(name, int) and name >= len(hdul)) or (isinstance(name, str)
                                                         and name not in hdul):
        raise InputError(f"missing extension {name} (a {survey} cube has it).", path,
                         f"pass the {survey} cube as delivered by the survey, or the right "
                         "survey name (ifs.survey).")
    hdu = hdul[name]
    if hdu.data is None or np.ndim(hdu.data) != 3:
        got = "no data" if hdu.data is None else f"{np.ndim(hdu.data)} dimensions"
        raise InputError(f"extension {name} should hold a 3-D cube (n_wave, ny, nx) but has "
                         f"{got}.", path, f"pass the {survey} cube as delivered by the survey.")
    return hdu


def _check_same_shape(a, b, name_a, name_b, path):
    if a.shape != b.shape:
        raise InputError(f"{name_b} has shape {b.shape} but {name_a} has {a.shape}.", path,
                         "pass an unmodified cube: every extension must cover the same pixels.")


def header_wave(header, n_wave, path, where):
    """Wavelengths (Å) of the spectral axis 3 of ``header`` (linear, or ``-LOG``)."""
    if "CRVAL3" not in header:
        raise InputError(f"{where}: the header has no spectral axis (CRVAL3 missing).", path,
                         "pass a cube whose header defines axis 3 (CRVAL3, CDELT3 or CD3_3).")
    step = header.get("CD3_3", header.get("CDELT3"))
    if step is None:
        raise InputError(f"{where}: the spectral axis has no step (CDELT3/CD3_3 missing).", path,
                         "pass a cube whose header defines axis 3 (CRVAL3, CDELT3 or CD3_3).")
    crval, crpix = float(header["CRVAL3"]), float(header.get("CRPIX3", 1.0))
    p = np.arange(1, n_wave + 1, dtype=float) - crpix
    if "LOG" in str(header.get("CTYPE3", "")).upper():
        wave = crval * np.exp(float(step) * p / crval)
    else:
        wave = crval + float(step) * p
    cunit = str(header.get("CUNIT3", "") or "").strip()
    if cunit:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wave = wave * u.Unit(cunit).to(u.AA)
        except (ValueError, u.UnitConversionError):
            raise InputError(f"{where}: CUNIT3 {cunit!r} is not a wavelength unit.", path,
                             "set CUNIT3 to 'Angstrom' (or 'm', 'nm').") from None
    return _check_wave(wave, path, where)


def _check_wave(wave, path, where):
    wave = np.asarray(wave, dtype=float)
    if not (np.all(np.isfinite(wave)) and np.all(np.diff(wave) > 0)):
        raise InputError(f"{where}: the wavelengths are not finite and increasing.", path,
                         "pass the cube as delivered by the survey.")
    if wave[0] < 1000.0 or wave[-1] > 3e5:
        raise InputError(f"{where}: the wavelengths run {wave[0]:.4g}-{wave[-1]:.4g}, which is "
                         "not an optical/IR range in Å.", path,
                         "set CUNIT3 to the unit of the wavelength axis (e.g. 'Angstrom').")
    return wave


def _finish(survey, path, wave, flux, var, bad, wcs, fscale, psf_fwhm, air, ebv):
    """Mask bad pixels (flags, non-finite data, NaN/zero/negative variance) and build the cube."""
    flux = np.asarray(flux, dtype=np.float32)
    var = np.asarray(var, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        badvar = ~(np.isfinite(var) & (var > 0))
    good = ~bad & ~badvar & np.isfinite(flux)
    if not good.any():
        nvar = int(np.count_nonzero(badvar & ~bad))
        raise InputError(f"no usable pixel in the cube: every pixel is flagged, not finite, or "
                         f"has a NaN, zero or negative variance ({nvar} of {var.size} pixels "
                         "have a bad variance).", path,
                         "check the variance/error extension of the cube (all-zero errors are a "
                         "sign of a broken reduction); download the cube again.")
    nbad = int(np.count_nonzero(badvar & ~bad & np.isfinite(flux)))
    if nbad:
        log.info("%s: %d pixels with a NaN, zero or negative variance are masked", path, nbad)
    flux = np.where(good, flux, np.float32(np.nan))
    var = np.where(good, var, np.float32(np.nan))
    if psf_fwhm is not None:
        psf_fwhm = np.broadcast_to(np.asarray(psf_fwhm, dtype=float), wave.shape).copy()
    return IFSCube(survey=survey, path=str(path), wave=wave, flux=flux, var=var, wcs=wcs,
                   fscale=float(fscale), psf_fwhm=psf_fwhm, spaxel_mask=good.any(axis=0),
                   air=air, ebv=ebv)


def _celestial(header, path, where):
    wcs = read_wcs(header, path, where)
    return wcs.celestial


def _medium(header, default_air):
    ctype = str(header.get("CTYPE3", "")).upper()
    if ctype.startswith("AWAV"):
        return True
    if ctype.startswith("WAVE"):
        return False
    return default_air


def _positive_float(header, keys):
    for key in keys:
        try:
            v = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(v) and v > 0:
            return v
    return None


# --------------------------------------------------------------------------- readers

def _flux_and_noise(hdul, path, survey, flux_ext, noise_ext, where, keys=("BUNIT",)):
    """The flux and noise HDUs of a cube, checked to match, with its celestial WCS,
    spaxel area (arcsec^2) and flux scale (erg/s/cm2/Å per stored unit)."""
    fhdu = _cube_hdu(hdul, flux_ext, path, survey)
    nhdu = _cube_hdu(hdul, noise_ext, path, survey)
    _check_same_shape(fhdu.data, nhdu.data, where, noise_ext, path)
    wcs = _celestial(fhdu.header, path, where)
    area = pixel_area_arcsec2(wcs)
    fscale = _flux_scale(fhdu.header, survey.lower(), path, where, area, keys=keys)
    return fhdu, nhdu, wcs, area, fscale


def read_manga(path):
    """Read a MaNGA DRP ``LOGCUBE`` (also the layout :func:`sedmap.mock.make_mock` writes).

    Extensions ``FLUX`` (1e-17 erg/s/cm2/Å/spaxel), ``IVAR``, ``MASK`` (DRP
    3-D pixel mask; bits NOCOV, LOWCOV, DEADFIBER, FORESTAR and DONOTUSE are
    masked) and ``WAVE`` (Å, vacuum, log-spaced; the header's ``WAVE-LOG``
    axis is used if ``WAVE`` is absent). The PSF FWHM per wavelength is
    interpolated (linearly, held constant beyond the ends) between the
    primary header's ``GFWHM``, ``RFWHM``, ``IFWHM`` and ``ZFWHM`` at the SDSS
    g, r, i, z pivot wavelengths; ``EBVGAL`` is kept as ``ebv``.

    Returns
    -------
    IFSCube
    """
    path, hdul = _open(path)
    fhdu, ihdu, wcs, area, fscale = _flux_and_noise(hdul, path, "MaNGA", "FLUX", "IVAR", "FLUX")
    flux, ivar = fhdu.data, ihdu.data
    iscale = _var_scale(ihdu.header, -2, fscale, path, "IVAR", area)
    bad = np.zeros(flux.shape, dtype=bool)
    if "MASK" in hdul:
        mask = _cube_hdu(hdul, "MASK", path, "MaNGA").data
        _check_same_shape(flux, mask, "FLUX", "MASK", path)
        bad = (np.asarray(mask).astype(np.int64) & MANGA_BAD_BITS) != 0
    if "WAVE" in hdul and hdul["WAVE"].data is not None:
        wave = np.asarray(hdul["WAVE"].data, dtype=float).ravel()
        if wave.size != flux.shape[0]:
            raise InputError(f"WAVE has {wave.size} entries but FLUX has {flux.shape[0]} "
                             "planes.", path, "pass the MaNGA LOGCUBE as delivered.")
        wave = _check_wave(wave, path, "WAVE")
    else:
        wave = header_wave(fhdu.header, flux.shape[0], path, "FLUX")
    with np.errstate(divide="ignore", invalid="ignore"):
        # ivar * iscale is in (erg/s/cm2/AA)^-2 -> variance in units of fscale^2
        var = 1.0 / (np.asarray(ivar, dtype=np.float64) * iscale * fscale**2)
    head = hdul[0].header
    psf = header_psf_fwhm("manga", head, fhdu.header, wave, path)
    ebv = _positive_float(head, ["EBVGAL"])
    return _finish("manga", path, wave, flux, var, bad, wcs, fscale, psf,
                   _medium(fhdu.header, False), ebv)


def read_califa(path):
    """Read a CALIFA cube (V500, V1200 or COMB).

    Primary HDU: the flux cube, 1e-16 erg/s/cm2/Å per spaxel (``BUNIT`` or
    ``PIPE UNITS`` if given); ``ERROR`` (1-sigma, same units); ``BADPIX``
    (optional, non-zero = bad). Linear spectral axis ``CRVAL3``/``CDELT3``
    (air wavelengths). The PSF FWHM is the header's ``PSF_FWHM``/``FWHM`` if
    present, else the survey's 2.5" (``CALIFA_PSF_FWHM``).

    Returns
    -------
    IFSCube
    """
    path, hdul = _open(path)
    fhdu, ehdu, wcs, area, fscale = _flux_and_noise(hdul, path, "CALIFA", 0, "ERROR", "PRIMARY",
                                                    keys=("BUNIT", "PIPE UNITS"))
    flux, err = fhdu.data, ehdu.data
    escale = (unit_scale(ehdu.header["BUNIT"], 1, path, "ERROR", area)
              if ehdu.header.get("BUNIT") not in (None, "") else fscale)
    var = (np.asarray(err, dtype=np.float64) * (escale / fscale)) ** 2
    bad = np.zeros(flux.shape, dtype=bool)
    if "BADPIX" in hdul:
        bp = _cube_hdu(hdul, "BADPIX", path, "CALIFA").data
        _check_same_shape(flux, bp, "the primary flux cube", "BADPIX", path)
        bad = np.asarray(bp) != 0
    wave = header_wave(fhdu.header, flux.shape[0], path, "PRIMARY")
    psf = header_psf_fwhm("califa", hdul[0].header, fhdu.header, wave, path)
    return _finish("califa", path, wave, flux, var, bad, wcs, fscale, psf,
                   _medium(fhdu.header, True), None)


def read_muse(path):
    """Read a MUSE cube: ``DATA`` and ``STAT`` (variance) HDUs, optional ``DQ`` (0 = good).

    Units from ``BUNIT`` (MUSE: ``10**(-20)*erg/s/cm**2/Angstrom`` per spaxel,
    variance in its square); spectral axis from the ``DATA`` header (``AWAV``:
    air). The PSF FWHM, in order of preference: the cube's own PSF model
    (:func:`muse_fsf_fwhm`: ``FSFMODE``/``FSFnnFWA``/``FSFnnFWB``, a FWHM at
    every wavelength), ``SKY_RES`` (ESO phase-3 products), the mean of the
    positive ``ESO TEL AMBI FWHM START/END`` (the seeing at the telescope,
    broader than the cube's PSF), else unknown (None: pass ``psf_fwhm`` to the
    matching).

    Returns
    -------
    IFSCube
    """
    path, hdul = _open(path)
    dhdu, shdu, wcs, area, fscale = _flux_and_noise(hdul, path, "MUSE", "DATA", "STAT", "DATA")
    flux, var = dhdu.data, shdu.data
    vscale = _var_scale(shdu.header, 2, fscale, path, "STAT", area)
    var = np.asarray(var, dtype=np.float64) * (vscale / fscale**2)
    bad = np.zeros(flux.shape, dtype=bool)
    if "DQ" in hdul:
        dq = _cube_hdu(hdul, "DQ", path, "MUSE").data
        _check_same_shape(flux, dq, "DATA", "DQ", path)
        bad = np.asarray(dq) != 0
    wave = header_wave(dhdu.header, flux.shape[0], path, "DATA")
    fieldmap = np.asarray(hdul["FIELDMAP"].data) if "FIELDMAP" in hdul else None
    psf = header_psf_fwhm("muse", hdul[0].header, dhdu.header, wave, path, fieldmap)
    return _finish("muse", path, wave, flux, var, bad, wcs, fscale, psf,
                   _medium(dhdu.header, True), None)


#: The flux extension of each survey's cube (:func:`cube_psf_fwhm` reads its header).
FLUX_EXT = {"manga": "FLUX", "califa": 0, "muse": "DATA"}


def header_psf_fwhm(survey, primary, flux_header, wave, path="", fieldmap=None):
    """PSF FWHM (arcsec) of a cube at ``wave`` (Å), from its headers alone, or None.

    * MaNGA: ``GFWHM``/``RFWHM``/``IFWHM``/``ZFWHM`` at the SDSS pivots,
      interpolated (constant beyond);
    * CALIFA: ``PSF_FWHM`` (or ``PSFFWHM``, ``FWHM``), else 2.5\" (DR3);
    * MUSE: the cube's PSF model (:func:`muse_fsf_fwhm`), else ``SKY_RES``
      (ESO phase-3), else the mean of ``ESO TEL AMBI FWHM START/END`` (the
      seeing at the telescope, broader than the cube's PSF);
    * wcs: ``PSF_FWHM``, ``PSFFWHM``, ``SEEING`` or ``FWHM`` (flux, then primary header).
    """
    wave = np.asarray(wave, float)
    if survey == "manga":
        pts = [(get_filter(f"sdss_{b}").pivot_wavelength,
                _positive_float(primary, [f"{b.upper()}FWHM"])) for b in "griz"]
        pts = [(w, f) for w, f in pts if f is not None]
        return np.interp(wave, [w for w, _ in pts], [f for _, f in pts]) if pts else None
    keys = ["PSF_FWHM", "PSFFWHM", "SEEING", "FWHM"]
    if survey == "califa":
        return _positive_float(flux_header, keys[:2] + keys[3:]) or CALIFA_PSF_FWHM
    if survey == "muse":
        psf = muse_fsf_fwhm(primary, wave, fieldmap)
        if psf is not None:
            log.info("%s: PSF from the FSF model keywords, FWHM %.3f\" at %.0f AA to %.3f\" "
                     "at %.0f AA", path, psf[0], wave[0], psf[-1], wave[-1])
            return psf
        psf = _positive_float(primary, ["SKY_RES"]) or _positive_float(flux_header, ["SKY_RES"])
        if psf is None:
            seeing = [v for v in (_positive_float(primary, [k]) for k in
                                  ("ESO TEL AMBI FWHM START", "ESO TEL AMBI FWHM END")) if v]
            psf = float(np.mean(seeing)) if seeing else None
        return psf
    return _positive_float(flux_header, keys) or _positive_float(primary, keys)


def _flux_ext(survey, reader=None):
    """The flux extension of a cube: the survey's, or ``ifs.reader.flux_ext`` (wcs; the
    generic reader's own default where no reader section is given)."""
    if survey != "wcs":
        return FLUX_EXT[survey]
    return reader["flux_ext"] if reader else WCS_READER_DEFAULTS["flux_ext"]


def cube_psf_fwhm(path, survey, wave, reader=None):
    """PSF FWHM (arcsec) of the cube at ``path`` at ``wave`` (Å), reading its headers
    only (a configuration check need not load a large cube); None if unknown."""
    path = Path(path)
    if not path.is_file():
        raise InputError("the IFS cube does not exist.", path, _MISSING_FIX)
    ext = _flux_ext(survey, reader)
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            primary, flux_header = hdul[0].header.copy(), hdul[ext].header.copy()
            fieldmap = (np.asarray(hdul["FIELDMAP"].data)
                        if survey == "muse" and "FIELDMAP" in hdul else None)
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise InputError(f"cannot read the headers of the cube ({exc}).", path,
                         _CORRUPT_FIX) from None
    psf = header_psf_fwhm(survey, primary, flux_header, wave, path, fieldmap)
    return None if psf is None else np.broadcast_to(np.asarray(psf, float), np.shape(wave))


def cube_wave_range(path, survey, reader=None):
    """(min, max) wavelength of the cube at ``path``, Å, in vacuum, from its header
    (MaNGA's WAVE table when present)."""
    path = Path(path)
    ext = _flux_ext(survey, reader)
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        head = hdul[ext].header
        if survey == "manga" and "WAVE" in hdul:
            wave = np.asarray(hdul["WAVE"].data, float)
        else:
            wave = header_wave(head, int(head["NAXIS3"]), path, f"extension {ext}")
        air = _medium(head, survey in ("califa", "muse"))
        if survey == "wcs" and (reader or {}).get("air") is not None:
            air = bool(reader["air"])
    wave = air_to_vacuum(wave) if air else wave
    return float(wave[0]), float(wave[-1])


def muse_fsf_fwhm(header, wave, fieldmap=None):
    """PSF FWHM (arcsec) at ``wave`` (Å) from a MUSE cube's FSF model keywords, or None.

    The MUSE pipeline and mpdaf describe the PSF ("FSF") of a cube with
    ``FSFMODE = 'MOFFAT1'`` and, for each field ``nn`` that went into it,
    ``FSFnnFWA`` and ``FSFnnFWB``: FWHM(λ) = FWA + FWB λ (arcsec, λ in Å), with
    Moffat index ``FSFnnBET``. A mosaic lists its fields, and its ``FIELDMAP``
    (``fieldmap``, 2-D; bit ``nn`` set where field ``nn`` contributes, as
    mpdaf's ``FieldsMap``) says which cover the cube: their FWHMs are averaged,
    weighted by the spaxels each covers (without a field map, all fields
    equally). The UDF subcube: fields 6 (all spaxels) and 9 (122 of 900),
    0.68\" at 5060 Å, where its seeing keyword says 0.79\". Returns None
    without the keywords or with another FSFMODE.
    """
    mode = str(header.get("FSFMODE", "")).strip().upper()
    if mode != "MOFFAT1":
        return None
    fields = sorted({k[3:5] for k in header if re.fullmatch(r"FSF\d\dFWA", k)})
    if not fields:
        return None
    wave = np.asarray(wave, float)
    weight = np.ones(len(fields))
    if fieldmap is not None:
        fm = np.asarray(fieldmap).astype(np.int64)
        weight = np.array([np.count_nonzero(fm & (1 << int(f))) for f in fields], float)
        if not weight.any():
            weight = np.ones(len(fields))
    fwhm = np.average([float(header[f"FSF{f}FWA"]) + float(header.get(f"FSF{f}FWB", 0.0)) * wave
                       for f in fields], axis=0, weights=weight)
    return fwhm if np.all(np.isfinite(fwhm) & (fwhm > 0)) else None


def noise_reading(flux, noise, path, where, plausible=PLAUSIBLE_SNR):
    """Whether a noise extension holds 1-sigma errors or variances, from the data.

    The median per-pixel S/N is computed both ways, ``|flux| / noise`` and
    ``|flux| / sqrt(noise)``; the reading whose S/N lies in ``plausible`` is
    the answer. A GMOS cube with data ~1e-16 and "errors" ~1e-33 is a
    variance (S/N ~3) and not an error (S/N ~1e17).

    Returns
    -------
    {"error", "variance"}

    Raises
    ------
    InputError
        Both readings plausible (data of order unity) or neither: names both
        S/N and asks for ``ifs.reader.noise``.
    """
    f = np.abs(np.asarray(flux, float))
    n = np.asarray(noise, float)
    ok = np.isfinite(f) & np.isfinite(n) & (n > 0) & (f > 0)
    if not ok.any():
        raise InputError(f"{where}: no pixel has a finite positive noise and flux.", path,
                         "check the noise extension (ifs.reader.noise_ext).")
    snr = {"error": float(np.median(f[ok] / n[ok])),
           "variance": float(np.median(f[ok] / np.sqrt(n[ok])))}
    fits_ = [k for k, v in snr.items() if plausible[0] <= v <= plausible[1]]
    if len(fits_) == 1:
        log.info("%s: %s read as a %s (median S/N %.3g; as a%s it would be %.3g)", path, where,
                 fits_[0], snr[fits_[0]], "n error" if fits_[0] == "variance" else " variance",
                 snr["error" if fits_[0] == "variance" else "variance"])
        return fits_[0]
    raise InputError(
        f"{where}: cannot tell whether it holds errors or variances: read as 1-sigma errors "
        f"the median S/N per pixel is {snr['error']:.3g}, read as variances "
        f"{snr['variance']:.3g} ({'both' if fits_ else 'neither'} within "
        f"{plausible[0]:g}-{plausible[1]:g}).", path,
        "say which with ifs.reader.noise: error | variance | ivar.")


def _sky_wcs(shape, sky, path, where, header):
    """A TAN WCS for a cube whose spatial axes have no sky coordinates."""
    if not sky:
        ctypes = [str(header.get(f"CTYPE{i}", "")).strip() or "none" for i in (1, 2)]
        raise InputError(f"{where}: the spatial axes have no sky coordinates (CTYPE1/2 = "
                         f"{ctypes[0]}/{ctypes[1]}); sedmap matches a cube to the images "
                         "by sky position.", path,
                         "give the cube's position with ifs.reader.sky: {ra, dec, pixscale} "
                         "(the centre spaxel's RA/Dec in degrees, the spaxel size in arcsec, "
                         "north up), or a cube with RA---TAN/DEC--TAN axes.")
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(sky["ra"]), float(sky["dec"])]
    w.wcs.crpix = [(shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0]
    w.wcs.cdelt = [-float(sky["pixscale"]) / 3600.0, float(sky["pixscale"]) / 3600.0]
    return w


#: the generic reader's settings where a caller leaves them out (the schema's
#: ``ifs.reader`` defaults, checked equal by tests/test_layers.py)
WCS_READER_DEFAULTS = {"flux_ext": "SCI", "noise_ext": "ERR", "noise": "auto", "mask_ext": None,
                       "air": None, "sky": None}


def read_wcs_cube(path, *, flux_ext=WCS_READER_DEFAULTS["flux_ext"],
                  noise_ext=WCS_READER_DEFAULTS["noise_ext"], noise=WCS_READER_DEFAULTS["noise"],
                  mask_ext=None, air=None, sky=None):
    """Read any cube with a spectral axis: the generic reader (``ifs.survey: wcs``).

    Parameters
    ----------
    path : str or os.PathLike
    flux_ext, noise_ext : str or int
        Extensions of the flux (``BUNIT`` required, here or in the primary
        header: a flux density per unit wavelength, per spaxel or per arcsec²)
        and of its noise.
    noise : {"auto", "error", "variance", "ivar"}
        What ``noise_ext`` holds. ``auto`` uses the noise extension's ``BUNIT``
        when it has one (flux unit: error; squared: variance), else
        :func:`noise_reading` decides from the data and refuses an ambiguous
        extension.
    mask_ext : str or int, optional
        2-D (spaxel) or 3-D mask extension, non-zero = bad.
    air : bool, optional
        Wavelengths in air; default from ``CTYPE3`` (``AWAV`` air, ``WAVE``
        vacuum); refused when the header does not say and this is not given.
    sky : dict, optional
        ``{ra, dec, pixscale}`` (deg, deg, arcsec) for a cube whose spatial
        axes are not sky coordinates: north up, centred on the centre spaxel.

    Returns
    -------
    IFSCube
        ``psf_fwhm`` from ``PSF_FWHM``/``PSFFWHM``/``SEEING``/``FWHM`` if present
        (else None: ``ifs.psf_fwhm``).
    """
    path, hdul = _open(path)
    fhdu = _cube_hdu(hdul, flux_ext, path, "WCS")
    nhdu = _cube_hdu(hdul, noise_ext, path, "WCS")
    _check_same_shape(fhdu.data, nhdu.data, str(flux_ext), str(noise_ext), path)
    head, prim = fhdu.header, hdul[0].header
    flux = np.asarray(fhdu.data, np.float64)
    where = f"extension {flux_ext}"
    if _is_sky(head):
        if sky:
            raise InputError(f"{where} has sky coordinates (CTYPE1/2) and ifs.reader.sky is "
                             "given too.", path, "remove ifs.reader.sky: the cube's WCS is used.")
        wcs = _celestial(head, path, where)
    else:
        wcs = _sky_wcs(flux.shape[1:], sky, path, where, head)
    area = pixel_area_arcsec2(wcs)
    bunit = head.get("BUNIT") or prim.get("BUNIT")
    if not bunit:
        raise InputError(f"{where}: no BUNIT in its header or the primary header.", path,
                         "set BUNIT to the cube's flux unit (e.g. '1e-20 erg/s/cm2/Angstrom').")
    fscale = unit_scale(bunit, 1, path, where, area)
    raw = np.asarray(nhdu.data, np.float64)
    kind = str(noise).strip().lower()
    if kind == "auto" and nhdu.header.get("BUNIT"):
        for power, k in ((1, "error"), (2, "variance"), (-2, "ivar")):
            try:
                unit_scale(nhdu.header["BUNIT"], power, path, f"extension {noise_ext}", area)
                kind = k
                break
            except InputError:
                continue
    if kind == "auto":
        kind = noise_reading(flux, raw, path, f"extension {noise_ext}")
    if kind not in ("error", "variance", "ivar"):
        raise InputError(f"ifs.reader.noise = {noise!r}.", path,
                         "use auto, error, variance or ivar.")
    with np.errstate(divide="ignore", invalid="ignore"):
        var = {"error": raw**2, "variance": raw, "ivar": 1.0 / raw}[kind]
    bad = np.zeros(flux.shape, bool)
    if mask_ext is not None:
        if (isinstance(mask_ext, str) and mask_ext not in hdul) or (
                isinstance(mask_ext, int) and mask_ext >= len(hdul)):
            raise InputError(f"missing mask extension {mask_ext}.", path,
                             "fix ifs.reader.mask_ext (or set it to null).")
        m = np.asarray(hdul[mask_ext].data)
        if m.shape == flux.shape[1:]:
            m = np.broadcast_to(m, flux.shape)
        _check_same_shape(flux, m, str(flux_ext), str(mask_ext), path)
        bad = m != 0
    wave = header_wave(head, flux.shape[0], path, where)
    ctype = str(head.get("CTYPE3", "")).upper()
    if air is None:
        if not (ctype.startswith("AWAV") or ctype.startswith("WAVE")):
            raise InputError(f"{where}: CTYPE3 = {ctype or 'none'!r} does not say whether the "
                             "wavelengths are in air or vacuum.", path,
                             "set ifs.reader.air: true (air) or false (vacuum).")
        air = ctype.startswith("AWAV")
    psf = header_psf_fwhm("wcs", prim, head, wave, path)
    return _finish("wcs", path, wave, flux * 1.0, var, bad, wcs, fscale, psf, bool(air), None)


def _is_sky(header):
    return any(str(header.get(f"CTYPE{i}", "")).upper()[:4] in ("RA--", "DEC-", "GLON", "GLAT")
               for i in (1, 2))


_READERS = {"manga": read_manga, "califa": read_califa, "muse": read_muse, "wcs": read_wcs_cube}


def read_cube(path, survey, **options):
    """Read an IFS cube of ``survey`` (``"manga"``, ``"califa"``, ``"muse"`` or ``"wcs"``;
    ``options`` go to :func:`read_wcs_cube`, the generic reader).

    Raises
    ------
    InputError
        Unknown survey; missing or corrupt file; missing extension; units that
        are not a flux density per unit wavelength; no usable pixel.
    """
    key = str(survey).strip().lower()
    if key not in _READERS:
        raise InputError(f"unknown IFS survey {survey!r}.", "ifs.survey",
                         f"use one of {', '.join(SURVEYS)}.")
    if key == "wcs":
        return read_wcs_cube(path, **options)
    return _READERS[key](path)

