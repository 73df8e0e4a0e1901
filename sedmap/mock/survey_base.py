"""The base of the mock's survey writers (:class:`MockSurvey`) and the file layouts
several surveys share.

A survey object knows everything the mock needs to write one band in that survey's
own delivery format (docs/surveys.md): the band keys that set its depth, whether
its images keep the sky, the f_lambda of one native pixel unit, the variance
recipe, the file(s) and header cards it writes and the roles of those files in the
band spec the imaging stage reads. :mod:`sedmap.mock.surveys` registers one object
per survey; adding a survey to the mock is a subclass here (or in a sibling module)
and one entry there.
"""

import abc
import re

import numpy as np
from astropy.io import fits

from ..constants import C_AA_PER_S, JY_CGS
from ..errors import InputError
from ..filters import get_filter
from ..io.bandimage import PSF_OPTIONS
from ..io.provenance import provenance_header
from .writing import _clean_wcs_header, _write_hdul

#: values of the optional keys every mock band may have, when it leaves them out
BAND_DEFAULTS = {"rotation_deg": 0.0, "offset_arcsec": [0.0, 0.0], **PSF_OPTIONS}


def band_option(band, key):
    """A mock band's optional ``key``: its own value, else :data:`BAND_DEFAULTS`'s."""
    return band[key] if key in band else BAND_DEFAULTS[key]


def sky_poisson_variance(band, signal, counts_per_unit):
    """``skysig**2 + max(signal, 0) / counts_per_unit``: a sky-limited image's variance
    (native units^2) with the source's Poisson term (``counts_per_unit``: detected
    counts per native unit, e.g. the gain or the exposure time)."""
    return band["skysig"] ** 2 + np.maximum(np.asarray(signal, dtype=float), 0.0) \
        / counts_per_unit


class MockSurvey(abc.ABC):
    """Base of the mock's survey writers.

    Attributes
    ----------
    name : str
        The band's ``survey`` (in the mock's settings and in ``bands.yaml``).
    depth_keys : tuple of str
        Band keys the survey needs (native units, per native pixel), e.g. ``sky``.
    defaults : dict
        Optional band keys and their values when a band leaves them out.
    sky_in_image : bool
        The delivered images keep the sky: the mock adds the band's ``sky``.
    filters : str or None
        Regex (full match) of the sedmap filter names the survey observes; None:
        any filter.
    """

    name = ""
    depth_keys = ()
    defaults = {}
    sky_in_image = False
    filters = None

    # ------------------------------------------------------------ settings
    @property
    def band_keys(self):
        """The survey-specific keys a band may have."""
        return tuple(self.depth_keys) + tuple(self.defaults)

    def option(self, band, key):
        """The band's ``key``, else the survey's default for it (:attr:`defaults`)."""
        return band[key] if key in band else self.defaults[key]

    def check_filter(self, name, where):
        """Raise InputError (``mock.<where>filter``) if the survey does not observe
        ``name``."""
        if self.filters is not None and not re.fullmatch(self.filters, name):
            raise InputError(f"{self.name} survey with filter {name}",
                             path=f"mock.{where}filter",
                             fix=f"use a filter {self.name} observes ({self.filters})")

    # ------------------------------------------------------------ physics
    @abc.abstractmethod
    def flam_per_unit(self, band):
        """f_lambda (erg/s/cm^2/AA) of one native pixel unit of ``band``."""

    @abc.abstractmethod
    def variance(self, band, signal):
        """Variance (native units^2) of each pixel, from the noiseless sky-subtracted
        ``signal`` (native units): the survey's recipe of docs/surveys.md, sky
        included where the recipe counts it, no calibration term."""

    # ------------------------------------------------------------ files
    def files(self, name, out_raw):
        """The band's files by their role in the band spec: ``{"file": path, ...}``
        (``unc_file``, ``weight_file``: further files the survey delivers)."""
        return {"file": out_raw / f"{name}.fits"}

    def spec_keys(self, band):
        """Band-spec keys besides the files, the PSF and ``calib_err`` (e.g. ``hdu``)."""
        return {}

    @abc.abstractmethod
    def write(self, band, name, head, data, var, wcs, files, confhash):
        """Write the band's file(s) at ``files`` (:meth:`files`).

        ``head``: the science header with the WCS, ``ORIGIN`` and ``FILTER`` cards;
        ``data``: the float32 image in native units (noise, sky, stars in);
        ``var``: its variance (native units^2).
        """


# ---------------------------------------------------------------- shared layouts


def flam_per_jy(name):
    """erg/s/cm^2/AA per Jy (f_nu) at the pivot wavelength of filter ``name``."""
    return JY_CGS * C_AA_PER_S / get_filter(name).pivot_wavelength ** 2


def write_image(head, data, path, confhash):
    """One primary HDU: the image and its header (provenance added)."""
    provenance_header(head, confhash)
    _write_hdul([fits.PrimaryHDU(data, head)], path)


def write_unc(head, var, path):
    """The 1-sigma uncertainty image ``sqrt(var)`` (float32) with a copy of ``head``."""
    _write_hdul([fits.PrimaryHDU(np.sqrt(var).astype(np.float32), head.copy())], path)


def sci_weight_hdus(head, data, weight, wcs, confhash, wname):
    """An empty primary HDU, the ``SCI`` image and the weight image ``wname`` (HST
    drizzled and DES coadd layouts)."""
    provenance_header(head, confhash)
    whead = _clean_wcs_header(wcs)
    provenance_header(whead, confhash)
    phead = fits.Header()
    provenance_header(phead, confhash)
    return [fits.PrimaryHDU(header=phead), fits.ImageHDU(data, head, name="SCI"),
            fits.ImageHDU(weight, whead, name=wname)]


def extension(data, name, confhash, wcs=None):
    """An image extension ``name`` (with the WCS when given) and provenance."""
    head = _clean_wcs_header(wcs) if wcs is not None else fits.Header()
    provenance_header(head, confhash)
    return fits.ImageHDU(data, head, name=name)


def primary_header(cards, confhash):
    """An empty primary HDU's header holding ``cards`` and provenance."""
    head = fits.Header()
    for key, value in cards.items():
        head[key] = value
    return provenance_header(head, confhash)
