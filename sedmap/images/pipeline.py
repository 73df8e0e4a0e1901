"""The imaging stage end to end, in the steps the workflow runs as separate jobs.

1. :func:`calibrate` (per band): read, clean, background, variance, units.
2. :func:`common_grid` (all bands): pixel scale and target PSF of the common grid.
3. :func:`match` (per band): WCS check, reprojection, PSF matching.
4. :func:`build_flux_cube` (all bands): region, star masks, Galactic
   extinction, the flux cube ``fluxmap.fits`` and its plots.
"""

import logging
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord

from ..constants import FWHM_TO_SIGMA
from ..errors import InputError
from ..filters import pivot_wavelengths
from ..io import Filters, FluxCube, write_flux_cube
from ..io.bandimage import BandImage, psf_options, read_band_image, write_band_image
from ..io.jsonfile import read_json, write_json
from ..io.paths import PRODUCTS
from ..plots import plot_images
from .extinction import galactic_transmission
from .grid import (
    align_to_reference,
    check_coverage,
    check_psf_fits,
    noise_correlation,
    noise_correlation_factor,
    reproject_band,
    target_grid,
)
from .outliers import repair_outliers
from .psf import (
    band_kernel,
    effective_fwhm,
    gaussian_psf,
    kernel_negative_fraction,
    load_psf,
    match_band,
    measure_fwhm,
    psf_for_band,
    reprojection_sigma,
)
from .region import ellipse_region, find_stars, galaxy_segment_region, star_mask, star_radius
from .surveys import load_band

log = logging.getLogger(__name__)

PSF_KEYS = ("psf_fwhm", "psf_file", "psf_pixscale", "psf_model", "moffat_beta",
            "psf_obscuration")


#: Largest relative difference between a band's ``psf_fwhm`` and the FWHM measured
#: on its ``psf_file`` (``measure_fwhm``, ~10% high for PSFs sampled at < 2 pixels).
PSF_FWHM_AGREEMENT = 0.2


def _with_psf(band, psf):
    """Set the PSF description (``psf_fwhm``, ``psf_file`` ...) on a BandImage.

    With a ``psf_file`` its FWHM is measured (``meta['psf_fwhm_measured']``,
    arcsec); a ``psf_fwhm`` given too must agree with it to
    ``PSF_FWHM_AGREEMENT``, else InputError naming both.
    """
    opts = psf_options(psf)
    band.psf_model = opts["psf_model"]
    band.moffat_beta = opts["moffat_beta"]
    band.psf_obscuration = opts["psf_obscuration"]
    measured = None
    if psf.get("psf_file"):
        band.psf_pixscale = float(psf["psf_pixscale"]) if psf.get("psf_pixscale") else None
        if band.psf_pixscale is None:
            raise InputError("psf_pixscale is needed with psf_file", path=psf["psf_file"],
                             fix="give psf_pixscale (arcsec per PSF pixel) for this band")
        band.psf = load_psf(psf["psf_file"], band.psf_pixscale)
        measured = float(measure_fwhm(band.psf, band.psf_pixscale))
        band.meta["psf_fwhm_measured"] = measured
        band.meta["psf_file"] = str(psf["psf_file"])
    if psf.get("psf_fwhm") is not None:
        band.psf_fwhm = float(psf["psf_fwhm"])
        if measured is not None and abs(band.psf_fwhm / measured - 1) > PSF_FWHM_AGREEMENT:
            raise InputError(
                f"band {band.filter}: psf_fwhm = {band.psf_fwhm:.2f}\" but the PSF image "
                f"measures FWHM {measured:.2f}\" ({band.psf_fwhm / measured - 1:+.0%}, more "
                f"than {PSF_FWHM_AGREEMENT:.0%} apart); the matching kernel is made from the "
                "image.", path=psf["psf_file"],
                fix="correct psf_fwhm, or psf_file / psf_pixscale, or drop psf_fwhm to use "
                    "the measured FWHM")
    elif measured is not None:
        band.psf_fwhm = measured
    else:
        raise InputError(f"band {band.filter} has no PSF: neither psf_fwhm nor psf_file.",
                         path=band.path, fix="give psf_fwhm (arcsec) or psf_file + psf_pixscale")
    return band


