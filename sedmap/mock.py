"""A mock galaxy with known truth: raw survey images (+ an IFS cube) and truth maps.

``make_mock(mock_config, out_dir)`` writes, with no downloads:

* ``{out_dir}/raw/{filter}.fits`` -- one image per band in its survey's own
  delivery format (``docs/surveys.md``): native pixel scale, units, header
  keys, sky and noise; WISE bands also get ``{filter}_unc.fits``, HST/DES
  files carry their weight HDU;
* ``{out_dir}/bands.yaml`` -- the band specs the imaging stage reads;
* ``{out_dir}/truth.fits`` -- the truth on the common grid (``PRODUCT =
  'MOCKTRUTH'``, layout in :func:`make_mock`);
* ``{out_dir}/ifs.fits`` -- a MaNGA-like cube, only with ``ifs: true``.

The galaxy
----------
A continuous model, sampled on fine grids (about ``fine_pixscale`` arcsec):
an exponential disk and a cored Sersic bulge share one stellar population
whose SPS parameters vary with the elliptical radius r (``gradients``:
``value = centre + slope * min(r / disk_scale, gradient_rmax_scales)``,
clipped to the allowed range),
plus Gaussian star-forming clumps (the disk's parameters at their radius, except
those a clump sets itself). Each
population's surface density of *surviving* stellar mass is analytic;
mass formed = surviving / (surviving fraction of its SPS model). The
parameters are constant within radial steps of ``gradient_step_arcsec``, so
every fine pixel's photometry is exactly ``SPSModel.photometry`` of its
populations (no interpolation). Each band is rendered on a grid aligned with
its own native pixels (``k x k`` sub-pixels), convolved with the band's
Gaussian PSF and summed over the sub-pixels, which conserves flux exactly.
The truth maps are sums (mass, SFR) or surviving-mass-weighted means (ages,
metallicity, A_V, parameters) over the sub-pixels of the common grid, then
brought to the target PSF like the data (mass and SFR convolved with it,
mass-weighted means as ratios of convolved maps); ``*_NOPSF`` keep the
unsmoothed ones. ``FLUX_TRUE`` is the same model convolved with the target (worst)
Gaussian PSF, galaxy light only (no stars), before Milky-Way extinction: what
the imaging stage should recover.

Milky-Way extinction is :func:`milky_way_transmission` at each filter's pivot.
"""

import copy
import itertools
import logging
from pathlib import Path

import numpy as np
import yaml
from astropy.io import fits
from astropy.wcs import WCS
from scipy.ndimage import gaussian_filter
from scipy.special import erf, gammaincinv
from .constants import (
    AB_JY,
    ARCSEC_PER_RAD,
    FWHM_TO_SIGMA,
    GALEX_FLAM_PER_CPS,
    JY_CGS,
    NMGY_CGS,
    VEGA_F0_JY,
)
from .errors import InputError
from .filters import C_AA_PER_S, get_filter
from .images.grid import target_grid
from .io.atomic import atomic_path
from .io.fits_utils import DEFAULT_FSCALE, flux_bunit, image_hdu, primary_hdu, table_hdu
from .io.fluxcube import Filters, filters_hdu
from .io.provenance import config_hash, provenance_header
from .progress import progress as progress_bar
from .sps import PARAM_INFO

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MOCK",
    "SURVEYS",
    "band_wcs",
    "flam_per_native_unit",
    "make_mock",
    "merge_mock_config",
    "milky_way_transmission",
    "native_variance",
    "noiseless_images",
]

SURVEYS = ("galex", "sdss", "2mass", "wise", "hst", "des", "generic")
#: Surveys whose images are delivered with the sky in them.
SKY_IN_IMAGE = ("galex", "2mass", "wise")

# SDSS camcol-1 gains and dark variances (SDSS DR data model, frame)
_SDSS = {"u": (1.62, 9.61), "g": (3.32, 15.6025), "r": (4.71, 1.8225), "i": (5.165, 7.84),
         "z": (4.745, 0.81)}


def _sdss_band(flt, pix, psf, rot, off, nmgy, sky):
    b = flt[-1]
    return {"filter": flt, "survey": "sdss", "pixscale": pix, "psf_fwhm": psf,
            "rotation_deg": rot, "offset_arcsec": off, "nmgy": nmgy, "sky": sky,
            "gain": _SDSS[b][0], "darkvar": _SDSS[b][1]}


