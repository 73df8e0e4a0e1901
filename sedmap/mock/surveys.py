"""The surveys the mock writes, each in its own delivery format (docs/surveys.md).

:data:`MOCK_SURVEYS` holds one :class:`~sedmap.mock.survey_base.MockSurvey` per
survey (its depth keys, whether its images keep the sky, its native unit, its
variance recipe, its file writer and the roles of its files in the band spec).
Adding a survey to the mock is one subclass (:mod:`~sedmap.mock.surveys_optical`,
:mod:`~sedmap.mock.surveys_ir`) and one entry here.
"""

import numpy as np

from ..filters import get_filter
from .surveys_ir import JWST, Herschel, Spitzer
from .surveys_optical import (
    DES,
    HSC,
    HST,
    SDSS,
    WISE,
    Galex,
    Generic,
    Legacy,
    PanSTARRS,
    TwoMass,
)
from .writing import _clean_wcs_header

#: the mock's survey writers, by survey name
MOCK_SURVEYS = {s.name: s for s in (Galex(), SDSS(), TwoMass(), WISE(), HST(), DES(),
                                    PanSTARRS(),
                                    Spitzer(), Herschel(), JWST(), HSC(), Legacy(),
                                    Generic())}
#: the surveys the mock writes
SURVEYS = tuple(MOCK_SURVEYS)

#: PSF keys of a mock band that go to its band spec as they are
PSF_SPEC_KEYS = ("psf_file", "psf_pixscale", "psf_model", "moffat_beta", "psf_obscuration")


def flam_per_native_unit(band):
    """f_lambda (erg/s/cm^2/AA) of one native pixel unit of ``band`` (docs/surveys.md)."""
    return MOCK_SURVEYS[band["survey"]].flam_per_unit(band)


def native_variance(band, signal):
    """Variance (native units^2) of each pixel, from the noiseless sky-subtracted signal.

    The survey's recipe of docs/surveys.md evaluated on the noiseless image,
    sky included where the recipe counts it; the calibration term of GALEX is
    a zero-point error, not pixel noise, and is left out.
    """
    return MOCK_SURVEYS[band["survey"]].variance(band, signal)


def write_band(band, image, var, wcs, out_raw, confhash):
    """Write one band's raw file(s) in its survey's format; returns ``{role: path}``.

    ``image``: native units (noise, sky and stars in), ``var``: its variance.
    """
    survey = MOCK_SURVEYS[band["survey"]]
    name = get_filter(band["filter"]).name
    head = _clean_wcs_header(wcs)
    head["ORIGIN"] = ("sedmap mock", "a mock image made by sedmap")
    head["FILTER"] = (name, "sedmap filter name")
    files = survey.files(name, out_raw)
    survey.write(band, name, head, image.astype(np.float32), var, wcs, files, confhash)
    return files


def _band_spec(band, name, out_raw, with_cr):
    """The ``images.bands`` entry of one mock band (as written to bands.yaml)."""
    survey = MOCK_SURVEYS[band["survey"]]
    files = survey.files(name, out_raw)
    spec = {"filter": name, "survey": band["survey"], "file": str(files["file"]),
            "psf_fwhm": float(band["psf_fwhm"])}
    for key in PSF_SPEC_KEYS:
        if key in band:
            spec[key] = str(band[key]) if key == "psf_file" else band[key]
    spec.update({role: str(path) for role, path in files.items() if role != "file"})
    spec.update(survey.spec_keys(band))
    if with_cr:
        spec["cosmic_rays"] = True
    # the mock's zero points are exact: no calibration error (the readers' defaults
    # are the surveys' documented ones, docs/surveys.md)
    spec["calib_err"] = 0.0
    return spec