def source_fwhm(band):
    """The band's PSF FWHM on the common grid, arcsec (``effective_fwhm``): of its
    ``psf_fwhm``, or of the FWHM measured on its ``psf_file`` where that is broader
    (the matching kernel is made from the image)."""
    eff = effective_fwhm(band)
    measured = band.meta.get("psf_fwhm_measured")
    if measured is not None:
        eff = max(eff, float(np.hypot(measured, reprojection_sigma(band) / FWHM_TO_SIGMA)))
    return eff


def _psf_words(band):
    """How a band's PSF FWHM is known, for messages."""
    measured = band.meta.get("psf_fwhm_measured")
    if measured is None:
        return f"psf_fwhm {band.psf_fwhm:.2f}\""
    declared = "" if band.psf_fwhm == measured else f", psf_fwhm {band.psf_fwhm:.2f}\""
    return f"measured FWHM {measured:.2f}\" on {band.meta.get('psf_file')}{declared}"


def calibrate(spec, out_path, confhash=None):
    """Step 1: one band's raw image -> calibrated BandImage file (native grid).

    ``spec`` is a band entry of ``images.bands``; its PSF keys are not used
    here (so changing a PSF does not redo the calibration).
    """
    spec = dict(spec)
    spec.setdefault("psf_fwhm", 1.0)  # placeholder for the reader: the PSF is set in match()
    band = load_band(spec)
    band.psf_fwhm, band.psf, band.psf_pixscale = None, None, None  # not written: unknown here
    return write_band_image(band, out_path, step="calibrated", confhash=confhash)


def common_grid(cal_paths, psfs, out_path, *, pixel_scale=None, target_psf_fwhm=None):
    """Step 2: pixel scale (the coarsest band's) and target PSF (the worst effective
    FWHM on that grid) -> JSON file.

    Parameters
    ----------
    cal_paths : list of path
        Calibrated band images.
    psfs : list of dict
        The PSF keys of each band, same order.
    """
    bands = [_with_psf(read_band_image(p), psf) for p, psf in zip(cal_paths, psfs)]
    pix = float(pixel_scale or max(b.pixscale for b in bands))
    eff = [source_fwhm(b) for b in bands]
    target = float(target_psf_fwhm or max(eff))
    worst = int(np.argmax(eff))
    if target < max(eff) * 0.99:
        raise InputError(f"{target:.2f}\" is sharper than the PSF of "
                         f"band {bands[worst].filter} ({_psf_words(bands[worst])}; "
                         f"{eff[worst]:.2f}\" on the common grid): no kernel can sharpen a "
                         "PSF.", path="images.target_psf_fwhm",
                         fix=f"set it to at least {max(eff):.2f} or null (the broadest band's), "
                             "or check that band's PSF")
    info = {"pixscale": pix, "target_psf_fwhm": target,
            "bands": {b.filter: {"pixscale": b.pixscale, "effective_fwhm": e}
                      for b, e in zip(bands, eff)}}
    write_json(info, out_path)
    return out_path


#: Narrowest PSF image, in target FWHMs, that a small stamp may cut the PSFs to
MIN_PSF_FWHMS = 4.0