DEFAULT_MOCK = {
    "ra": 150.0,            # deg, galaxy centre
    "dec": 2.0,             # deg
    "z": 0.02,              # redshift (0.41 kpc/arcsec)
    "ebv": 0.02,            # Milky-Way E(B-V) applied to the images (F99, Rv = 3.1)
    "seed": 1,              # every random draw derives from it
    "stamp_arcsec": 150.0,  # side of the common grid; native images cover it at any rotation
    "fine_pixscale": 0.3,   # arcsec: target sub-pixel size of the fine model grids
    "gradient_step_arcsec": 0.1,  # radial step of the parameter gradients
    "gradient_rmax_scales": 5.0,  # the parameters stop changing beyond this many scale lengths
    # SFH form of the mock's populations; None: the models' sfh (and their
    # parameter ranges). Set it to fit the mock with another SFH family than the
    # one that made it (e.g. a non-parametric fit of delayed-tau populations).
    "sfh": None,
    "galaxy": {
        "log_mstar": 10.4,         # log10 total SURVIVING stellar mass (disk+bulge+clumps), Msun
        "pa_deg": 35.0,            # position angle of the major axis, east of north
        "axis_ratio": 0.6,         # disk b/a
        "disk_scale_arcsec": 7.5,  # exponential scale length (r-band R_e ~ 13-14")
        "bulge_frac": 0.2,         # fraction of the total surviving mass in the bulge
        "bulge_re_arcsec": 2.5,    # bulge half-mass radius
        "bulge_sersic_n": 4.0,
        "bulge_axis_ratio": 0.8,
        "bulge_core_arcsec": 0.5,  # core radius: r -> sqrt(r^2 + rc^2) (keeps sampling exact)
    },
    # SPS parameters of the disk+bulge population where no gradient is given
    # (the model's param_names pick the ones used)
    "params": {
        "logzsol": 0.0, "log_age": 0.8, "log_tau": 0.3, "log_t0": 0.5, "log_alpha": 0.3,
        "log_beta": 0.3, "log_fburst": -4.0, "log_tburst": -1.0, "dust1": 0.6, "dust2": 0.3,
        "dust_index": -0.7, "gas_logu": -2.5,
        "gas_logz": 0.0, "log_umin": 0.5, "log_gamma": -2.0, "log_qpah": 0.45,
        # continuity SFH: log10 SFR ratios of adjacent lookback bins (0 = constant SFR)
        "log_sfr_ratio_1": 0.0, "log_sfr_ratio_2": 0.0, "log_sfr_ratio_3": 0.0,
        "log_sfr_ratio_4": 0.0, "log_sfr_ratio_5": 0.0,
    },
    # [value at the centre, change per disk scale length]; clipped to the allowed ranges
    "gradients": {
        "logzsol": [0.15, -0.12],
        "log_age": [1.05, -0.08],   # 11 Gyr at the centre, 6.5 Gyr at 3 scale lengths
        "log_tau": [0.0, 0.12],
        "dust2": [0.6, -0.09],
        "dust1": [1.0, -0.15],
    },
    # young star-forming clumps in dusty birth clouds; offsets (east, north) in arcsec
    # from the centre. Parameters not given (e.g. the diffuse dust2) are the disk's at
    # the clump's radius.
    "clumps": [
        {"offset_arcsec": [9.0, 6.0], "sigma_arcsec": 1.2, "mass_frac": 0.002,
         "params": {"log_age": -0.85, "log_tau": -0.7, "logzsol": 0.0, "dust1": 1.5,
                    "gas_logu": -2.0}},
        {"offset_arcsec": [-7.0, -10.0], "sigma_arcsec": 1.5, "mass_frac": 0.0025,
         "params": {"log_age": -0.7, "log_tau": -0.5, "logzsol": -0.1, "dust1": 1.2,
                    "gas_logu": -2.2}},
        {"offset_arcsec": [-12.0, 3.0], "sigma_arcsec": 1.0, "mass_frac": 0.0015,
         "params": {"log_age": -0.95, "log_tau": -0.8, "logzsol": -0.2, "dust1": 1.8,
                    "gas_logu": -2.0}},
        {"offset_arcsec": [4.0, -15.0], "sigma_arcsec": 1.3, "mass_frac": 0.0015,
         "params": {"log_age": -0.8, "log_tau": -0.6, "logzsol": -0.05, "dust1": 1.4,
                    "gas_logu": -2.3}},
    ],
    # foreground stars: blackbodies of temperature teff with AB magnitude `mag` in
    # star_ref_filter (observed: no extinction is applied to them)
    "star_ref_filter": "sdss_r",
    "stars": [
        {"offset_arcsec": [-48.0, 40.0], "mag": 16.0, "teff": 5800.0},
        {"offset_arcsec": [45.0, -50.0], "mag": 17.5, "teff": 4200.0},
        {"offset_arcsec": [20.0, 24.0], "mag": 19.0, "teff": 6500.0},
        {"offset_arcsec": [-35.0, -45.0], "mag": 20.0, "teff": 3500.0},
    ],
    # cosmic-ray hits (1-2 pixels, 30-300 sigma) in the images of these surveys
    "cosmic_rays": {"enabled": False, "count": 20, "surveys": ["sdss", "hst"]},
    "ifs": False,
    "ifs_cube": {
        "spaxel_arcsec": 0.5,
        "psf_fwhm": 2.5,
        "diameter_arcsec": 32.0,      # hexagonal bundle, corner to corner
        "offset_arcsec": [1.0, -0.5],  # cube centre relative to the galaxy (east, north)
        "wave_min": 3600.0,
        "wave_max": 10300.0,
        "R": 2000.0,                  # log sampling: points per unit ln(lambda)
        "sky_sigma": 0.02,            # 1e-17 erg/s/cm^2/AA per spaxel, background noise
        "poisson": 0.005,             # variance per unit flux (1e-17 units)
        "oversample": 2,
    },
    # one dict per band; depth keys by survey (native units, per native pixel):
    #   galex: exptime (s), sky (counts/s)
    #   sdss: nmgy (nmgy/count), sky (counts), gain (e-/count), darkvar (counts^2)
    #   2mass: magzp (Vega), sky (DN), skysig (DN); optional gain, nframes
    #   wise: magzp (Vega), sky (DN), skysig (DN), gain (source Poisson, DN^-1)
    #   hst: photflam, exptime, skysig (e-/s); des: magzero (AB), gain, skysig (e-)
    #   generic: bunit, skysig, poisson (variance per unit of signal)
    "bands": [
        {"filter": "galex_fuv", "survey": "galex", "pixscale": 1.5, "psf_fwhm": 4.2,
         "rotation_deg": 11.0, "offset_arcsec": [6.0, -4.0], "exptime": 1500.0, "sky": 1.0e-3},
        {"filter": "galex_nuv", "survey": "galex", "pixscale": 1.5, "psf_fwhm": 5.3,
         "rotation_deg": -7.0, "offset_arcsec": [-5.0, 3.5], "exptime": 1500.0, "sky": 5.0e-3},
        _sdss_band("sdss_u", 0.396, 1.4, 2.0, [3.0, 7.0], 0.0101, 22.0),
        _sdss_band("sdss_g", 0.396, 1.3, -3.0, [-7.0, -2.0], 0.0038, 72.0),
        _sdss_band("sdss_r", 0.396, 1.2, 4.5, [5.0, 5.0], 0.0050, 125.0),
        _sdss_band("sdss_i", 0.396, 1.2, -1.5, [-4.0, -6.0], 0.0066, 180.0),
        _sdss_band("sdss_z", 0.396, 1.3, 6.0, [8.0, -3.0], 0.028, 155.0),
        {"filter": "2mass_j", "survey": "2mass", "pixscale": 1.0, "psf_fwhm": 2.9,
         "rotation_deg": 0.5, "offset_arcsec": [-6.0, 6.0], "magzp": 20.95, "sky": 60.0,
         "skysig": 0.63},
        {"filter": "2mass_h", "survey": "2mass", "pixscale": 1.0, "psf_fwhm": 2.8,
         "rotation_deg": -2.5, "offset_arcsec": [4.0, -7.0], "magzp": 20.45, "sky": 150.0,
         "skysig": 0.83},
        {"filter": "2mass_k", "survey": "2mass", "pixscale": 1.0, "psf_fwhm": 2.9,
         "rotation_deg": 1.5, "offset_arcsec": [-2.0, -8.0], "magzp": 19.93, "sky": 200.0,
         "skysig": 0.91},
        {"filter": "wise_w1", "survey": "wise", "pixscale": 1.375, "psf_fwhm": 6.1,
         "rotation_deg": 9.0, "offset_arcsec": [7.0, 8.0], "magzp": 20.5, "sky": 30.0,
         "skysig": 0.35, "gain": 40.0},
        {"filter": "wise_w2", "survey": "wise", "pixscale": 1.375, "psf_fwhm": 6.4,
         "rotation_deg": -10.0, "offset_arcsec": [-8.0, -5.0], "magzp": 19.5, "sky": 45.0,
         "skysig": 0.4, "gain": 40.0},
    ],
}

#: depth keys each survey needs
_DEPTH_KEYS = {
    "galex": ("exptime", "sky"),
    "sdss": ("nmgy", "sky", "gain", "darkvar"),
    "2mass": ("magzp", "sky", "skysig"),
    "wise": ("magzp", "sky", "skysig"),
    "hst": ("photflam", "exptime", "skysig"),
    "des": ("magzero", "gain", "skysig"),
    "generic": ("bunit", "skysig"),
}


# ============================================================================ config


def merge_mock_config(mock_config=None):
    """``DEFAULT_MOCK`` deep-merged with ``mock_config`` (lists replace), checked.

    Raises
    ------
    InputError
        A value is missing or out of range; the message names ``mock.<key>``.
    """
    from .config import deep_merge

    cfg = deep_merge(DEFAULT_MOCK, mock_config or {})
    _check_config(cfg)
    return cfg


def _bad(key, problem, fix=None):
    return InputError(problem, path=f"mock.{key}", fix=fix)


def _positive(cfg, key, where):
    v = cfg.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) or v <= 0:
        raise _bad(f"{where}{key}", f"{key} = {v!r} must be a positive number")


def _offset(v, where):
    try:
        off = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        off = None
    if off is None or off.shape != (2,) or not np.all(np.isfinite(off)):
        raise _bad(where, f"{v!r} is not an [east, north] offset in arcsec",
                   "give two numbers, e.g. [3.0, -2.0]")
    return off


_BAND_KEYS = {"filter", "survey", "pixscale", "psf_fwhm", "rotation_deg", "offset_arcsec",
              "camcol", "gain", "nframes", "poisson"}.union(*_DEPTH_KEYS.values())


def _unknown(given, allowed, where):
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise _bad(where + str(extra[0]), f"unknown key(s) {extra}",
                   f"use only {sorted(allowed)}")


