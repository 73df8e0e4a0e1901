"""The mock's UV-to-near-infrared surveys: GALEX, SDSS, 2MASS, WISE, HST, DES,
Pan-STARRS, HSC, the Legacy Surveys and ``generic``, each writing its own delivery format
(docs/surveys.md). Depth keys are per native pixel, in the survey's native units."""

import astropy.units as u
import numpy as np
from astropy.io import fits

from ..constants import (
    AB_JY,
    C_AA_PER_S,
    GALEX_FLAM_PER_CPS,
    HSC_ZEROPOINT,
    JY_CGS,
    NMGY_CGS,
    NMGY_ZEROPOINT,
    PS1_ZEROPOINT,
    VEGA_F0_JY,
)
from ..filters import get_filter
from ..io.provenance import provenance_header
from .survey_base import (
    MockSurvey,
    extension,
    primary_header,
    sci_weight_hdus,
    sky_poisson_variance,
    write_image,
    write_unc,
)
from .writing import _write_hdul


def _nu_to_lam(band):
    """c / pivot^2 of the band's filter (f_nu -> f_lambda), AA^-1 s^-1."""
    lam = get_filter(band["filter"]).pivot_wavelength
    return C_AA_PER_S / lam**2


def _ab_flam(zeropoint, band):
    """f_lambda of one unit of an image with AB zero point ``zeropoint``."""
    return AB_JY * JY_CGS * 10 ** (-0.4 * zeropoint) * _nu_to_lam(band)


class Galex(MockSurvey):
    """GALEX ``-int`` image: counts/s with the sky in it; ``exptime`` (s), ``sky``
    (counts/s). Variance: Poisson counts of source and sky over ``exptime``."""

    name = "galex"
    depth_keys = ("exptime", "sky")
    sky_in_image = True
    filters = r"galex_(fuv|nuv)"

    def flam_per_unit(self, band):
        return GALEX_FLAM_PER_CPS[get_filter(band["filter"]).name]

    def variance(self, band, signal):
        s = np.asarray(signal, dtype=float)
        return np.maximum(s + band["sky"], 0.0) / band["exptime"]

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["TELESCOP"] = "GALEX"
        head["BAND"] = (2 if name == "galex_fuv" else 1, "1 = NUV, 2 = FUV")
        head["EXPTIME"] = (float(band["exptime"]), "[s] effective exposure time")
        write_image(head, data, files["file"], confhash)


class SDSS(MockSurvey):
    """SDSS ``frame``: nanomaggies, the calibration vector (HDU 1) and the sky table
    (HDU 2); ``nmgy`` (nmgy/count), ``sky`` (counts), ``gain`` (e-/count),
    ``darkvar`` (counts^2), optional ``camcol``."""

    name = "sdss"
    depth_keys = ("nmgy", "sky", "gain", "darkvar")
    defaults = {"camcol": 1}

    def flam_per_unit(self, band):
        return NMGY_CGS * _nu_to_lam(band)

    def variance(self, band, signal):
        s = np.asarray(signal, dtype=float)
        dn = s / band["nmgy"] + band["sky"]
        return (np.maximum(dn, 0.0) / band["gain"] + band["darkvar"]) * band["nmgy"] ** 2

    def write(self, band, name, head, data, var, wcs, files, confhash):
        ny, nx = data.shape
        head["BUNIT"] = "nanomaggy"
        head["FILTER"] = (name[-1], "SDSS filter")
        head["CAMCOL"] = (int(self.option(band, "camcol")), "camera column")
        head["EXPTIME"] = (53.907456, "[s]")
        head["NMGY"] = (float(band["nmgy"]), "nanomaggies per count")
        head["GAIN"] = (float(band["gain"]), "[e-/count]")
        head["DARKVAR"] = (float(band["darkvar"]), "[count^2] dark variance")
        provenance_header(head, confhash)
        calib = np.full(nx, band["nmgy"], dtype=np.float32)
        sky_ny, sky_nx = (ny + 7) // 8, (nx + 7) // 8
        allsky = np.full((sky_ny, sky_nx), band["sky"], dtype=np.float32)
        xinterp = ((np.arange(nx) - 3.5) / 8.0).astype(np.float32)
        yinterp = ((np.arange(ny) - 3.5) / 8.0).astype(np.float32)
        cols = fits.ColDefs([
            fits.Column(name="ALLSKY", format=f"{allsky.size}E", dim=f"({sky_nx},{sky_ny})",
                        array=allsky[None]),
            fits.Column(name="XINTERP", format=f"{nx}E", array=xinterp[None]),
            fits.Column(name="YINTERP", format=f"{ny}E", array=yinterp[None]),
        ])
        sky_hdu = fits.BinTableHDU.from_columns(cols)
        calib_hdu = fits.ImageHDU(calib)
        for h in (sky_hdu.header, calib_hdu.header):
            provenance_header(h, confhash)
        _write_hdul([fits.PrimaryHDU(data, head), calib_hdu, sky_hdu], files["file"])


