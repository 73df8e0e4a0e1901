"""The ifs stage: an IFS data cube (MaNGA, CALIFA, MUSE) + the flux map -> ``specphoto.fits``.

Steps (see ``docs/ifs.md``):

1. :func:`~sedmap.ifs.readers.read_cube` -- the cube in one form (flux per
   spaxel, variance, 2-D WCS, PSF FWHM, bad pixels as NaN);
2. air wavelengths (CALIFA, MUSE) are converted to vacuum (``vacuum=True``);
3. :func:`~sedmap.ifs.match.match_cube` -- PSF matching to the flux map's
   target PSF (flux with K, variance with K**2) and exact flux-conserving
   resampling onto its pixel grid, in one sparse linear map per wavelength;
4. Milky-Way extinction is removed with the flux map's ``EBV`` and the
   imaging stage's curve (``sedmap.images.extinction.galactic_transmission``);
5. :func:`~sedmap.ifs.correct.correct_spectra` -- each spectrum times the
   smooth Legendre polynomial that makes its synthetic photometry match the
   flux map in the bands it covers;
6. :func:`sedmap.io.write_spec_photo` writes the product atomically.

Entry points: :func:`build_spec_photo` (files in, file out; for the CLI and
the workflow) and :func:`spec_photo_from_cube` (in memory; also returns the
per-pixel correction diagnostics).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..images.extinction import galactic_transmission
from ..io import SpecPhotoCube, read_flux_cube, write_spec_photo
from .correct import CorrectionDiagnostics, correct_spectra
from .match import match_cube
from .readers import SURVEYS, IFSCube, air_to_vacuum, read_cube

__all__ = ["SURVEYS", "CorrectionDiagnostics", "IFSCube", "build_spec_photo", "correct_spectra",
           "match_cube", "read_cube", "spec_photo_from_cube"]


def spec_photo_from_cube(cube, photometry, *, order=2, psf_fwhm=None, ebv=None, vacuum=True,
                         max_lost=0.05, min_good=0.5, min_band_coverage=0.95, config_hash=None,
                         progress=True):
    """Match an in-memory IFS cube to a flux map and scale it to the photometry.

    Parameters
    ----------
    cube : IFSCube
        From :func:`read_cube`.
    photometry : FluxCube
        The flux map (``read_flux_cube``): grid, target PSF, bands, ``EBV``.
    order : int
        Legendre order of the spectro-photometric correction (default 2).
    psf_fwhm : float, optional
        The cube's PSF FWHM, arcsec, overriding its header.
    ebv : float, optional
        Milky-Way E(B-V) removed from the spectra; default the flux map's
        (the photometry has it removed already).
    vacuum : bool
        Convert air wavelengths (CALIFA, MUSE) to vacuum, as the filter curves
        and MaNGA are.
    max_lost, min_good
        See :func:`~sedmap.ifs.match.match_cube`.
    min_band_coverage
        See :func:`~sedmap.ifs.correct.correct_spectra`.
    config_hash : str, optional
        ``CONFHASH`` of the product; default that of the flux map.
    progress : bool
        Progress bars.

    Returns
    -------
    product : SpecPhotoCube
    diagnostics : CorrectionDiagnostics
    """
    wave = air_to_vacuum(cube.wave) if (vacuum and cube.air) else np.asarray(cube.wave, float)
    flux, var, mask, rho = match_cube(cube, photometry, psf_fwhm=psf_fwhm, max_lost=max_lost,
                                      min_good=min_good, progress=progress,
                                      return_noise_corr=True)
    ebv = photometry.ebv if ebv is None else float(ebv)
    if ebv > 0:
        trans = galactic_transmission(wave, ebv).astype(np.float32)[:, None, None]
        flux /= trans
        var /= trans**2
    flux, var, mask, diag = correct_spectra(wave, flux, var, mask, photometry, order=order,
                                            min_band_coverage=min_band_coverage,
                                            path=cube.path, progress=progress)
    phot = photometry
    if config_hash is not None:
        phot = dataclasses.replace(photometry, config_hash=str(config_hash))
    product = SpecPhotoCube(photometry=phot, wave=wave, spec=flux, spec_err=np.sqrt(var),
                            spec_mask=mask, noise_corr=rho)
    return product, diag


def build_spec_photo(cube_path, fluxmap_path, out_path, *, survey, reader=None, order=2,
                     psf_fwhm=None, ebv=None, vacuum=True, max_lost=0.05, min_good=0.5,
                     min_band_coverage=0.95, config_hash=None, progress=True):
    """The ifs stage: read the cube and the flux map, write ``specphoto.fits``.

    Parameters
    ----------
    cube_path : str or os.PathLike
        The IFS cube as delivered by its survey.
    fluxmap_path : str or os.PathLike
        ``results/{galaxy}/fluxmap.fits`` of the imaging stage.
    out_path : str or os.PathLike
        ``results/{galaxy}/specphoto.fits``; written atomically, only once
        everything has succeeded.
    survey : {"manga", "califa", "muse", "wcs"}
    reader : dict, optional
        Options of the generic reader (``survey="wcs"``,
        :func:`~sedmap.ifs.readers.read_wcs_cube`).
    order, psf_fwhm, ebv, vacuum, max_lost, min_good, min_band_coverage, config_hash, progress
        See :func:`spec_photo_from_cube`.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    InputError
        Naming the file, the problem and the fix: missing or corrupt cube or
        flux map, missing extension, wrong units, no usable pixel, a cube
        that does not overlap the flux map or covers none of its bands, a
        cube PSF broader than the flux map's.
    """
    photometry = read_flux_cube(fluxmap_path)
    cube = read_cube(cube_path, survey, **(reader or {}))
    product, _ = spec_photo_from_cube(
        cube, photometry, order=order, psf_fwhm=psf_fwhm, ebv=ebv, vacuum=vacuum,
        max_lost=max_lost, min_good=min_good, min_band_coverage=min_band_coverage,
        config_hash=config_hash, progress=progress)
    return write_spec_photo(product, out_path)