def _check_config(cfg):
    _unknown(cfg, DEFAULT_MOCK, "")
    from .sps.sfh import FORMS

    if cfg["sfh"] is not None and cfg["sfh"] not in FORMS:
        raise _bad("sfh", f"unknown SFH form {cfg['sfh']!r}", f"use one of {list(FORMS)}")
    _unknown(cfg["galaxy"], DEFAULT_MOCK["galaxy"], "galaxy.")
    _unknown(cfg["ifs_cube"], DEFAULT_MOCK["ifs_cube"], "ifs_cube.")
    _unknown(cfg["cosmic_rays"], DEFAULT_MOCK["cosmic_rays"], "cosmic_rays.")
    for i, b in enumerate(cfg["bands"]):
        _unknown(b, _BAND_KEYS, f"bands[{i}].")
    for i, c in enumerate(cfg["clumps"]):
        _unknown(c, ("offset_arcsec", "sigma_arcsec", "mass_frac", "params"), f"clumps[{i}].")
    for i, s in enumerate(cfg["stars"]):
        _unknown(s, ("offset_arcsec", "mag", "teff"), f"stars[{i}].")
    for key in ("stamp_arcsec", "fine_pixscale", "gradient_step_arcsec",
                "gradient_rmax_scales"):
        _positive(cfg, key, "")
    if not -90 <= cfg["dec"] <= 90 or not 0 <= cfg["ra"] < 360:
        raise _bad("ra", f"centre ({cfg['ra']}, {cfg['dec']}) is not a sky position")
    if cfg["z"] <= 0:
        raise _bad("z", f"z = {cfg['z']} must be > 0 (the mock sits at a distance)")
    if cfg["ebv"] < 0:
        raise _bad("ebv", f"ebv = {cfg['ebv']} is negative")
    g = cfg["galaxy"]
    for key in ("disk_scale_arcsec", "bulge_re_arcsec", "bulge_sersic_n", "bulge_core_arcsec"):
        _positive(g, key, "galaxy.")
    for key in ("axis_ratio", "bulge_axis_ratio"):
        if not 0 < g[key] <= 1:
            raise _bad(f"galaxy.{key}", f"{key} = {g[key]} must be in (0, 1]")
    fr = g["bulge_frac"] + sum(c["mass_frac"] for c in cfg["clumps"])
    if g["bulge_frac"] < 0 or fr >= 1:
        raise _bad("galaxy.bulge_frac", f"bulge + clump mass fractions = {fr:g} must be < 1")
    for i, c in enumerate(cfg["clumps"]):
        _offset(c.get("offset_arcsec"), f"clumps[{i}].offset_arcsec")
        _positive(c, "sigma_arcsec", f"clumps[{i}].")
        _positive(c, "mass_frac", f"clumps[{i}].")
    for name in list(cfg["params"]) + list(cfg["gradients"]):
        if name not in PARAM_INFO:
            raise _bad(f"params.{name}", f"unknown SPS parameter '{name}'",
                       f"use names from {sorted(PARAM_INFO)}")
    for name, v in cfg["gradients"].items():
        if np.shape(v) != (2,):
            raise _bad(f"gradients.{name}", f"{v!r} is not [centre, slope per scale length]")
    get_filter(cfg["star_ref_filter"])
    for i, s in enumerate(cfg["stars"]):
        _offset(s.get("offset_arcsec"), f"stars[{i}].offset_arcsec")
        _positive(s, "teff", f"stars[{i}].")
    if not cfg["bands"]:
        raise _bad("bands", "no bands", "give at least one band")
    seen = set()
    for i, b in enumerate(cfg["bands"]):
        where = f"bands[{i}]."
        name = get_filter(b.get("filter", "?")).name
        if name in seen:
            raise _bad(f"{where}filter", f"filter {name} appears twice")
        seen.add(name)
        if b.get("survey") not in SURVEYS:
            raise _bad(f"{where}survey", f"survey {b.get('survey')!r} is not one the mock "
                       "writes", f"use one of {', '.join(SURVEYS)}")
        for key in ("pixscale", "psf_fwhm"):
            _positive(b, key, where)
        _offset(b.get("offset_arcsec", [0.0, 0.0]), f"{where}offset_arcsec")
        for key in _DEPTH_KEYS[b["survey"]]:
            if key not in b:
                raise _bad(f"{where}{key}", f"survey {b['survey']} needs '{key}'")
        if b["survey"] == "galex" and name not in GALEX_FLAM_PER_CPS:
            raise _bad(f"{where}filter", f"galex survey with filter {name}",
                       "use galex_fuv or galex_nuv")
        if b["survey"] == "2mass" and name not in VEGA_F0_JY:
            raise _bad(f"{where}filter", f"2mass survey with filter {name}")
        if b["survey"] == "wise" and name not in VEGA_F0_JY:
            raise _bad(f"{where}filter", f"wise survey with filter {name}")
    if cfg["ifs"]:
        ic = cfg["ifs_cube"]
        for key in ("spaxel_arcsec", "psf_fwhm", "diameter_arcsec", "wave_min", "wave_max",
                    "R", "sky_sigma"):
            _positive(ic, key, "ifs_cube.")
        if ic["wave_max"] <= ic["wave_min"]:
            raise _bad("ifs_cube.wave_max", "wave_max must exceed wave_min")


# ============================================================================ geometry