class _Vega(MockSurvey):
    """2MASS and WISE: DN with the sky in it, Vega zero point ``magzp``; ``sky`` and
    ``skysig`` (DN)."""

    depth_keys = ("magzp", "sky", "skysig")
    sky_in_image = True

    def flam_per_unit(self, band):
        name = get_filter(band["filter"]).name
        return VEGA_F0_JY[name] * JY_CGS * 10 ** (-0.4 * band["magzp"]) * _nu_to_lam(band)

    @staticmethod
    def vega_keys(head, band):
        """The zero-point and background cards."""
        head["MAGZP"] = (float(band["magzp"]), "Vega zero point, mag")
        head["SKYVAL"] = (float(band["sky"]), "[DN] background level")
        head["SKYSIG"] = (float(band["skysig"]), "[DN] background noise")


class TwoMass(_Vega):
    """2MASS atlas image; optional ``gain`` (e-/DN, 10) and ``nframes`` (6), written to
    the header when given. Variance: source Poisson over ``gain * nframes`` + sky."""

    name = "2mass"
    defaults = {"gain": 10.0, "nframes": 6}
    filters = r"2mass_[jhk]"

    def variance(self, band, signal):
        pos = np.maximum(np.asarray(signal, dtype=float), 0.0)
        return pos / (self.option(band, "gain") * self.option(band, "nframes")) \
            + band["skysig"] ** 2

    def write(self, band, name, head, data, var, wcs, files, confhash):
        self.vega_keys(head, band)
        for key in ("gain", "nframes"):
            if key in band:
                head[key.upper()] = float(band[key])
        write_image(head, data, files["file"], confhash)


class WISE(_Vega):
    """WISE ``-int-`` image and its ``-unc-`` image (``unc_file``); optional ``gain``
    (source Poisson, DN^-1 per DN: 40)."""

    name = "wise"
    defaults = {"gain": 40.0}
    filters = r"wise_w[1-4]"

    def variance(self, band, signal):
        return sky_poisson_variance(band, signal, self.option(band, "gain"))

    def files(self, name, out_raw):
        return {"file": out_raw / f"{name}.fits", "unc_file": out_raw / f"{name}_unc.fits"}

    def write(self, band, name, head, data, var, wcs, files, confhash):
        self.vega_keys(head, band)
        head["BUNIT"] = "DN"
        head["BAND"] = int(name[-1])
        write_image(head, data, files["file"], confhash)
        write_unc(head, var, files["unc_file"])


class _SciWeight(MockSurvey):
    """Sky-subtracted ``SCI`` image with an inverse-variance weight HDU of the sky
    noise ``skysig`` (the readers add the source's Poisson term)."""

    weight_hdu = ""

    def spec_keys(self, band):
        return {"hdu": "SCI"}

    def write_sci(self, band, head, data, wcs, files, confhash):
        weight = np.full(data.shape, 1.0 / band["skysig"] ** 2, dtype=np.float32)
        _write_hdul(sci_weight_hdus(head, data, weight, wcs, confhash, self.weight_hdu),
                    files["file"])


