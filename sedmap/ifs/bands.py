"""Synthetic broad- or narrow-band images of an IFS cube.

For a filter the cube covers, each spaxel's band-averaged f_λ is the
photon-counting mean ``∫ f T λ dλ / ∫ T λ dλ`` over the cube's wavelengths
(vacuum; :func:`sedmap.filters.filter_matrix`), and its variance
``Σ w_k² σ_k²`` (``w`` the normalised weights), as if the wavelength pixels
were independent: a resampled cube such as MUSE's correlates neighbouring
pixels, so this variance is a lower bound (docs/ifs.md). Bad pixels drop out
and the weights are renormalised over the rest; a spaxel that loses more than
``max_lost`` of the band's weight gets no value (NaN). The image carries the
cube's 2-D WCS and its PSF FWHM at the band's pivot wavelength.

Entry points: :func:`cube_band_images` (in memory), :func:`write_cube_bands`
(cube file in, one FITS per band out; the ``cube_bands`` rule and
``sedmap cube-bands``), and :func:`cube_band_specs` (the band specs the imaging
stage reads them with; a configuration check that needs only the cube's
headers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..filters import filter_matrix, get_filter
from ..io.cubeband import write_cube_band
from .readers import air_to_vacuum, cube_psf_fwhm, cube_wave_range, read_cube

__all__ = ["cube_band_images", "cube_band_specs", "write_cube_bands"]


def _check_covered(filt, lo, hi, path):
    if filt.wave_min < lo or filt.wave_max > hi:
        raise InputError(f"filter {filt.name} ({filt.wave_min:.0f}-{filt.wave_max:.0f} AA) is not "
                         f"inside the cube's wavelengths ({lo:.0f}-{hi:.0f} AA, vacuum).", path,
                         "list in ifs.bands only filters the cube covers whole, e.g. "
                         f"tophat_{np.ceil(lo):.0f}_{np.floor(hi):.0f} (a box filter).")


def cube_band_images(cube, filters, *, max_lost=0.05, psf_fwhm=None):
    """Band images of an in-memory cube.

    Parameters
    ----------
    cube : IFSCube
    filters : list of str
        Filter names (``tophat_<lo>_<hi>`` for a box); each must lie inside the
        cube's wavelength range.
    max_lost : float
        Largest fraction of a band's weight that may fall on bad pixels.
    psf_fwhm : float, optional
        The cube's PSF FWHM, arcsec, overriding its header (``ifs.psf_fwhm``).

    Returns
    -------
    list of dict
        Per filter: ``name``, ``flux``, ``var`` (ny, nx; units ``cube.fscale``),
        ``psf_fwhm`` (arcsec, at the pivot) and ``n_lost``.
    """
    wave = air_to_vacuum(cube.wave) if cube.air else np.asarray(cube.wave, float)
    fwhm = cube.psf_fwhm if psf_fwhm is None else np.full(wave.shape, float(psf_fwhm))
    if fwhm is None:
        raise InputError("the cube's PSF FWHM is not in its header.", cube.path,
                         "give it in arcsec as ifs.psf_fwhm.")
    out = []
    for name in filters:
        filt = get_filter(name)
        _check_covered(filt, wave[0], wave[-1], cube.path)
        w = filter_matrix([filt], wave)[0]
        use = np.flatnonzero(w > 0)
        wk = w[use][:, None, None]
        f = cube.flux[use].astype(float)
        v = cube.var[use].astype(float)
        good = np.isfinite(f) & np.isfinite(v)
        wsum = np.sum(np.where(good, wk, 0.0), axis=0)
        keep = wsum >= 1.0 - max_lost
        with np.errstate(invalid="ignore", divide="ignore"):
            flux = np.sum(np.where(good, wk * f, 0.0), axis=0) / wsum
            var = np.sum(np.where(good, wk**2 * v, 0.0), axis=0) / wsum**2
        flux[~keep], var[~keep] = np.nan, np.nan
        n_lost = int(np.count_nonzero(~keep & cube.spaxel_mask))
        pivot = filt.pivot_wavelength
        out.append({"name": filt.name, "flux": flux, "var": var, "n_lost": n_lost,
                    "psf_fwhm": float(np.interp(pivot, wave, fwhm))})
    return out


def write_cube_bands(cube_path, survey, filters, out_dir, *, reader=None, psf_fwhm=None,
                     max_lost=0.05, confhash=None):
    """Read a cube and write one synthetic band image per filter into ``out_dir``.

    Returns
    -------
    list of pathlib.Path
        ``out_dir/<filter>.fits`` (:mod:`sedmap.io.cubeband`), each written atomically.
    """
    cube = read_cube(cube_path, survey, **(reader or {}))
    bands = cube_band_images(cube, filters, max_lost=max_lost, psf_fwhm=psf_fwhm)
    out_dir = Path(out_dir)
    paths = []
    for b in bands:
        paths.append(write_cube_band(out_dir / f"{b['name']}.fits", filter_name=b["name"],
                                     flux=b["flux"], var=b["var"], wcs=cube.wcs,
                                     fscale=cube.fscale, psf_fwhm=b["psf_fwhm"],
                                     cube_path=cube_path, confhash=confhash,
                                     n_lost=b["n_lost"]))
    return paths


def cube_band_specs(cube_path, survey, filters, out_dir, *, reader=None, psf_fwhm=None,
                    calib_err=0.0):
    """The imaging stage's band specs of the synthetic bands (``ifs.bands``).

    Checks, from the cube's headers alone, that every filter is known and lies
    inside the cube's wavelengths, and takes each band's PSF FWHM at its pivot
    (:func:`~sedmap.ifs.readers.cube_psf_fwhm`, or ``psf_fwhm``): what the
    workflow needs before any job runs.
    """
    lo, hi = cube_wave_range(cube_path, survey, reader)
    specs = []
    for name in filters:
        filt = get_filter(name)
        _check_covered(filt, lo, hi, cube_path)
        if psf_fwhm is not None:
            fwhm = float(psf_fwhm)
        else:
            got = cube_psf_fwhm(cube_path, survey, [filt.pivot_wavelength], reader)
            if got is None:
                raise InputError("the cube's PSF FWHM is not in its header.", cube_path,
                                 "give it in arcsec as ifs.psf_fwhm.")
            fwhm = float(got[0])
        path = (Path(out_dir) / f"{filt.name}.fits").as_posix()
        specs.append({"filter": filt.name, "survey": "generic", "file": path, "hdu": "SCI",
                      "var_file": path, "noise_hdu": "VAR", "psf_fwhm": round(fwhm, 4),
                      "calib_err": float(calib_err)})
    return specs