def match(cal_path, psf, grid_path, out_path, *, ra, dec, stamp_arcsec, ref_path=None,
          realign=False, confhash=None, stamp_center=None):
    """Step 3: extreme and non-finite pixels repaired (:mod:`.outliers`, counted in
    ``NOUTLIER``), WCS check against the reference band, reprojection onto the
    common grid (flux conserving), PSF matching (flux with K, variance with K^2).

    The stamp is centred on the galaxy (``ra``, ``dec``, degrees) or on
    ``stamp_center`` (``{ra, dec}``, ``images.stamp_center``): a small or
    rotated image (an IFS cube's synthetic bands) whose north-up square of
    coverage is not centred on the galaxy. The galaxy must lie inside the stamp,
    and at most :data:`~sedmap.images.grid.MAX_UNCOVERED` of the stamp may fall
    outside the image (docs/ifs.md, "small cubes")."""
    info = read_json(grid_path, ("pixscale", "target_psf_fwhm", "bands"))
    band = _with_psf(read_band_image(cal_path), psf)
    n_outlier = repair_outliers(band)  # before anything spreads them (alignment included)
    if ref_path is not None and Path(ref_path) != Path(cal_path):
        # only when images.reference_band is set: galaxies look different across
        # the spectrum (UV clumps), so the check suits bands of similar morphology
        band, offset = align_to_reference(band, read_band_image(ref_path), realign=realign,
                                          ra=ra, dec=dec)
        log.info("%s: offset to the reference band %.2f arcsec", band.filter, offset)
    pix, target = info["pixscale"], info["target_psf_fwhm"]
    c = stamp_center or {"ra": ra, "dec": dec}
    wcs, shape = target_grid(c["ra"], c["dec"], pix, stamp_arcsec)
    check_coverage(band, ra, dec, wcs, shape)
    data, var, mask = reproject_band(band, wcs, shape)
    n = max(psf_for_band(band, pix).shape[0], gaussian_psf(target, pix).shape[0])
    side = min(shape) - (1 - min(shape) % 2)  # the stamp's largest odd side
    if n > side >= MIN_PSF_FWHMS * target / pix:
        # a small stamp (an IFS cube's): the PSFs are cut to it, keeping +-2 FWHM
        # (a Gaussian loses < 2e-5 of its flux there) and renormalised
        log.info("%s: PSF images cut from %d to the %d-pixel stamp", band.filter, n, side)
        n = side
    check_psf_fits(np.zeros((n, n)), shape, name=f"target PSF ({target:.2f}\")")
    # built on sub-pixels where the grid undersamples the band's PSF (psf.band_kernel)
    kernel = band_kernel(band, pix, target, n, source_fwhm(band))
    factor = noise_correlation_factor(band, wcs, kernel)
    rho = noise_correlation(band, wcs, kernel)

    data, var = match_band(data, var, kernel, mask=mask, var_factor=factor)
    # the sky level's error is one offset shared by every pixel: convolution does
    # not average it down, so it is added after matching (per output pixel)
    area = (pix / band.pixscale) ** 2
    sky_err = band.meta.get("bkg_err", 0.0) * area
    var = var + sky_err**2
    bad = ~(np.isfinite(data) & np.isfinite(var) & (var > 0))
    out = BandImage(band.filter, np.where(bad, 0.0, data), np.where(bad, 0.0, var), wcs,
                    target, mask=bad, survey=band.survey, path=band.path,
                    meta={"bkg_err": 0.0, "sky_err": sky_err,
                          "calib_err": band.meta.get("calib_err", 0.0),
                          "native_fwhm": band.psf_fwhm, "n_outlier": n_outlier,
                          "kernel_neg": kernel_negative_fraction(kernel)},
                    noise_corr=rho)
    return write_band_image(out, out_path, step="matched", confhash=confhash)


