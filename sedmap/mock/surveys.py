"""The surveys the mock writes, each in its own delivery format (docs/surveys.md).

One small writer per survey, in :data:`WRITERS` (keyed by survey name; its keys are
:data:`SURVEYS`): a new survey is one writer there, its depth keys in
``_DEPTH_KEYS``, its pixel unit and noise recipe in :mod:`sedmap.mock.units`, and
(if its files are not one plain image) its roles in :func:`_band_spec`.
"""

import numpy as np
from astropy.io import fits

from ..filters import get_filter
from ..io.provenance import provenance_header
from .writing import _clean_wcs_header, _write_hdul

#: Surveys whose images are delivered with the sky in them.
SKY_IN_IMAGE = ("galex", "2mass", "wise")

#: depth keys each survey needs
_DEPTH_KEYS = {
    "galex": ("exptime", "sky"),
    "sdss": ("nmgy", "sky", "gain", "darkvar"),
    "2mass": ("magzp", "sky", "skysig"),
    "wise": ("magzp", "sky", "skysig"),
    "hst": ("photflam", "exptime", "skysig"),
    "des": ("magzero", "gain", "skysig"),
    "generic": ("bunit", "skysig"),
}


# ---------------------------------------------------------------- one writer per survey
# writer(band, name, head, data, var, wcs, path, confhash): write the band's file(s)
# at ``path`` (``head``: its WCS, ORIGIN and FILTER cards; ``data``: float32 image;
# ``var``: its variance) and return the roles besides "file" ({role: value}).


def _write_galex(band, name, head, data, var, wcs, path, confhash):
    """GALEX ``-int`` image: counts/s, the sky in it."""
    head["TELESCOP"] = "GALEX"
    head["BAND"] = (2 if name == "galex_fuv" else 1, "1 = NUV, 2 = FUV")
    head["EXPTIME"] = (float(band["exptime"]), "[s] effective exposure time")
    provenance_header(head, confhash)
    _write_hdul([fits.PrimaryHDU(data, head)], path)
    return {}


def _write_sdss(band, name, head, data, var, wcs, path, confhash):
    """SDSS ``frame``: nanomaggies, with its calibration vector and sky-table HDUs."""
    ny, nx = data.shape
    head["BUNIT"] = "nanomaggy"
    head["FILTER"] = (name[-1], "SDSS filter")
    head["CAMCOL"] = (int(band.get("camcol", 1)), "camera column")
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
    _write_hdul([fits.PrimaryHDU(data, head), calib_hdu, sky_hdu], path)
    return {}


def _vega_keys(head, band):
    """The zero-point and background cards of 2MASS and WISE images."""
    head["MAGZP"] = (float(band["magzp"]), "Vega zero point, mag")
    head["SKYVAL"] = (float(band["sky"]), "[DN] background level")
    head["SKYSIG"] = (float(band["skysig"]), "[DN] background noise")


def _write_2mass(band, name, head, data, var, wcs, path, confhash):
    """2MASS atlas image: DN with the sky in it, Vega zero point ``MAGZP``."""
    _vega_keys(head, band)
    for key in ("gain", "nframes"):
        if key in band:
            head[key.upper()] = float(band[key])
    provenance_header(head, confhash)
    _write_hdul([fits.PrimaryHDU(data, head)], path)
    return {}


def _write_wise(band, name, head, data, var, wcs, path, confhash):
    """WISE ``-int-`` image (DN, sky in it, Vega ``MAGZP``) and its ``-unc-`` image."""
    _vega_keys(head, band)
    head["BUNIT"] = "DN"
    head["BAND"] = int(name[-1])
    provenance_header(head, confhash)
    _write_hdul([fits.PrimaryHDU(data, head)], path)
    uhead = head.copy()
    upath = path.with_name(f"{name}_unc.fits")
    _write_hdul([fits.PrimaryHDU(np.sqrt(var).astype(np.float32), uhead)], upath)
    return {"unc_file": upath}


