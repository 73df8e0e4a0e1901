"""Synthetic band images of an IFS cube (``results/GALAXY/cube_bands/BAND.fits``).

One file per band: ``SCI`` (the band-averaged f_λ per spaxel, BUNIT a scaled
erg/s/cm2/Å, with the cube's 2-D WCS) and ``VAR`` (its variance, BUNIT the
square), and in the primary header the filter (``FILTER``), the PSF FWHM at
the band's pivot (``PSF_FWHM``, arcsec), the cube (``CUBEFILE``) and the
provenance keys. The imaging stage reads it as a ``generic`` band with
``var_file`` the same file and ``noise_hdu: VAR``.
"""

from pathlib import Path

from .fits_utils import image_hdu, primary_hdu, write_fits

PRODUCT = "CUBEBAND"


def cube_band_bunit(fscale, power=1):
    """BUNIT of a cube band's data (power 1) or variance (power 2) in units of ``fscale``."""
    unit = "erg / (s cm2 Angstrom)" if power == 1 else "erg2 / (s2 cm4 Angstrom2)"
    return f"{fscale ** power:.6g} {unit}"


def write_cube_band(path, *, filter_name, flux, var, wcs, fscale, psf_fwhm, cube_path,
                    confhash=None, n_lost=0):
    """Write one synthetic band image atomically.

    Parameters
    ----------
    flux, var : ndarray (ny, nx)
        Band-averaged f_λ per spaxel in units of ``fscale`` erg/s/cm2/Å, and its
        variance (``fscale**2``); NaN where the spaxel has no band value.
    psf_fwhm : float
        The cube's PSF FWHM at the band's pivot wavelength, arcsec.
    n_lost : int
        Spaxels left NaN because too much of the band fell on bad pixels.
    """
    cards = {"FILTER": (filter_name, "sedmap filter name"),
             "PSF_FWHM": (float(psf_fwhm), "[arcsec] PSF FWHM at the band's pivot"),
             "CUBEFILE": (Path(cube_path).name[-60:], "the IFS cube"),
             "NLOST": (int(n_lost), "spaxels left blank (bad pixels)")}
    hdus = [primary_hdu(PRODUCT, confhash, cards),
            image_hdu("SCI", flux.astype("float32"), confhash, wcs=wcs,
                      bunit=cube_band_bunit(fscale), cards={"FILTER": filter_name}),
            image_hdu("VAR", var.astype("float32"), confhash, wcs=wcs,
                      bunit=cube_band_bunit(fscale, 2))]
    return write_fits(hdus, path)
