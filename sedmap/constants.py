"""Physical constants, survey calibration constants and flag bits: one home for each.

Every module that needs one of these imports it from here (the survey recipes, the
mock galaxy that writes files in the surveys' formats, the fits and the maps).
"""

import numpy as np

# ---------------------------------------------------------------- physics and units
#: Gaussian sigma per FWHM, 1 / (2 sqrt(2 ln 2)).
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: arcseconds per radian.
ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0
#: one jansky in erg/s/cm^2/Hz.
JY_CGS = 1e-23
#: the AB magnitude system's zero point, Jy (Oke & Gunn 1983).
AB_JY = 3631.0
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
