"""Spectrophotometric cube ``results/{galaxy}/specphoto.fits``.

The flux-cube layout (:mod:`sedmap.io.fluxcube`, primary ``PRODUCT='SPECPHOTO'``)
plus::

    SPEC       float32 (n_wave, ny, nx), BUNIT, FSCALE, WCS  (NaN = bad wavelength pixel)
    SPEC_ERR   float32 (n_wave, ny, nx), BUNIT, FSCALE, WCS  (1-sigma)
    SPEC_MASK  uint8   (ny, nx), 1 = spaxel has a spectrum, WCS
    WAVE       table: wave (Å, observed frame, float64, strictly increasing)
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .fits_utils import (
    check_error,
    check_shape,
    flux_bunit,
    get_flux_image,
    get_image,
    get_table,
    image_hdu,
    open_fits,
    table_hdu,
    write_fits,
)
from .fluxcube import FluxCube, flux_cube_from_hdul, flux_cube_hdus, validate_flux_cube

PRODUCT = "SPECPHOTO"


@dataclass(eq=False)
class SpecPhotoCube:
    """Photometry (a :class:`FluxCube`) plus IFS spectra on the same pixel grid.

    ``spec`` and ``spec_err`` are in the same units as the photometry
    (``photometry.fscale`` erg/s/cm2/Å); NaN in ``spec`` marks a bad
    wavelength pixel. ``spec_mask`` is True for spaxels with a spectrum.
    """

    photometry: FluxCube
    wave: np.ndarray        #: (n_wave,) Å, observed frame
    spec: np.ndarray        #: (n_wave, ny, nx)
    spec_err: np.ndarray    #: (n_wave, ny, nx)
    spec_mask: np.ndarray   #: (ny, nx) bool
    #: (2R+1, 2R+1) correlation of two pixels' spectral noise by their offset (the PSF
    #: matching's and the resampling's), or None (independent pixels)
    noise_corr: np.ndarray = None


def wave_hdu(wave, confhash):
    """The WAVE table extension (column ``wave`` in Å)."""
    return table_hdu("WAVE", [("wave", "D", np.asarray(wave, dtype=float), "Angstrom")],
                     confhash)


def read_wave(hdul, path):
    """Wavelengths from the WAVE table."""
    return np.array(get_table(hdul, "WAVE", path, ["wave"])["wave"], dtype=float)


def validate_wave(wave, n_wave, path):
    """InputError unless ``wave`` is positive, strictly increasing and ``n_wave`` long."""
    wave = np.asarray(wave)
    if wave.shape != (n_wave,):
        raise InputError(f"WAVE has shape {wave.shape}, but the spectra have {n_wave} "
                         "wavelengths.", path, "write one wavelength per spectral pixel.")
    if not (np.all(np.isfinite(wave)) and np.all(wave > 0) and np.all(np.diff(wave) > 0)):
        raise InputError("WAVE is not positive and strictly increasing.", path,
                         "write the wavelength axis in Å, in increasing order.")


def validate_spec_photo(cube, path):
    """Check the photometry and the spectra; InputError naming ``path`` on failure."""
    validate_flux_cube(cube.photometry, path)
    spec, err = np.asarray(cube.spec), np.asarray(cube.spec_err)
    if spec.ndim != 3:
        raise InputError(f"SPEC has {spec.ndim} dimensions, expected 3 (n_wave, ny, nx).",
                         path, "reshape the spectra to (n_wave, ny, nx).")
    check_shape(spec[0], cube.photometry.shape, "SPEC", path, "the FLUX images")
    check_shape(err, spec.shape, "SPEC_ERR", path, "SPEC")
    check_shape(cube.spec_mask, spec.shape[1:], "SPEC_MASK", path, "one SPEC plane")
    validate_wave(cube.wave, spec.shape[0], path)
    inside = np.asarray(cube.spec_mask, dtype=bool)[None] & np.isfinite(spec)
    check_error(err, inside, "SPEC_ERR", path,
                what="good spectral pixels of spaxels inside SPEC_MASK")


def write_spec_photo(cube, path):
    """Write ``cube`` (a :class:`SpecPhotoCube`) to ``path`` atomically; return the path."""
    validate_spec_photo(cube, path)
    phot = cube.photometry
    h = phot.config_hash
    bunit = flux_bunit(phot.fscale)
    fcard = {"FSCALE": (float(phot.fscale), "data * FSCALE = erg/s/cm2/AA")}
    hdus = flux_cube_hdus(phot, PRODUCT) + [
        image_hdu("SPEC", np.asarray(cube.spec, dtype=np.float32), h, phot.wcs, bunit, fcard),
        image_hdu("SPEC_ERR", np.asarray(cube.spec_err, dtype=np.float32), h, phot.wcs, bunit,
                  fcard),
        image_hdu("SPEC_MASK", np.asarray(cube.spec_mask, dtype=np.uint8), h, phot.wcs, ""),
        wave_hdu(cube.wave, h),
    ]
    if cube.noise_corr is not None:
        hdus.append(image_hdu("SPEC_NOISE_CORR", np.asarray(cube.noise_corr, dtype=float), h))
    return write_fits(hdus, path)


def read_spec_photo(path):
    """Read and validate a spectrophotometric cube."""
    hdul = open_fits(path, PRODUCT)
    phot = flux_cube_from_hdul(hdul, path)
    cube = SpecPhotoCube(
        photometry=phot,
        wave=read_wave(hdul, path),
        spec=get_flux_image(hdul, "SPEC", path, 3, phot.fscale),
        spec_err=get_flux_image(hdul, "SPEC_ERR", path, 3, phot.fscale),
        spec_mask=get_image(hdul, "SPEC_MASK", path, 2).astype(bool),
        noise_corr=(get_image(hdul, "SPEC_NOISE_CORR", path, 2).astype(float)
                    if "SPEC_NOISE_CORR" in hdul else None),
    )
    validate_spec_photo(cube, path)
    return cube
