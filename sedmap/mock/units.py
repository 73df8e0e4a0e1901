"""Milky-Way transmission of the mock's images (each survey's native unit and variance
recipe are its :class:`~sedmap.mock.survey_base.MockSurvey`'s)."""

import numpy as np

from ..errors import InputError
from ..images.extinction import galactic_transmission


def milky_way_transmission(wave_aa, ebv, rv=3.1):
    """Fraction of light transmitted through Milky-Way dust, ``10**(-0.4 A_lambda)``.

    Fitzpatrick (1999) with R_V = ``rv`` (``dust_extinction.parameter_averages.F99``)
    over its range (1000 AA - 3.33 um); redward of it (WISE) A_lambda is continued
    as the power law ``A(0.999 * 3.33 um) * (lambda / (0.999 * 3.33 um))**-1.7`` --
    the same rule as the imaging stage's correction
    (``sedmap.images.extinction.galactic_transmission``), so it undoes this exactly.
    """
    wave = np.atleast_1d(np.asarray(wave_aa, dtype=float))
    if ebv == 0:
        return np.ones_like(wave)
    try:
        return galactic_transmission(wave, ebv, rv)
    except InputError as exc:
        raise InputError(exc.problem, path="mock.bands", fix="use bands redward of 1150 AA") \
            from None