class HST(_SciWeight):
    """HST drizzled image: electrons/s with ``photflam``, ``exptime`` (s), ``skysig``
    (e-/s); weight HDU ``WHT``."""

    name = "hst"
    depth_keys = ("photflam", "exptime", "skysig")
    weight_hdu = "WHT"

    def flam_per_unit(self, band):
        return float(band["photflam"])

    def variance(self, band, signal):
        return sky_poisson_variance(band, signal, band["exptime"])

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["BUNIT"] = "ELECTRONS/S"
        head["PHOTFLAM"] = (float(band["photflam"]), "erg/s/cm2/AA per e-/s")
        head["EXPTIME"] = (float(band["exptime"]), "[s]")
        self.write_sci(band, head, data, wcs, files, confhash)


class DES(_SciWeight):
    """DES coadd: electrons with AB ``magzero``, ``gain`` (e-/DN), ``skysig`` (e-);
    weight HDU ``WGT``."""

    name = "des"
    depth_keys = ("magzero", "gain", "skysig")
    weight_hdu = "WGT"

    def flam_per_unit(self, band):
        return _ab_flam(band["magzero"], band)

    def variance(self, band, signal):
        return sky_poisson_variance(band, signal, band["gain"])

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["BUNIT"] = "electrons"
        head["MAGZERO"] = (float(band["magzero"]), "AB zero point")
        head["GAIN"] = (float(band["gain"]), "[e-/DN]")
        self.write_sci(band, head, data, wcs, files, confhash)


class PanSTARRS(MockSurvey):
    """Pan-STARRS1 ``stack`` image: counts (sky subtracted) with ``FPA.ZP`` (AB, 25)
    for counts per second of ``exptime`` (s), ``FPA.FILTER`` and ``CELL.GAIN``, and
    its ``.wt`` variance stack as ``var_file``; ``skysig`` (counts) and ``gain``
    (e- per count: the source's Poisson term, in the variance stack)."""

    name = "panstarrs"
    depth_keys = ("exptime", "skysig", "gain")
    filters = r"panstarrs_[grizy]"

    def flam_per_unit(self, band):
        return _ab_flam(PS1_ZEROPOINT, band) / float(band["exptime"])

    def variance(self, band, signal):
        return sky_poisson_variance(band, signal, band["gain"])

    def files(self, name, out_raw):
        return {"file": out_raw / f"{name}.unconv.fits",
                "var_file": out_raw / f"{name}.unconv.wt.fits"}

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["HIERARCH FPA.FILTER"] = (f"{name[-1]}.00000", "Pan-STARRS filter")
        head["HIERARCH FPA.ZP"] = (PS1_ZEROPOINT, "AB zero point, counts per s")
        head["HIERARCH CELL.GAIN"] = (float(band["gain"]), "[e-/count]")
        head["EXPTIME"] = (float(band["exptime"]), "[s]")
        write_image(head, data, files["file"], confhash)
        write_image(head.copy(), var.astype(np.float32), files["var_file"], confhash)


#: the HSC-SSP coadds' mask planes (LSST stack numbering: the MASK header's MP_* keys)
HSC_PLANE_BITS = {"BAD": 0, "SAT": 1, "INTRP": 2, "CR": 3, "EDGE": 4, "DETECTED": 5,
                  "DETECTED_NEGATIVE": 6, "SUSPECT": 7, "NO_DATA": 8}
#: HSC FILTER card of each sedmap filter
HSC_FILTER_CARDS = {"hsc_g": "HSC-G", "hsc_r": "HSC-R2", "hsc_i": "HSC-I2", "hsc_z": "HSC-Z",
                    "hsc_y": "HSC-Y"}