def _gnomonic(ra, dec, ra0, dec0):
    """Standard coordinates (xi east, eta north), arcsec, of (ra, dec) about (ra0, dec0)."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD


def _inverse_gnomonic(xi, eta, ra0, dec0):
    """(ra, dec) in degrees of standard coordinates (arcsec) about (ra0, dec0)."""
    x, y = np.asarray(xi) / ARCSEC_PER_RAD, np.asarray(eta) / ARCSEC_PER_RAD
    d0 = np.radians(dec0)
    den = np.cos(d0) - y * np.sin(d0)
    ra = np.degrees(np.arctan2(x, den)) + ra0
    dec = np.degrees(np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, den)))
    return np.mod(ra, 360.0), dec


def _tan_wcs(ra, dec, pixscale, shape, rotation_deg=0.0):
    """TAN WCS centred on (ra, dec) at the middle of ``shape``; +y axis at PA rotation_deg."""
    ny, nx = shape
    th = np.radians(rotation_deg)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.cdelt = [-pixscale / 3600.0, pixscale / 3600.0]
    w.wcs.pc = [[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.radesys = "ICRS"
    return w


def band_wcs(cfg, band):
    """Native WCS and shape (ny, nx) of a band's image.

    The image is centred ``offset_arcsec`` (east, north) from the galaxy,
    its +y axis at position angle ``rotation_deg``, and large enough to
    contain the whole common stamp with a margin.
    """
    off = np.asarray(band.get("offset_arcsec", [0.0, 0.0]), dtype=float)
    th = np.radians(band.get("rotation_deg", 0.0))
    side = (cfg["stamp_arcsec"] * (abs(np.cos(th)) + abs(np.sin(th)))
            + 2 * np.hypot(*off) + 2 * max(6.0, 2 * band["psf_fwhm"]))
    n = int(np.ceil(side / band["pixscale"]))
    n += 1 - n % 2
    ra, dec = _inverse_gnomonic(off[0], off[1], cfg["ra"], cfg["dec"])
    return _tan_wcs(float(ra), float(dec), band["pixscale"], (n, n),
                    band.get("rotation_deg", 0.0)), (n, n)


def _fine_coords(wcs, shape, k, ra0, dec0):
    """Standard coordinates (arcsec) of the centres of the k x k sub-pixels of an image."""
    ny, nx = shape
    xs = (np.arange(nx * k) + 0.5) / k - 0.5
    ys = (np.arange(ny * k) + 0.5) / k - 0.5
    xx, yy = np.meshgrid(xs, ys)
    ra, dec = wcs.wcs_pix2world(xx, yy, 0)
    return _gnomonic(ra, dec, ra0, dec0)


def _block_sum(a, k):
    """Sum over k x k blocks of the last two axes."""
    if k == 1:
        return a
    *lead, ny, nx = a.shape
    return a.reshape(*lead, ny // k, k, nx // k, k).sum(axis=(-3, -1))


def _psf_convolve(img, fwhm_arcsec, sub_pixscale):
    """Convolve the last two axes with a circular Gaussian (zero outside the image)."""
    s = fwhm_arcsec * FWHM_TO_SIGMA / sub_pixscale
    sigma = (0,) * (img.ndim - 2) + (s, s)
    return gaussian_filter(img, sigma, mode="constant", cval=0.0, truncate=5.0)


# ============================================================================ units


def milky_way_transmission(wave_aa, ebv, rv=3.1):
    """Fraction of light transmitted through Milky-Way dust, ``10**(-0.4 A_lambda)``.

    Fitzpatrick (1999) with R_V = ``rv`` (``dust_extinction.parameter_averages.F99``)
    over its range (1000 AA - 3.33 um); redward of it (WISE) A_lambda is continued
    as the power law ``A(0.999 * 3.33 um) * (lambda / (0.999 * 3.33 um))**-1.7`` --
    the same rule as the imaging stage's correction
    (``sedmap.images.extinction.galactic_transmission``), so it undoes this exactly.
    """
    from .images.extinction import galactic_transmission

    wave = np.atleast_1d(np.asarray(wave_aa, dtype=float))
    if ebv == 0:
        return np.ones_like(wave)
    try:
        return galactic_transmission(wave, ebv, rv)
    except InputError as exc:
        raise InputError(exc.problem, path="mock.bands", fix="use bands redward of 1150 AA") \
            from None


def flam_per_native_unit(band):
    """f_lambda (erg/s/cm^2/AA) of one native pixel unit of ``band`` (docs/surveys.md)."""
    name = get_filter(band["filter"]).name
    lam = get_filter(name).pivot_wavelength
    nu_to_lam = C_AA_PER_S / lam**2
    survey = band["survey"]
    if survey == "galex":
        return GALEX_FLAM_PER_CPS[name]
    if survey == "sdss":
        return NMGY_CGS * nu_to_lam
    if survey == "2mass":
        return VEGA_F0_JY[name] * JY_CGS * 10 ** (-0.4 * band["magzp"]) * nu_to_lam
    if survey == "wise":
        return VEGA_F0_JY[name] * JY_CGS * 10 ** (-0.4 * band["magzp"]) * nu_to_lam
    if survey == "hst":
        return float(band["photflam"])
    if survey == "des":
        return AB_JY * JY_CGS * 10 ** (-0.4 * band["magzero"]) * nu_to_lam
    import astropy.units as u

    unit = u.Unit(band["bunit"])
    return (1.0 * unit).to_value(u.erg / u.s / u.cm**2 / u.AA,
                                 equivalencies=u.spectral_density(lam * u.AA))


def native_variance(band, signal):
    """Variance (native units^2) of each pixel, from the noiseless sky-subtracted signal.

    The survey's recipe of docs/surveys.md evaluated on the noiseless image,
    sky included where the recipe counts it; the calibration term of GALEX is
    a zero-point error, not pixel noise, and is left out.
    """
    s = np.asarray(signal, dtype=float)
    pos = np.maximum(s, 0.0)
    survey = band["survey"]
    if survey == "galex":
        return np.maximum(s + band["sky"], 0.0) / band["exptime"]
    if survey == "sdss":
        dn = s / band["nmgy"] + band["sky"]
        return (np.maximum(dn, 0.0) / band["gain"] + band["darkvar"]) * band["nmgy"] ** 2
    if survey == "2mass":
        return pos / (band.get("gain", 10.0) * band.get("nframes", 6)) + band["skysig"] ** 2
    if survey == "wise":
        return band["skysig"] ** 2 + pos / band.get("gain", 40.0)
    if survey == "hst":
        return band["skysig"] ** 2 + pos / band["exptime"]
    if survey == "des":
        return band["skysig"] ** 2 + pos / band["gain"]
    return band["skysig"] ** 2 + pos * band.get("poisson", 0.0)


# ============================================================================ the galaxy


def _sersic_norm(n, re, rc):
    """1 / (integral over the plane of exp(-b (sqrt(r^2+rc^2)/re)^(1/n))) for q = 1."""
    from scipy.integrate import quad

    b = gammaincinv(2 * n, 0.5)

    def f(r):
        return r * np.exp(-b * (np.sqrt(r * r + rc * rc) / re) ** (1.0 / n))

    edges = [0.0, rc, re, 10 * re, 100 * re, np.inf]
    tot = sum(quad(f, lo, hi, limit=200)[0] for lo, hi in itertools.pairwise(edges))
    return b, 1.0 / (2 * np.pi * tot)


class MockGalaxy:
    """The continuous galaxy model and its SPS populations.

    Parameters
    ----------
    cfg : dict
        A merged mock config (:func:`merge_mock_config`).
    model : sedmap.sps.SPSModel
    models_config : dict, optional
        The ``models`` section: parameter ranges there (``[min, max]``) clip the
        mock's parameters, and fixed values (one number) replace them, so the
        truth is reachable by the model grid.
    """

    def __init__(self, cfg, model, models_config=None):
        self.cfg, self.model = cfg, model
        g = cfg["galaxy"]
        self.z = float(cfg["z"])
        self.mtot = 10 ** g["log_mstar"]
        self.h = g["disk_scale_arcsec"]
        self.q = g["axis_ratio"]
        self.qb = g["bulge_axis_ratio"]
        pa = np.radians(g["pa_deg"])
        self.sin_pa, self.cos_pa = np.sin(pa), np.cos(pa)
        self.clumps = cfg["clumps"]
        fclump = sum(c["mass_frac"] for c in self.clumps)
        self.m_bulge = g["bulge_frac"] * self.mtot
        self.m_disk = self.mtot * (1 - g["bulge_frac"] - fclump)
        self.bulge_b, self.bulge_norm = _sersic_norm(
            g["bulge_sersic_n"], g["bulge_re_arcsec"], g["bulge_core_arcsec"])
        self._ranges = self._param_ranges(models_config or {})

        # radial bins of the disk+bulge population
        self.dr = cfg["gradient_step_arcsec"]
        rmax = 1.5 * cfg["stamp_arcsec"] / min(self.q, self.qb) + 50.0
        self.nbin = int(np.ceil(rmax / self.dr)) + 1
        r = (np.arange(self.nbin) + 0.5) * self.dr
        main = self._params_at(np.minimum(r / self.h, cfg["gradient_rmax_scales"]))
        # a clump takes the disk's parameters at its radius unless it overrides them
        # (it shares the diffuse dust there; its birth clouds are its own: dust1)
        clump = [self._params_at(np.minimum(self._radius(*c["offset_arcsec"]) / self.h,
                                            cfg["gradient_rmax_scales"]),
                                 c.get("params", {})) for c in self.clumps]
        self.param_names = list(model.param_names)
        # all populations stacked: rows 0..nbin-1 = radial bins, then one per clump
        self.params = {k: np.concatenate([main[k]] + [c[k] for c in clump])
                       for k in self.param_names}
        model.check_params(self.params, z=self.z)
        der = model.derived(self.params)
        self.surv = der["surviving_mass"]          # per Msun formed
        self.sfr = der["sfr_100myr"] / self.surv    # Msun/yr per Msun surviving
        self.age_mw = der["mass_weighted_age"]      # Gyr
        self._phot = {}

    # ------------------------------------------------------------ parameters
    def _param_ranges(self, mc):
        tmax = np.log10(self.model.age_of_universe(self.z)) - 1e-6
        out = {}
        cfg_ranges = mc.get("params", {})
        for name in self.model.param_names:
            lo, hi = PARAM_INFO[name][0]
            v = cfg_ranges.get(name)
            if v is not None and np.isscalar(v):
                lo = hi = float(v)
            elif v is not None:
                lo, hi = max(lo, float(v[0])), min(hi, float(v[1]))
            if name == "log_age":
                hi = min(hi, tmax)
                lo = min(lo, hi)
            out[name] = (lo, hi)
        return out

    def _params_at(self, x, override=None):
        """Parameters (dict of arrays) at radii x (disk scale lengths), clipped."""
        cfg = self.cfg
        out = {}
        for name in self.model.param_names:
            if override and name in override:
                v = np.full(x.shape, float(override[name]))
            elif name in cfg["gradients"]:
                c, s = cfg["gradients"][name]
                v = c + s * x
            elif name in cfg["params"]:
                v = np.full(x.shape, float(cfg["params"][name]))
            else:
                raise _bad(f"params.{name}", f"no value for SPS parameter '{name}' "
                           f"(needed by sfh={self.model.sfh}, dust_law={self.model.dust_law})",
                           "add it to mock.params")
            lo, hi = self._ranges[name]
            out[name] = np.clip(v, lo, hi)
        return out

    # ------------------------------------------------------------ structure
    def _radius(self, xi, eta):
        """Deprojected disk radius (arcsec) at offsets (east, north) arcsec."""
        u = np.asarray(xi) * self.sin_pa + np.asarray(eta) * self.cos_pa
        v = np.asarray(xi) * self.cos_pa - np.asarray(eta) * self.sin_pa
        return np.atleast_1d(np.sqrt(u * u + (v / self.q) ** 2))

    def sample(self, xi, eta, area):
        """Surviving mass (Msun) of each population in sub-pixels at (xi, eta) arcsec.

        Returns
        -------
        rbin : int array
            Radial-bin index (population row) of the disk+bulge population.
        m_main : array
            Disk + bulge surviving mass in each sub-pixel.
        m_clumps : list of arrays
            Surviving mass of each clump.
        """
        g = self.cfg["galaxy"]
        u = xi * self.sin_pa + eta * self.cos_pa      # along the major axis
        v = xi * self.cos_pa - eta * self.sin_pa      # along the minor axis
        r = self._radius(xi, eta).reshape(np.shape(u))
        rb = np.sqrt(u * u + (v / self.qb) ** 2 + g["bulge_core_arcsec"] ** 2)
        m_main = (self.m_disk / (2 * np.pi * self.h**2 * self.q) * np.exp(-r / self.h)
                  + self.m_bulge * self.bulge_norm / self.qb
                  * np.exp(-self.bulge_b * (rb / g["bulge_re_arcsec"]) ** (1.0 / g[
                      "bulge_sersic_n"])))
        m_main *= area
        rbin = np.minimum((r / self.dr).astype(np.int64), self.nbin - 1)
        m_clumps = []
        for c in self.clumps:
            dx, dy = c["offset_arcsec"]
            s2 = c["sigma_arcsec"] ** 2
            d2 = (xi - dx) ** 2 + (eta - dy) ** 2
            m_clumps.append(c["mass_frac"] * self.mtot / (2 * np.pi * s2)
                            * np.exp(-0.5 * d2 / s2) * area)
        return rbin, m_main, m_clumps

    def photometry(self, filters):
        """f_lambda (erg/s/cm^2/AA) per Msun SURVIVING of every population, (n_pop, n_f)."""
        key = tuple(filters)
        if key not in self._phot:
            ph = self.model.photometry(self.params, list(filters), self.z)
            self._phot[key] = np.asarray(ph, dtype=float) / self.surv[:, None]
        return self._phot[key]

    def flux(self, sample, phot_col):
        """f_lambda of each sub-pixel for one band; ``phot_col`` (n_pop,) per Msun surviving."""
        rbin, m_main, m_clumps = sample
        out = m_main * phot_col[rbin]
        for i, m in enumerate(m_clumps):
            out += m * phot_col[self.nbin + i]
        return out


# ============================================================================ rendering


def _sub_factor(pixscale, fine):
    return max(1, int(np.ceil(pixscale / fine - 1e-9)))


def render_band(galaxy, band, wcs, shape, phot_col):
    """Noiseless galaxy image of one band, erg/s/cm^2/AA per native pixel (no extinction)."""
    cfg = galaxy.cfg
    k = _sub_factor(band["pixscale"], cfg["fine_pixscale"])
    sub = band["pixscale"] / k
    xi, eta = _fine_coords(wcs, shape, k, cfg["ra"], cfg["dec"])
    img = galaxy.flux(galaxy.sample(xi, eta, sub * sub), phot_col)
    return _block_sum(_psf_convolve(img, band["psf_fwhm"], sub), k)


def _pixel_gaussian(shape, x0, y0, sigma_pix):
    """Unit-flux circular Gaussian integrated over pixels (0-based centre x0, y0)."""
    ny, nx = shape
    s = np.sqrt(2.0) * sigma_pix

    def prof(n, c):
        e = np.arange(n + 1) - 0.5 - c
        return 0.5 * np.diff(erf(e / s))

    return np.outer(prof(ny, y0), prof(nx, x0))


def _blackbody_mags(teff, filters, ref_filter, ref_mag):
    """AB magnitudes of a blackbody normalised to ``ref_mag`` in ``ref_filter``."""
    from .filters import filter_matrix

    names = [ref_filter] + list(filters)
    wave = np.geomspace(900.0, 3.0e5, 6000)
    x = 1.438777e8 / (wave * teff)  # h c / (lambda k T), lambda in AA
    flam = 1.0 / (wave**5 * np.expm1(x))
    band = filter_matrix(names, wave) @ flam
    piv = np.array([get_filter(n).pivot_wavelength for n in names])
    fnu = band * piv**2 / C_AA_PER_S
    mags = -2.5 * np.log10(fnu) - 48.60
    return mags[1:] - mags[0] + ref_mag


def _star_catalogue(cfg, filters):
    """List of (ra, dec, teff, ref_mag, mags per filter)."""
    out = []
    for s in cfg["stars"]:
        ra, dec = _inverse_gnomonic(s["offset_arcsec"][0], s["offset_arcsec"][1],
                                    cfg["ra"], cfg["dec"])
        mags = _blackbody_mags(s["teff"], filters, cfg["star_ref_filter"], s["mag"])
        out.append((float(ra), float(dec), float(s["teff"]), float(s["mag"]), mags))
    return out


def _cosmic_rays(rng, shape, sigma, count):
    """Image of cosmic-ray hits: 1-2 pixel events of 30-300 local sigma."""
    ny, nx = shape
    out = np.zeros(shape)
    for _ in range(count):
        y, x = int(rng.integers(2, ny - 2)), int(rng.integers(2, nx - 2))
        amp = rng.uniform(30.0, 300.0) * sigma[y, x]
        out[y, x] += amp
        if rng.random() < 0.5:
            dy, dx = [(0, 1), (1, 0), (1, 1), (1, -1)][int(rng.integers(4))]
            out[y + dy, x + dx] += amp * rng.uniform(0.3, 1.0)
    return out


# ============================================================================ writing


def _clean_wcs_header(wcs):
    h = wcs.to_header()
    for key in ("DATEREF", "MJDREFI", "MJDREFF", "MJDREF", "MJD-OBS", "DATE-OBS"):
        h.remove(key, ignore_missing=True, remove_all=True)
    return h


def _write_hdul(hdus, path):
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")
    return Path(path)


def _raw_files(band, image, var, wcs, out_raw, confhash):
    """HDUs of one band's raw file(s) in its survey's format; returns {role: path}."""
    name = get_filter(band["filter"]).name
    survey = band["survey"]
    head = _clean_wcs_header(wcs)
    head["ORIGIN"] = ("sedmap mock", "a mock image made by sedmap")
    head["FILTER"] = (name, "sedmap filter name")
    data = image.astype(np.float32)
    path = out_raw / f"{name}.fits"
    files = {"file": path}
    if survey == "galex":
        head["TELESCOP"] = "GALEX"
        head["BAND"] = (2 if name == "galex_fuv" else 1, "1 = NUV, 2 = FUV")
        head["EXPTIME"] = (float(band["exptime"]), "[s] effective exposure time")
        provenance_header(head, confhash)
        _write_hdul([fits.PrimaryHDU(data, head)], path)
    elif survey == "sdss":
        ny, nx = data.shape
        head["BUNIT"] = "nanomaggy"
        head["FILTER"] = (name[-1], "SDSS filter")
        head["CAMCOL"] = (int(band.get("camcol", 1)), "camera column")
        head["EXPTIME"] = (53.907456, "[s]")
        head["NMGY"] = (float(band["nmgy"]), "nanomaggies per count")
        head["GAIN"] = (float(band["gain"]), "[e-/count]")
        head["DARKVAR"] = (float(band["darkvar"]), "[count^2] dark variance")
        provenance_header(head, confhash)
        calib = np.full(nx, band["nmgy"], dtype=np.float32)
        sky_ny, sky_nx = (ny + 7) // 8, (nx + 7) // 8
        allsky = np.full((sky_ny, sky_nx), band["sky"], dtype=np.float32)
        xinterp = ((np.arange(nx) - 3.5) / 8.0).astype(np.float32)
        yinterp = ((np.arange(ny) - 3.5) / 8.0).astype(np.float32)
        cols = fits.ColDefs([
            fits.Column(name="ALLSKY", format=f"{allsky.size}E", dim=f"({sky_nx},{sky_ny})",
                        array=allsky[None]),
            fits.Column(name="XINTERP", format=f"{nx}E", array=xinterp[None]),
            fits.Column(name="YINTERP", format=f"{ny}E", array=yinterp[None]),
        ])
        sky_hdu = fits.BinTableHDU.from_columns(cols)
        calib_hdu = fits.ImageHDU(calib)
        for h in (sky_hdu.header, calib_hdu.header):
            provenance_header(h, confhash)
        _write_hdul([fits.PrimaryHDU(data, head), calib_hdu, sky_hdu], path)
    elif survey in ("2mass", "wise"):
        head["MAGZP"] = (float(band["magzp"]), "Vega zero point, mag")
        head["SKYVAL"] = (float(band["sky"]), "[DN] background level")
        head["SKYSIG"] = (float(band["skysig"]), "[DN] background noise")
        if survey == "2mass":
            for key in ("gain", "nframes"):
                if key in band:
                    head[key.upper()] = float(band[key])
        else:
            head["BUNIT"] = "DN"
            head["BAND"] = int(name[-1])
        provenance_header(head, confhash)
        _write_hdul([fits.PrimaryHDU(data, head)], path)
        if survey == "wise":
            uhead = head.copy()
            upath = out_raw / f"{name}_unc.fits"
            _write_hdul([fits.PrimaryHDU(np.sqrt(var).astype(np.float32), uhead)], upath)
            files["unc_file"] = upath
    elif survey in ("hst", "des"):
        if survey == "hst":
            head["BUNIT"] = "ELECTRONS/S"
            head["PHOTFLAM"] = (float(band["photflam"]), "erg/s/cm2/AA per e-/s")
            head["EXPTIME"] = (float(band["exptime"]), "[s]")
            wname = "WHT"
        else:
            head["BUNIT"] = "electrons"
            head["MAGZERO"] = (float(band["magzero"]), "AB zero point")
            head["GAIN"] = (float(band["gain"]), "[e-/DN]")
            wname = "WGT"
        provenance_header(head, confhash)
        whead = _clean_wcs_header(wcs)
        provenance_header(whead, confhash)
        weight = np.full(data.shape, 1.0 / band["skysig"] ** 2, dtype=np.float32)
        phead = fits.Header()
        provenance_header(phead, confhash)
        _write_hdul([fits.PrimaryHDU(header=phead), fits.ImageHDU(data, head, name="SCI"),
                     fits.ImageHDU(weight, whead, name=wname)], path)
        files["hdu"] = "SCI"
    else:  # generic
        head["BUNIT"] = band["bunit"]
        provenance_header(head, confhash)
        _write_hdul([fits.PrimaryHDU(data, head)], path)
        upath = out_raw / f"{name}_unc.fits"
        _write_hdul([fits.PrimaryHDU(np.sqrt(var).astype(np.float32), head.copy())], upath)
        files["unc_file"] = upath
    return files


def _write_yaml(data, path):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return Path(path)


def _smooth_truth(mass, sfr, mass_formed, quantities, fwhm_pix):
    """Truth maps at a Gaussian PSF of ``fwhm_pix`` pixels: mass, SFR and mass formed
    convolved; mass-weighted quantities as (mass x q) convolved over mass convolved,
    but ``AGE_MW`` weighted by the mass formed (as the fits define the age)."""
    from scipy.ndimage import gaussian_filter

    sig = fwhm_pix * FWHM_TO_SIGMA

    def conv(a):
        return gaussian_filter(np.nan_to_num(a), sig, mode="constant", truncate=5.0)

    ms = conv(mass)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = {k: np.where(ms > 0, conv(mass * np.nan_to_num(v)) / ms, np.nan)
             for k, v in quantities.items() if k != "AGE_MW"}
        mf = conv(mass_formed)
        q["AGE_MW"] = np.where(mf > 0, conv(mass_formed * np.nan_to_num(quantities["AGE_MW"]))
                               / mf, np.nan)
    return ms, conv(sfr), q, mf


def _truth_maps(galaxy, wcs, shape, pix, k):
    """Truth maps on a grid (no PSF): surviving mass, SFR, mass-weighted quantities
    (``AGE_MW`` weighted by the mass formed, the others by the surviving mass), the
    mean parameters and the mass formed."""
    sub = pix / k
    xi, eta = _fine_coords(wcs, shape, k, galaxy.cfg["ra"], galaxy.cfg["dec"])
    rbin, m_main, m_clumps = galaxy.sample(xi, eta, sub * sub)
    del xi, eta
    pops = [(m_main, rbin)] + [(m, galaxy.nbin + i) for i, m in enumerate(m_clumps)]
    mass = _block_sum(sum(m for m, _ in pops), k)
    sfr = _block_sum(sum(m * galaxy.sfr[i] for m, i in pops), k)

    def mean(values):
        return _block_sum(sum(m * values[i] for m, i in pops), k) / mass

    # the fits' age is weighted by the mass formed: so is the truth's (populations
    # of different ages keep different fractions of the mass they formed)
    formed = _block_sum(sum(m / galaxy.surv[i] for m, i in pops), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        age = _block_sum(sum(m / galaxy.surv[i] * galaxy.age_mw[i] for m, i in pops), k) / formed
    av = 1.086 * galaxy.params["dust2"]
    quantities = {"AGE_MW": age, "LOGZ": mean(galaxy.params["logzsol"]), "AV": mean(av)}
    params = np.stack([mean(galaxy.params[p]) for p in galaxy.param_names])
    return mass, sfr, quantities, params, formed


def _safe_log(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log10(np.where(x > 0, x, 1.0)), np.nan)


# ============================================================================ IFS


def _ifs_cube(cfg, models_config, confhash, path, rng, progress):
    """Write a MaNGA-like cube; returns the path."""
    from .models import model_from_config
    from .sps.wavelength import resample

    ic = cfg["ifs_cube"]
    mc = copy.deepcopy(models_config)
    wl = mc.setdefault("wavelength", {})
    wl.update(spec_min_aa=min(3500.0, ic["wave_min"] / (1 + cfg["z"]) - 50.0),
              spec_max_aa=max(10500.0, ic["wave_max"] / (1 + cfg["z"]) + 50.0),
              spec_R=float(ic["R"]))
    model = model_from_config(mc)
    gal = MockGalaxy(cfg, model, models_config)
    z = cfg["z"]

    n_wave = int(np.floor(ic["R"] * np.log(ic["wave_max"] / ic["wave_min"]))) + 1
    wave = ic["wave_min"] * np.exp(np.arange(n_wave) / ic["R"])
    pix = ic["spaxel_arcsec"]
    n = int(np.ceil((ic["diameter_arcsec"] + 6.0) / pix))
    n += 1 - n % 2
    off = np.asarray(ic["offset_arcsec"], dtype=float)
    ra_c, dec_c = _inverse_gnomonic(off[0], off[1], cfg["ra"], cfg["dec"])
    wcs = _tan_wcs(float(ra_c), float(dec_c), pix, (n, n))
    k = int(ic.get("oversample", 2))
    sub = pix / k
    xi, eta = _fine_coords(wcs, (n, n), k, cfg["ra"], cfg["dec"])
    rbin, m_main, m_clumps = gal.sample(xi, eta, sub * sub)
    # populations used, and their observed spectra per Msun surviving on `wave`
    used = np.unique(rbin)
    rows = np.concatenate([used, gal.nbin + np.arange(len(m_clumps))])
    spec = model.spectra({p: gal.params[p][rows] for p in gal.param_names})
    wobs, flam = model.observed(spec, z)
    flam = resample(wobs, flam, wave) / gal.surv[rows, None]
    flam *= milky_way_transmission(wave, cfg["ebv"])[None, :] / DEFAULT_FSCALE
    lookup = np.searchsorted(used, rbin)
    # weights (n_fine, n_rows) are sparse: main population + clumps
    cube = np.empty((n_wave, n, n), dtype=np.float32)
    chunk = 128
    for s in progress_bar(range(0, n_wave, chunk), desc="ifs cube", unit="chunk",
                          disable=not progress):
        sl = slice(s, min(s + chunk, n_wave))
        f = flam[:, sl]
        fine = (m_main[..., None] * f[lookup]).transpose(2, 0, 1)
        for i, m in enumerate(m_clumps):
            fine += m[None] * f[len(used) + i][:, None, None]
        cube[sl] = _block_sum(_psf_convolve(fine, ic["psf_fwhm"], sub), k)
    # hexagonal footprint (flat sides east-west), corner-to-corner diameter
    xx, yy = np.meshgrid((np.arange(n) - (n - 1) / 2) * pix, (np.arange(n) - (n - 1) / 2) * pix)
    rad = ic["diameter_arcsec"] / 2.0
    inside = np.ones((n, n), dtype=bool)
    for ang in (0.0, 60.0, 120.0):
        a = np.radians(ang)
        inside &= np.abs(xx * np.cos(a) + yy * np.sin(a)) <= rad * np.sqrt(3) / 2
    var = ic["sky_sigma"] ** 2 + np.maximum(cube, 0.0) * ic.get("poisson", 0.0)
    noisy = cube + rng.standard_normal(cube.shape) * np.sqrt(var)
    flux = np.where(inside[None], noisy, 0.0).astype(np.float32)
    ivar = np.where(inside[None], 1.0 / var, 0.0).astype(np.float32)
    mask = np.where(inside[None], 0, 1 + 1024).astype(np.int32) * np.ones((n_wave, 1, 1),
                                                                          dtype=np.int32)

    w3 = WCS(naxis=3)
    w3.wcs.ctype = ["RA---TAN", "DEC--TAN", "WAVE-LOG"]
    w3.wcs.crval = [float(ra_c), float(dec_c), float(wave[0])]
    w3.wcs.crpix = [(n + 1) / 2.0, (n + 1) / 2.0, 1.0]
    w3.wcs.cdelt = [-pix / 3600.0, pix / 3600.0, float(wave[0] / ic["R"])]
    w3.wcs.cunit = ["deg", "deg", "Angstrom"]
    w3.wcs.radesys = "ICRS"
    head = w3.to_header()
    for key in ("DATEREF", "MJDREFI", "MJDREFF", "MJDREF"):
        head.remove(key, ignore_missing=True, remove_all=True)
    head["BUNIT"] = "1E-17 erg/s/cm^2/Ang/spaxel"
    provenance_header(head, confhash)
    ph = fits.Header()
    ph["ORIGIN"] = "sedmap mock"
    ph["OBJRA"], ph["OBJDEC"] = float(cfg["ra"]), float(cfg["dec"])
    ph["IFURA"], ph["IFUDEC"] = float(ra_c), float(dec_c)
    ph["EBVGAL"] = (float(cfg["ebv"]), "Milky-Way E(B-V) (not corrected)")
    for key in ("GFWHM", "RFWHM", "IFWHM", "ZFWHM"):
        ph[key] = (float(ic["psf_fwhm"]), "[arcsec] PSF FWHM")
    ph["MASKBITS"] = "1 = NOCOV, 1024 = DONOTUSE"
    provenance_header(ph, confhash)
    ihead = head.copy()
    ihead["BUNIT"] = "1E+34 (erg/s/cm^2/Ang/spaxel)^-2"
    mhead = head.copy()
    del mhead["BUNIT"]
    whead = fits.Header()
    whead["BUNIT"] = "Angstrom"
    provenance_header(whead, confhash)
    hdus = [fits.PrimaryHDU(header=ph), fits.ImageHDU(flux, head, name="FLUX"),
            fits.ImageHDU(ivar, ihead, name="IVAR"), fits.ImageHDU(mask, mhead, name="MASK"),
            fits.ImageHDU(wave, whead, name="WAVE")]
    return _write_hdul(hdus, path)


# ============================================================================ entry


class _BandSetup:
    """Per-band constants of a mock: filters, photometry, extinction, units, stars."""

    def __init__(self, cfg, galaxy):
        self.cfg, self.galaxy = cfg, galaxy
        self.bands = cfg["bands"]
        self.filters = [get_filter(b["filter"]).name for b in self.bands]
        self.pivots = np.array([get_filter(f).pivot_wavelength for f in self.filters])
        self.phot = galaxy.photometry(self.filters)
        self.trans = milky_way_transmission(self.pivots, cfg["ebv"])
        self.units = [flam_per_native_unit(b) for b in self.bands]
        self.stars = _star_catalogue(cfg, self.filters)

    def noiseless(self, ib, wcs, shape, stars=True, extinction=True):
        """Noiseless sky-subtracted image of band ``ib`` in native units."""
        band = self.bands[ib]
        img = render_band(self.galaxy, band, wcs, shape, self.phot[:, ib])
        if extinction:
            img *= self.trans[ib]
        img /= self.units[ib]
        if stars:
            sig = band["psf_fwhm"] * FWHM_TO_SIGMA / band["pixscale"]
            for ra, dec, _, _, mags in self.stars:
                x, y = wcs.wcs_world2pix(ra, dec, 0)
                flam = 10 ** (-0.4 * (mags[ib] + 48.60)) * C_AA_PER_S / self.pivots[ib] ** 2
                img += flam / self.units[ib] * _pixel_gaussian(shape, float(x), float(y), sig)
        return img


def noiseless_images(mock_config=None, models_config=None, *, stars=True, extinction=True):
    """The noiseless, sky-subtracted native images of a mock (for tests and checks).

    Returns
    -------
    dict
        ``{filter: (image, wcs)}``, images in the survey's native units per
        pixel, with Milky-Way extinction (``extinction``) and stars
        (``stars``) as asked.
    """
    from .models import model_from_config

    cfg = merge_mock_config(mock_config)
    mc = _mock_models(cfg, models_config if models_config is not None
                      else _default_models_config())
    setup = _BandSetup(cfg, MockGalaxy(cfg, model_from_config(mc), mc))
    out = {}
    for ib, band in enumerate(cfg["bands"]):
        wcs, shape = band_wcs(cfg, band)
        out[setup.filters[ib]] = (setup.noiseless(ib, wcs, shape, stars, extinction), wcs)
    return out


def _mock_models(cfg, mc):
    """The models config the mock galaxy is made with: ``mc``, or with ``sfh`` set,
    that form with the library's full parameter ranges (the fit's ranges and draw
    settings do not constrain the truth)."""
    mc = copy.deepcopy(mc)
    if cfg.get("sfh"):
        mc.update(sfh=cfg["sfh"], params={})
        mc.pop("draw", None)
    return mc


def _default_models_config():
    from .config import load_config

    return load_config()["models"]


def _band_spec(band, name, out_raw, with_cr):
    """The ``images.bands`` entry of one mock band (as written to bands.yaml)."""
    spec = {"filter": name, "survey": band["survey"], "file": str(out_raw / f"{name}.fits"),
            "psf_fwhm": float(band["psf_fwhm"])}
    if band["survey"] in ("wise", "generic"):
        spec["unc_file"] = str(out_raw / f"{name}_unc.fits")
    if band["survey"] in ("hst", "des"):
        spec["hdu"] = "SCI"
    if with_cr:
        spec["cosmic_rays"] = True
    # the mock's zero points are exact: no calibration error (the readers' defaults
    # are the surveys' documented ones, docs/surveys.md)
    spec["calib_err"] = 0.0
    return spec


def mock_band_specs(mock_config, out_dir):
    """The band specs ``make_mock`` writes to ``bands.yaml``, without making the mock.

    The workflow needs them before the mock exists (to plan one job per band).
    """
    cfg = merge_mock_config(mock_config)
    cr = cfg["cosmic_rays"]
    out_raw = Path(out_dir) / "raw"
    return [_band_spec(b, get_filter(b["filter"]).name, out_raw,
                       bool(cr["enabled"]) and b["survey"] in cr["surveys"])
            for b in cfg["bands"]]


def make_mock(mock_config, out_dir, *, models_config=None, progress=True):
    """Write the mock galaxy's raw images, band specs, truth (and IFS cube).

    Parameters
    ----------
    mock_config : dict or None
        The ``mock`` section; merged over ``DEFAULT_MOCK`` (lists replace).
    out_dir : str or os.PathLike
        Destination folder; file paths in ``bands.yaml`` are written as
        ``out_dir/raw/...`` (relative if ``out_dir`` is).
    models_config : dict, optional
        The ``models`` section (defaults: ``load_config()['models']``): the SPS
        model of the mock (SFH form, dust law, wavelength grid, cosmology).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``{"raw": {filter: path}, "unc": {filter: path}, "bands": path,
        "truth": path, "ifs": path or None}``.

    Truth file ``truth.fits`` (``PRODUCT = 'MOCKTRUTH'``; every image on the
    common grid ``target_grid(ra, dec, coarsest pixscale, stamp_arcsec)`` with
    its WCS, BUNIT and provenance):

    * ``LOG_MASS`` dex(solMass): surviving stellar mass in the pixel, at the
      target PSF (``LOG_MASS_NOPSF``: without it);
    * ``LOG_SFR`` dex(solMass / yr): SFR averaged over 100 Myr in the pixel, at
      the target PSF (``LOG_SFR_NOPSF``);
    * ``LOG_MASS_FORMED`` dex(solMass): stellar mass formed in the pixel, at the
      target PSF;
    * ``AGE_MW`` Gyr: the mass-weighted (by mass formed, as the fits define it)
      lookback age of all the pixel's populations together;
    * ``LOGZ`` dex: surviving-mass-weighted logzsol;
    * ``AV`` mag: surviving-mass-weighted diffuse A_V = 1.086 dust2 (no
      birth-cloud term, which only young stars see);
    * ``PARAMS`` (n_param, ny, nx): surviving-mass-weighted SPS parameters (at
      the target PSF),
      names in ``PARAM1..PARAMn``;
    * ``FLUX_TRUE`` (n_band, ny, nx), 1e-17 erg/s/cm^2/AA per pixel: galaxy
      light only, at the target PSF (the worst band PSF, Gaussian), without
      Milky-Way extinction;
    * ``FILTERS`` (as in the flux cube), ``BANDS`` (per band: survey, native
      pixel scale, rotation, centre offset, shape, Milky-Way ``a_lambda`` and
      ``flam_per_unit`` of the native unit), ``STARS`` (ra, dec, teff,
      ref_mag, and the observed AB ``mag`` vector, one per band).

    IFS cube ``ifs.fits`` (MaNGA LOGCUBE-like): ``FLUX`` (n_wave, ny, nx) in
    1e-17 erg/s/cm^2/AA per spaxel with Milky-Way extinction and noise,
    ``IVAR``, ``MASK`` (int32; 0 good, 1 + 1024 outside the hexagonal
    bundle, where FLUX = IVAR = 0), ``WAVE`` (AA, log-spaced with
    ``R`` points per unit ln lambda); celestial + WAVE-LOG WCS; primary keys
    ``EBVGAL``, ``GFWHM``/``RFWHM``/``IFWHM``/``ZFWHM`` (PSF, arcsec).
    """
    cfg = merge_mock_config(mock_config)
    mc = _mock_models(cfg, models_config if models_config is not None
                      else _default_models_config())
    from .models import model_from_config

    out_dir = Path(out_dir)
    out_raw = out_dir / "raw"
    confhash = config_hash({"mock": cfg, "models": mc})
    model = model_from_config(mc)
    galaxy = MockGalaxy(cfg, model, mc)

    bands = cfg["bands"]
    setup = _BandSetup(cfg, galaxy)
    filters, pivots, phot, trans = setup.filters, setup.pivots, setup.phot, setup.trans
    stars = setup.stars
    cr = cfg["cosmic_rays"]

    manifest = {"raw": {}, "unc": {}, "bands": None, "truth": None, "ifs": None}
    specs, band_rows = [], []
    for ib, band in enumerate(progress_bar(bands, desc="mock bands", unit="band",
                                           disable=not progress)):
        name = filters[ib]
        wcs, shape = band_wcs(cfg, band)
        signal = setup.noiseless(ib, wcs, shape)
        var = native_variance(band, signal)
        rng = np.random.default_rng([int(cfg["seed"]), ib])
        image = signal + rng.standard_normal(shape) * np.sqrt(var)
        if band["survey"] in SKY_IN_IMAGE:
            image += band["sky"]
        with_cr = bool(cr["enabled"]) and band["survey"] in cr["surveys"]
        if with_cr:
            image += _cosmic_rays(rng, shape, np.sqrt(var), int(cr["count"]))
        files = _raw_files(band, image, var, wcs, out_raw, confhash)
        manifest["raw"][name] = files["file"]
        spec = _band_spec(band, name, out_raw, with_cr)
        if "unc_file" in files:
            manifest["unc"][name] = files["unc_file"]
        specs.append(spec)
        off = band.get("offset_arcsec", [0.0, 0.0])
        band_rows.append((name, band["survey"], band["pixscale"], band.get("rotation_deg", 0.0),
                          off[0], off[1], -2.5 * np.log10(trans[ib]), setup.units[ib],
                          shape[1], shape[0]))

    manifest["bands"] = _write_yaml(
        {"galaxy": {"ra": float(cfg["ra"]), "dec": float(cfg["dec"]), "z": float(cfg["z"]),
                    "ebv": float(cfg["ebv"])}, "bands": specs}, out_dir / "bands.yaml")

    # ---------------------------------------------------------------- truth
    pix = max(b["pixscale"] for b in bands)
    psf_t = max(b["psf_fwhm"] for b in bands)
    gwcs, gshape = target_grid(cfg["ra"], cfg["dec"], pix, cfg["stamp_arcsec"])
    k = _sub_factor(pix, cfg["fine_pixscale"])
    mass0, sfr0, quant0, params, formed0 = _truth_maps(galaxy, gwcs, gshape, pix, k)
    # the data have the target PSF, so the truth the fits are judged against has it too:
    # extensive maps convolved with it, mass-weighted ones as ratios of convolved maps
    pmaps = {f"P{i}": params[i] for i in range(params.shape[0])}
    mass, sfr, quantities, formed = _smooth_truth(mass0, sfr0, formed0, {**quant0, **pmaps},
                                                  psf_t / pix)
    params = np.stack([quantities.pop(f"P{i}") for i in range(params.shape[0])])
    # FLUX_TRUE on the grid plus a margin, convolved with the target PSF, then cropped
    m = int(np.ceil(3 * psf_t / pix))
    big = (gshape[0] + 2 * m, gshape[1] + 2 * m)
    bwcs = gwcs.deepcopy()
    bwcs.wcs.crpix = [gwcs.wcs.crpix[0] + m, gwcs.wcs.crpix[1] + m]
    sub = pix / k
    xi, eta = _fine_coords(bwcs, big, k, cfg["ra"], cfg["dec"])
    sample = galaxy.sample(xi, eta, sub * sub)
    del xi, eta
    flux_true = np.empty((len(bands),) + gshape)
    for ib in range(len(bands)):
        img = _block_sum(_psf_convolve(galaxy.flux(sample, phot[:, ib]), psf_t, sub), k)
        flux_true[ib] = img[m:m + gshape[0], m:m + gshape[1]] / DEFAULT_FSCALE
    del sample

    h = confhash
    prim = primary_hdu("MOCKTRUTH", h, {
        "RA": (float(cfg["ra"]), "[deg] galaxy centre"),
        "DEC": (float(cfg["dec"]), "[deg] galaxy centre"),
        "Z": (float(cfg["z"]), "redshift"),
        "EBV": (float(cfg["ebv"]), "[mag] Milky-Way E(B-V) applied to the images"),
        "PIXSIZE": (float(pix), "[arcsec] pixel size of the common grid"),
        "PSFFWHM": (float(psf_t), "[arcsec] target PSF of FLUX_TRUE"),
        "LOGMSTAR": (float(cfg["galaxy"]["log_mstar"]), "log10 total surviving mass, Msun"),
        "SEED": (int(cfg["seed"]), "random seed"),
        "SFH": (model.sfh, "SFH form of the SPS model"),
        "DUSTLAW": (model.dust_law, "dust law of the SPS model"),
    })
    card = {"MAPSPACE": "PIXEL"}
    hdus = [prim,
            image_hdu("LOG_MASS", _safe_log(mass).astype(np.float32), h, gwcs,
                      "dex(solMass)", card),
            image_hdu("LOG_SFR", _safe_log(sfr).astype(np.float32), h, gwcs,
                      "dex(solMass / yr)", card),
            image_hdu("LOG_MASS_FORMED", _safe_log(formed).astype(np.float32), h, gwcs,
                      "dex(solMass)", card),
            image_hdu("AGE_MW", quantities["AGE_MW"].astype(np.float32), h, gwcs, "Gyr", card),
            image_hdu("LOGZ", quantities["LOGZ"].astype(np.float32), h, gwcs, "dex", card),
            image_hdu("AV", quantities["AV"].astype(np.float32), h, gwcs, "mag", card),
            image_hdu("LOG_MASS_NOPSF", _safe_log(mass0).astype(np.float32), h, gwcs,
                      "dex(solMass)", card),
            image_hdu("LOG_SFR_NOPSF", _safe_log(sfr0).astype(np.float32), h, gwcs,
                      "dex(solMass / yr)", card),
            image_hdu("AGE_MW_NOPSF", quant0["AGE_MW"].astype(np.float32), h, gwcs, "Gyr",
                      card),
            image_hdu("PARAMS", params.astype(np.float32), h, gwcs, "",
                      {f"PARAM{i + 1}": p for i, p in enumerate(galaxy.param_names)}),
            image_hdu("FLUX_TRUE", flux_true.astype(np.float32), h, gwcs,
                      flux_bunit(DEFAULT_FSCALE),
                      {"FSCALE": (DEFAULT_FSCALE, "data * FSCALE = erg/s/cm2/AA")}),
            filters_hdu(Filters(filters, pivots, [b["psf_fwhm"] for b in bands]), h)]
    width = max(len(f) for f in filters)
    cols = list(zip(*band_rows))
    hdus.append(table_hdu("BANDS", [
        ("filter", f"{width}A", np.array(cols[0]), None),
        ("survey", "8A", np.array(cols[1]), None),
        ("pixscale", "D", np.array(cols[2], dtype=float), "arcsec"),
        ("rotation_deg", "D", np.array(cols[3], dtype=float), "deg"),
        ("offset_east", "D", np.array(cols[4], dtype=float), "arcsec"),
        ("offset_north", "D", np.array(cols[5], dtype=float), "arcsec"),
        ("a_lambda", "D", np.array(cols[6], dtype=float), "mag"),
        ("flam_per_unit", "D", np.array(cols[7], dtype=float), "erg s-1 cm-2 AA-1"),
        ("nx", "J", np.array(cols[8], dtype=np.int32), None),
        ("ny", "J", np.array(cols[9], dtype=np.int32), None),
    ], h))
    nb = len(filters)
    star_cols = [np.array([s[i] for s in stars], dtype=float) for i in range(4)]
    mags = np.array([s[4] for s in stars], dtype=float).reshape(len(stars), nb)
    hdus.append(table_hdu("STARS", [
        ("ra", "D", star_cols[0], "deg"), ("dec", "D", star_cols[1], "deg"),
        ("teff", "D", star_cols[2], "K"), ("ref_mag", "D", star_cols[3], "mag"),
        ("mag", f"{nb}D", mags, "mag"),
    ], h, {"REFFILT": cfg["star_ref_filter"]}))
    manifest["truth"] = _write_hdul(hdus, out_dir / "truth.fits")

    if cfg["ifs"]:
        rng = np.random.default_rng([int(cfg["seed"]), len(bands)])
        manifest["ifs"] = _ifs_cube(cfg, mc, confhash, out_dir / "ifs.fits", rng,
                                    progress)
    log.info("mock galaxy written to %s", out_dir)
    return manifest
