"""The mock's infrared surveys, whose maps are flux densities: Spitzer IRAC/MIPS
mosaics (MJy/sr), Herschel PACS (Jy/pixel) and SPIRE (Jy/beam) maps, and JWST
NIRCam/MIRI ``_i2d`` files (MJy/sr with ``PIXAR_SR``), each in its archive's layout
(docs/surveys.md). Their images keep the sky (zodiacal light, an arbitrary zero
level, what skymatch left): every one takes ``sky`` and ``skysig`` in the map's
unit, per native pixel, and ``poisson``, the variance per unit of signal (the
source's own noise; 0 by default)."""

import numpy as np
from astropy.io import fits

from ..constants import ARCSEC_PER_RAD, SPIRE_BEAM_AREA_ARCSEC2
from ..images.surveys import _SPITZER_CHANNELS
from ..images.surveys import SURVEYS as READERS
from ..io.provenance import provenance_header
from .survey_base import (
    MockSurvey,
    extension,
    flam_per_jy,
    primary_header,
    write_image,
    write_unc,
)
from .writing import _write_hdul

#: (INSTRUME, CHNLNUM) of each Spitzer filter (the reader's table, inverted)
SPITZER_CHANNEL = {name: (inst, ch) for inst, chans in _SPITZER_CHANNELS.items()
                   for ch, name in chans.items()}
#: SPIRE detector array of each band
SPIRE_DETECTOR = {"herschel_spire_250": "PSW", "herschel_spire_350": "PMW",
                  "herschel_spire_500": "PLW"}


def pixel_sr(band):
    """Solid angle of one native pixel, sr (``pixscale`` arcsec on a side)."""
    return (band["pixscale"] / ARCSEC_PER_RAD) ** 2


def _name(band):
    return str(band["filter"]).strip().lower()


class _FluxDensity(MockSurvey):
    """A flux-density map with the sky in it: ``sky``, ``skysig`` (the map's unit,
    per native pixel) and ``poisson``. Variance: ``skysig^2 + poisson * max(S, 0)``."""

    depth_keys = ("sky", "skysig")
    defaults = {"poisson": 0.0}
    sky_in_image = True

    def variance(self, band, signal):
        pos = np.maximum(np.asarray(signal, dtype=float), 0.0)
        return band["skysig"] ** 2 + pos * self.option(band, "poisson")


class Spitzer(_FluxDensity):
    """IRAC and MIPS mosaics (post-BCD ``maic``/``munc``): the image in MJy/sr in the
    primary HDU with ``INSTRUME`` and ``CHNLNUM``, its 1-sigma map as ``unc_file``."""

    name = "spitzer"
    filters = READERS["spitzer"].filters

    def flam_per_unit(self, band):
        return 1e6 * pixel_sr(band) * flam_per_jy(_name(band))

    def files(self, name, out_raw):
        return {"file": out_raw / f"{name}.fits", "unc_file": out_raw / f"{name}_unc.fits"}

    def write(self, band, name, head, data, var, wcs, files, confhash):
        inst, chan = SPITZER_CHANNEL[name]
        head["TELESCOP"] = "Spitzer"
        head["INSTRUME"] = inst
        head["CHNLNUM"] = (chan, "instrument channel")
        head["BUNIT"] = "MJy/sr"
        write_image(head, data, files["file"], confhash)
        write_unc(head, var, files["unc_file"])


class Herschel(_FluxDensity):
    """PACS and SPIRE maps as the Herschel Science Archive delivers them: the map in
    the ``image`` extension (PACS ``Jy/pixel``, SPIRE ``Jy/beam``), its 1-sigma map in
    the ``error`` extension; ``INSTRUME``, ``WAVELNTH`` and (SPIRE) ``DETECTOR`` in
    the primary header."""

    name = "herschel"
    filters = READERS["herschel"].filters

    def flam_per_unit(self, band):
        name = _name(band)
        if name in SPIRE_BEAM_AREA_ARCSEC2:
            return band["pixscale"] ** 2 / SPIRE_BEAM_AREA_ARCSEC2[name] * flam_per_jy(name)
        return flam_per_jy(name)

    def write(self, band, name, head, data, var, wcs, files, confhash):
        spire = name in SPIRE_DETECTOR
        head["BUNIT"] = "Jy/beam" if spire else "Jy/pixel"
        provenance_header(head, confhash)
        cards = {"TELESCOP": "Herschel", "INSTRUME": "SPIRE" if spire else "PACS",
                 "WAVELNTH": (float(name.rsplit("_", 1)[1]), "[micron]")}
        if spire:
            cards["DETECTOR"] = SPIRE_DETECTOR[name]
        err = extension(np.sqrt(var).astype(np.float32), "error", confhash, wcs)
        err.header["BUNIT"] = head["BUNIT"]
        _write_hdul([fits.PrimaryHDU(header=primary_header(cards, confhash)),
                     fits.ImageHDU(data, head, name="image"), err], files["file"])


class JWST(_FluxDensity):
    """NIRCam/MIRI level-3 ``_i2d``: ``SCI`` in MJy/sr with ``PIXAR_SR``, ``ERR``,
    ``WHT``, ``VAR_POISSON`` (the ``poisson`` term) and ``VAR_RNOISE``
    (``skysig^2``); ``FILTER`` and ``PUPIL`` in the primary header."""

    name = "jwst"
    filters = READERS["jwst"].filters

    def flam_per_unit(self, band):
        return 1e6 * pixel_sr(band) * flam_per_jy(_name(band))

    def write(self, band, name, head, data, var, wcs, files, confhash):
        head["BUNIT"] = "MJy/sr"
        head["PIXAR_SR"] = (pixel_sr(band), "[sr] nominal pixel area")
        head["PIXAR_A2"] = (float(band["pixscale"]) ** 2, "[arcsec^2] nominal pixel area")
        provenance_header(head, confhash)
        inst = name.split("_")[1].upper()
        prim = primary_header({"TELESCOP": "JWST", "INSTRUME": inst,
                               "FILTER": name.rsplit("_", 1)[1].upper(), "PUPIL": "CLEAR"},
                              confhash)
        rnoise = np.full(data.shape, float(band["skysig"]) ** 2, dtype=np.float32)
        poisson = np.maximum(var - band["skysig"] ** 2, 0.0).astype(np.float32)
        wht = np.full(data.shape, 1.0 / float(band["skysig"]) ** 2, dtype=np.float32)
        _write_hdul([fits.PrimaryHDU(header=prim), fits.ImageHDU(data, head, name="SCI"),
                     extension(np.sqrt(var).astype(np.float32), "ERR", confhash, wcs),
                     extension(wht, "WHT", confhash, wcs),
                     extension(poisson, "VAR_POISSON", confhash, wcs),
                     extension(rnoise, "VAR_RNOISE", confhash, wcs)], files["file"])