class HSC(MockSurvey):
    """HSC-SSP coadd ``calexp``: counts at AB zero point 27 (``FLUXMAG0``), sky
    subtracted; an empty primary HDU, ``IMAGE``, ``MASK`` (no plane set) and
    ``VARIANCE``; ``skysig`` (counts) and ``gain`` (e- per count: source Poisson)."""

    name = "hsc"
    depth_keys = ("skysig", "gain")
    filters = r"hsc_[grizy]"

    def flam_per_unit(self, band):
        return _ab_flam(HSC_ZEROPOINT, band)

    def variance(self, band, signal):
        return sky_poisson_variance(band, signal, band["gain"])

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["FILTER"] = (HSC_FILTER_CARDS[name], "HSC filter")
        provenance_header(head, confhash)
        prim = primary_header({"FLUXMAG0": (10 ** (0.4 * HSC_ZEROPOINT), "flux of mag 0"),
                               "TELESCOP": "Subaru", "INSTRUME": "Hyper Suprime-Cam"},
                              confhash)
        mask = extension(np.zeros(data.shape, dtype=np.int32), "MASK", confhash, wcs)
        for plane, bit in HSC_PLANE_BITS.items():
            mask.header[f"HIERARCH MP_{plane}"] = bit
        _write_hdul([fits.PrimaryHDU(header=prim), fits.ImageHDU(data, head, name="IMAGE"),
                     mask, extension(var.astype(np.float32), "VARIANCE", confhash, wcs)],
                    files["file"])


class Legacy(MockSurvey):
    """Legacy Surveys DR9/DR10 image in nanomaggies (AB 22.5), sky subtracted, and its
    ``-invvar-`` map of the sky noise ``skysig`` (nmgy) as ``weight_file``; ``gain``
    (e- per nmgy) goes to the band spec, so the reader adds the source's Poisson term."""

    name = "legacy"
    depth_keys = ("skysig", "gain")
    filters = r"decam_[griz]|bass_[gr]|mzls_z"

    def flam_per_unit(self, band):
        return _ab_flam(NMGY_ZEROPOINT, band)

    def variance(self, band, signal):
        return sky_poisson_variance(band, signal, band["gain"])

    def files(self, name, out_raw):
        return {"file": out_raw / f"{name}.fits",
                "weight_file": out_raw / f"{name}_invvar.fits"}

    def spec_keys(self, band):
        return {"gain": float(band["gain"])}

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["BUNIT"] = "nanomaggy"
        head["BAND"] = (name.rsplit("_", 1)[1], "Legacy Surveys band")
        head["SURVEY"] = "LegacySurveys"
        write_image(head, data, files["file"], confhash)
        ivar = np.full(data.shape, 1.0 / band["skysig"] ** 2, dtype=np.float32)
        _write_hdul([fits.PrimaryHDU(ivar, head.copy())], files["weight_file"])


class Generic(MockSurvey):
    """Any image in ``bunit`` (an astropy flux-density unit per pixel) with its
    uncertainty image; ``skysig`` and ``poisson`` (variance per unit signal, 0)."""

    name = "generic"
    depth_keys = ("bunit", "skysig")
    defaults = {"poisson": 0.0}

    def flam_per_unit(self, band):
        lam = get_filter(band["filter"]).pivot_wavelength
        unit = u.Unit(band["bunit"])
        return (1.0 * unit).to_value(u.erg / u.s / u.cm**2 / u.AA,
                                     equivalencies=u.spectral_density(lam * u.AA))

    def variance(self, band, signal):
        pos = np.maximum(np.asarray(signal, dtype=float), 0.0)
        return band["skysig"] ** 2 + pos * self.option(band, "poisson")

    def files(self, name, out_raw):
        return {"file": out_raw / f"{name}.fits", "unc_file": out_raw / f"{name}_unc.fits"}

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["BUNIT"] = band["bunit"]
        write_image(head, data, files["file"], confhash)
        write_unc(head, var, files["unc_file"])