def _write_sci_weight(band, head, data, wcs, path, confhash, wname):
    """An empty primary HDU, the ``SCI`` image and its inverse-variance weight ``wname``
    (HST drizzled and DES coadd layouts)."""
    provenance_header(head, confhash)
    whead = _clean_wcs_header(wcs)
    provenance_header(whead, confhash)
    weight = np.full(data.shape, 1.0 / band["skysig"] ** 2, dtype=np.float32)
    phead = fits.Header()
    provenance_header(phead, confhash)
    _write_hdul([fits.PrimaryHDU(header=phead), fits.ImageHDU(data, head, name="SCI"),
                 fits.ImageHDU(weight, whead, name=wname)], path)
    return {"hdu": "SCI"}


def _write_hst(band, name, head, data, var, wcs, path, confhash):
    """HST drizzled image: electrons/s with ``PHOTFLAM``, weight HDU ``WHT``."""
    head["BUNIT"] = "ELECTRONS/S"
    head["PHOTFLAM"] = (float(band["photflam"]), "erg/s/cm2/AA per e-/s")
    head["EXPTIME"] = (float(band["exptime"]), "[s]")
    return _write_sci_weight(band, head, data, wcs, path, confhash, "WHT")


def _write_des(band, name, head, data, var, wcs, path, confhash):
    """DES coadd: electrons with AB ``MAGZERO``, weight HDU ``WGT``."""
    head["BUNIT"] = "electrons"
    head["MAGZERO"] = (float(band["magzero"]), "AB zero point")
    head["GAIN"] = (float(band["gain"]), "[e-/DN]")
    return _write_sci_weight(band, head, data, wcs, path, confhash, "WGT")


def _write_generic(band, name, head, data, var, wcs, path, confhash):
    """Any image in ``bunit``, with its uncertainty image."""
    head["BUNIT"] = band["bunit"]
    provenance_header(head, confhash)
    _write_hdul([fits.PrimaryHDU(data, head)], path)
    upath = path.with_name(f"{name}_unc.fits")
    _write_hdul([fits.PrimaryHDU(np.sqrt(var).astype(np.float32), head.copy())], upath)
    return {"unc_file": upath}


#: the native-format writer of each survey, by survey name
WRITERS = {
    "galex": _write_galex,
    "sdss": _write_sdss,
    "2mass": _write_2mass,
    "wise": _write_wise,
    "hst": _write_hst,
    "des": _write_des,
    "generic": _write_generic,
}
#: the surveys the mock writes
SURVEYS = tuple(WRITERS)


def _raw_files(band, image, var, wcs, out_raw, confhash):
    """HDUs of one band's raw file(s) in its survey's format; returns {role: path}."""
    name = get_filter(band["filter"]).name
    head = _clean_wcs_header(wcs)
    head["ORIGIN"] = ("sedmap mock", "a mock image made by sedmap")
    head["FILTER"] = (name, "sedmap filter name")
    data = image.astype(np.float32)
    path = out_raw / f"{name}.fits"
    files = {"file": path}
    files.update(WRITERS[band["survey"]](band, name, head, data, var, wcs, path, confhash))
    return files


def _band_spec(band, name, out_raw, with_cr):
    """The ``images.bands`` entry of one mock band (as written to bands.yaml)."""
    spec = {"filter": name, "survey": band["survey"], "file": str(out_raw / f"{name}.fits"),
            "psf_fwhm": float(band["psf_fwhm"])}
    if band["survey"] in ("wise", "generic"):
        spec["unc_file"] = str(out_raw / f"{name}_unc.fits")
    if band["survey"] in ("hst", "des"):
        spec["hdu"] = "SCI"
    if with_cr:
        spec["cosmic_rays"] = True
    # the mock's zero points are exact: no calibration error (the readers' defaults
    # are the surveys' documented ones, docs/surveys.md)
    spec["calib_err"] = 0.0
    return spec
