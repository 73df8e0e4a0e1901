"""Physical constants, survey calibration constants and flag bits: one home for each.

Every module that needs one of these imports it from here (the survey recipes, the
mock galaxy that writes files in the surveys' formats, the fits and the maps).
"""

import numpy as np
from astropy import constants as _astropy_constants

# ---------------------------------------------------------------- physics and units
#: Gaussian sigma per FWHM, 1 / (2 sqrt(2 ln 2)).
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: Gaussian sigma per median absolute deviation, 1 / Phi^-1(3/4) rounded to 1.4826 (the
#: exact 1.482602... of ``scipy.stats.median_abs_deviation(scale="normal")`` would change
#: the products in the sixth digit).
MAD_TO_SIGMA = 1.4826
#: speed of light, Angstrom/s (astropy's CODATA value, converted: 2.9979245799999995e18).
C_AA_PER_S = _astropy_constants.c.to_value("Angstrom / s")
#: second radiation constant h c / k, Angstrom K (Planck's law: x = h c / (lambda k T)).
HC_OVER_K_AA_K = 1.438777e8
#: nominal solar luminosity, erg/s (IAU 2015 Resolution B3).
LSUN_ERG_S = 3.828e33
#: magnitudes of extinction per unit optical depth, 2.5 log10(e) = 2.5 / ln 10:
#: A_V = AV_PER_TAU_V * dust2 (the fits' ``av`` and the mock truth's ``AV``).
AV_PER_TAU_V = 2.5 / np.log(10.0)
#: arcseconds per radian.
ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0
#: one jansky in erg/s/cm^2/Hz.
JY_CGS = 1e-23
#: the AB magnitude system's zero point, Jy (Oke & Gunn 1983).
AB_JY = 3631.0
#: the AB zero point, 3631 Jy, in erg/s/cm^2/Hz (``AB_JY * JY_CGS``, the same float as
#: 3631.0e-23).
AB_ZEROPOINT_FNU = AB_JY * JY_CGS
#: the AB zero point as a magnitude offset in cgs, m_AB = -2.5 log10(f_nu) - 48.60 for
#: f_nu in erg/s/cm^2/Hz; rounded (-2.5 log10(AB_ZEROPOINT_FNU) = 48.59993...).
AB_MAG_CGS = 48.60
#: one nanomaggy (AB mag 22.5) in erg/s/cm^2/Hz.
NMGY_CGS = 3.631e-6 * JY_CGS

# ------------------------------------------------ survey calibration (docs/surveys.md)
#: Vega zero-point flux densities, Jy (Cohen et al. 2003; Jarrett et al. 2011).
VEGA_F0_JY = {
    "2mass_j": 1594.0, "2mass_h": 1024.0, "2mass_k": 666.7,
    "wise_w1": 309.540, "wise_w2": 171.787, "wise_w3": 31.674, "wise_w4": 8.363,
}
#: GALEX f_lambda (erg/s/cm^2/AA) per count/s (Morrissey et al. 2007).
GALEX_FLAM_PER_CPS = {"galex_fuv": 1.40e-15, "galex_nuv": 2.06e-16}

# ------------------------------------------------------------------------ flag bits
# A bin's flags (binmap.fits BINS.flag) and a fit's flags (FitResult.flag) share the
# bit values below, so a flag reads the same in every product (docs/products.md).
#: the bin misses the S/N threshold in a required band (a leftover bin)
FLAG_LOW_SNR = 1
#: the bin's SED is all NaN or has a zero/NaN variance: not fitted
FLAG_BAD_SED = 2
#: no model reaches the bin with a positive mass
FLAG_NO_FIT = 4

# The spectro-photometric correction's own per-pixel bits
# (sedmap.ifs.CorrectionDiagnostics.flag), not the bin/fit bits above.
#: fewer usable bands than order + 1: a constant ratio was fitted
SPECPHOTO_FLAG_CONSTANT = 1
#: no usable band: the pixel is dropped
SPECPHOTO_FLAG_NO_BAND = 2
#: P(lambda) <= 0 somewhere in the spectrum's range: the pixel is dropped
SPECPHOTO_FLAG_NONPOSITIVE = 4

# ------------------------- infrared and wide-field survey calibration (docs/surveys.md)
#: Herschel-SPIRE beam solid angles, arcsec^2, of the 250/350/500 um bands for a source
#: with nu F_nu = const (alpha = -1, SPIRE's point-source convention): Jy/beam -> Jy per
#: pixel is a factor (pixel area / beam area). SPIRE Handbook v3.1 (2017,
#: HERSCHEL-HSC-DOC-0798), section 5.2 (beam solid angles from the Neptune maps).
SPIRE_BEAM_AREA_ARCSEC2 = {
    "herschel_spire_250": 469.35, "herschel_spire_350": 831.27, "herschel_spire_500": 1804.31,
}
#: AB zero point of HSC-SSP coadds: a pixel value 1 is AB 27, i.e. FLUXMAG0 = 10**(0.4 * 27)
#: (Aihara et al. 2018, PASJ 70, S8; Bosch et al. 2018, PASJ 70, S5).
HSC_ZEROPOINT = 27.0
#: HSC (LSST-stack) mask planes whose pixels are not used; their bits come from the MASK
#: HDU's ``MP_<PLANE>`` header keys (Bosch et al. 2018).
HSC_MASK_PLANES = ("BAD", "SAT", "NO_DATA", "EDGE", "CR", "INTRP")
#: AB zero point of an image in nanomaggies (SDSS, Legacy Surveys): 1 nmgy is AB 22.5.
NMGY_ZEROPOINT = 22.5
#: AB zero point of a Pan-STARRS1 stack's counts per second of EXPTIME (``FPA.ZP``).
PS1_ZEROPOINT = 25.0