def build_flux_cube(matched_paths, cal_paths, psfs, galaxy, images_cfg, out_path, *,
                    plot_dir=None, confhash=None):
    """Step 4: region, stars, Galactic extinction -> ``fluxmap.fits`` (and plots).

    Parameters
    ----------
    galaxy : dict
        ``name``, ``ra``, ``dec``, ``z``, ``ebv``.
    images_cfg : dict
        The ``images`` config section (region, stars, flux_scale).
    """
    bands = [read_band_image(p) for p in matched_paths]
    names = [b.filter for b in bands]
    wcs = bands[0].wcs
    flux = np.stack([b.data for b in bands])
    var = np.stack([b.var for b in bands])
    mask = np.stack([b.mask for b in bands])
    cx, cy = wcs.world_to_pixel_values(galaxy["ra"], galaxy["dec"])
    target = bands[0].psf_fwhm
    pix = bands[0].pixscale

    reg_cfg = images_cfg["region"]
    if reg_cfg["method"] == "ellipse":
        region = ellipse_region(flux.shape[1:], (cx, cy), reg_cfg["a_arcsec"] / pix,
                                reg_cfg["axis_ratio"], reg_cfg["pa_deg"])
    else:
        region = galaxy_segment_region(flux, var, (cx, cy), mask=mask,
                                       thresh=reg_cfg["thresh"],
                                       minarea=reg_cfg["minarea"])

    stars_cfg = images_cfg["stars"]
    radius = stars_cfg["radius_fwhm"] * target
    stars = SkyCoord([], [], unit="deg")
    if stars_cfg["auto"] and cal_paths:
        native = [_with_psf(read_band_image(c), p) for c, p in zip(cal_paths, psfs)]
        sharpest = min(native, key=lambda b: b.psf_fwhm)  # the sharpest native image
        stars, snr = find_stars(sharpest, min_snr=stars_cfg["min_snr"])
        # the galaxy's own nucleus is not a foreground star
        keep = stars.separation(SkyCoord(galaxy["ra"], galaxy["dec"], unit="deg")).arcsec > target
        stars, snr = stars[keep], snr[keep]
        radius = star_radius(snr, target, stars_cfg["radius_fwhm"])
    smask = star_mask(stars, wcs, flux.shape[1:], radius)
    for s in stars_cfg["list"]:
        smask |= star_mask(SkyCoord([s["ra"]], [s["dec"]], unit="deg"), wcs, flux.shape[1:],
                           s.get("radius_arcsec", 2.0 * target))
    region &= ~smask & ~np.any(mask, axis=0)
    if not region.any():
        raise InputError("the galaxy region is empty after masking", path=str(out_path),
                         fix="check the images, images.region and images.stars")

    pivots = pivot_wavelengths(names)
    trans = galactic_transmission(pivots, galaxy["ebv"])
    fscale = float(images_cfg["flux_scale"])
    f = flux / trans[:, None, None] / fscale
    e = np.sqrt(var) / trans[:, None, None] / fscale
    e[mask] = 0.0
    rhos = [b.noise_corr if b.noise_corr is not None else np.ones((1, 1)) for b in bands]
    lag = max(r.shape[0] for r in rhos) // 2
    noise_corr = np.stack([np.pad(r, lag - r.shape[0] // 2) for r in rhos])
    sky_err = np.array([b.meta.get("sky_err", 0.0) for b in bands]) / trans / fscale
    cube = FluxCube(galaxy=galaxy["name"], flux=f.astype(np.float32), flux_err=e.astype(np.float32),
                    region=region.astype(np.uint8), wcs=wcs,
                    filters=Filters(names, pivots,
                                    np.array([b.meta.get("native_fwhm") or b.psf_fwhm
                                              for b in bands], dtype=float),
                                    np.array([b.meta.get("calib_err", 0.0) for b in bands])),
                    ra=galaxy["ra"], dec=galaxy["dec"], z=galaxy["z"], pixsize=pix,
                    psf_fwhm=target, ebv=galaxy["ebv"], fscale=fscale,
                    config_hash=confhash or "none", noise_corr=noise_corr, sky_err=sky_err)
    path = write_flux_cube(cube, out_path)
    if plot_dir is not None:
        plot_dir = Path(plot_dir)
        plot_images(list(f), names, plot_dir / "fluxmap.png", region=region)
        plot_images([region.astype(float), smask.astype(float)], ["galaxy region", "star mask"],
                    plot_dir / "region.png", log=False)
    return path, len(stars)


def run_all(bands, galaxy, images_cfg, out_dir, *, out_path=None, plot_dir=None):
    """Every imaging step in one process: band specs -> ``fluxmap.fits``.

    The workflow runs the same steps as separate jobs (calibrate, grid, match
    per band, then the cube); this is the CLI's and the tests' single call.

    Parameters
    ----------
    bands : list of dict
        Band specs (docs/surveys.md), PSF keys included.
    galaxy : dict
        The ``galaxy`` config section (ra, dec in deg; ebv in mag).
    images_cfg : dict
        The ``images`` config section.
    out_dir : str or Path
        Folder of the intermediates (``images/``, ``grid.json``).
    out_path : str or Path, optional
        The flux cube; default ``out_dir/fluxmap.fits``.

    Returns
    -------
    pathlib.Path of the flux cube.
    """
    out_dir = Path(out_dir)
    psfs = [{k: b[k] for k in PSF_KEYS if k in b} for b in bands]
    cal = [calibrate({k: v for k, v in b.items() if k not in PSF_KEYS},
                     out_dir / "images" / f"{b['filter']}_cal.fits") for b in bands]
    grid = common_grid(cal, psfs, Path(out_dir) / PRODUCTS["image_grid"],
                       pixel_scale=images_cfg["pixel_scale"],
                       target_psf_fwhm=images_cfg["target_psf_fwhm"])
    ref = images_cfg["reference_band"]
    ref_path = out_dir / "images" / f"{ref}_cal.fits" if ref else None
    matched = [match(c, p, grid, out_dir / "images" / f"{b['filter']}_matched.fits",
                     ra=galaxy["ra"], dec=galaxy["dec"],
                     stamp_arcsec=images_cfg["stamp_arcsec"], ref_path=ref_path,
                     realign=images_cfg["realign"],
                     stamp_center=images_cfg["stamp_center"])
               for c, p, b in zip(cal, psfs, bands)]
    path, _ = build_flux_cube(matched, cal, psfs, galaxy, images_cfg,
                              out_path or Path(out_dir) / PRODUCTS["fluxmap"], plot_dir=plot_dir)
    return Path(path)
