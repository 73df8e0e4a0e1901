"""The mock's settings: ``DEFAULT_MOCK``, their merge with the ``mock`` section and
its checks, and the models config the mock galaxy is made with."""

import copy
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..filters import get_filter
from ..images.psf import PSF_MODELS
from ..io.yamlfile import deep_merge
from ..sps import PARAM_INFO
from ..sps.sfh import FORMS
from .survey_base import band_option
from .surveys import MOCK_SURVEYS, PSF_SPEC_KEYS, SURVEYS

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
    # one dict per band; depth keys by survey (native units, per native pixel; each
    # survey's MockSurvey in sedmap.mock.surveys_* names them, docs/surveys.md lists them):
    #   galex: exptime (s), sky (counts/s)
    #   sdss: nmgy (nmgy/count), sky (counts), gain (e-/count), darkvar (counts^2)
    #   2mass: magzp (Vega), sky (DN), skysig (DN); optional gain, nframes
    #   wise: magzp (Vega), sky (DN), skysig (DN), gain (source Poisson, DN^-1)
    #   hst: photflam, exptime, skysig (e-/s); des: magzero (AB), gain, skysig (e-)
    #   spitzer (MJy/sr), herschel (Jy/pixel PACS, Jy/beam SPIRE), jwst (MJy/sr):
    #     sky, skysig; optional poisson (variance per unit of signal)
    #   hsc (counts at AB 27), legacy (nanomaggies): skysig, gain (e- per unit)
    #   generic: bunit, skysig, poisson (variance per unit of signal)
    # and a PSF: psf_fwhm (Gaussian), psf_model: moffat (+ moffat_beta), psf_model:
    # airy (+ psf_obscuration: a diffraction-limited telescope's Airy pattern), or
    # psf_file + psf_pixscale (an image, e.g. the IRAC in-flight PSFs)
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


def merge_mock_config(mock_config=None):
    """``DEFAULT_MOCK`` deep-merged with ``mock_config`` (lists replace), checked.

    Raises
    ------
    InputError
        A value is missing or out of range; the message names ``mock.<key>``.
    """
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


#: keys of every mock band (each survey adds its own: ``MockSurvey.band_keys``)
_COMMON_BAND_KEYS = ("filter", "survey", "pixscale", "psf_fwhm", "rotation_deg",
                     "offset_arcsec") + PSF_SPEC_KEYS
_BAND_KEYS = set(_COMMON_BAND_KEYS).union(*(s.band_keys for s in MOCK_SURVEYS.values()))


def _unknown(given, allowed, where):
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise _bad(where + str(extra[0]), f"unknown key(s) {extra}",
                   f"use only {sorted(allowed)}")


def _check_config(cfg):
    _unknown(cfg, DEFAULT_MOCK, "")
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
        if "filter" not in b:
            raise _bad(f"{where}filter", "the band has no filter", "give its sedmap filter name")
        name = get_filter(b["filter"]).name
        if name in seen:
            raise _bad(f"{where}filter", f"filter {name} appears twice")
        seen.add(name)
        if b.get("survey") not in SURVEYS:
            raise _bad(f"{where}survey", f"survey {b.get('survey')!r} is not one the mock "
                       "writes", f"use one of {', '.join(SURVEYS)}")
        for key in ("pixscale", "psf_fwhm"):
            _positive(b, key, where)
        _offset(band_option(b, "offset_arcsec"), f"{where}offset_arcsec")
        survey = MOCK_SURVEYS[b["survey"]]
        _unknown(b, _COMMON_BAND_KEYS + survey.band_keys, where)
        for key in survey.depth_keys:
            if key not in b:
                raise _bad(f"{where}{key}", f"survey {b['survey']} needs '{key}'")
        survey.check_filter(name, where)
        _check_psf(b, where)
    if cfg["ifs"]:
        ic = cfg["ifs_cube"]
        for key in ("spaxel_arcsec", "psf_fwhm", "diameter_arcsec", "wave_min", "wave_max",
                    "R", "sky_sigma"):
            _positive(ic, key, "ifs_cube.")
        if ic["wave_max"] <= ic["wave_min"]:
            raise _bad("ifs_cube.wave_max", "wave_max must exceed wave_min")


def _check_psf(b, where):
    """A band's PSF: ``psf_model`` gaussian, moffat (``moffat_beta`` > 1) or airy
    (``psf_obscuration`` in [0, 1)), or a ``psf_file`` that exists with its
    ``psf_pixscale``."""
    if band_option(b, "psf_model") not in PSF_MODELS:
        raise _bad(f"{where}psf_model", f"psf_model {b['psf_model']!r}",
                   "use gaussian, moffat or airy (or a psf_file)")
    beta = band_option(b, "moffat_beta")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 1:
        raise _bad(f"{where}moffat_beta", f"moffat_beta = {beta!r} must be > 1")
    eps = band_option(b, "psf_obscuration")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < 1:
        raise _bad(f"{where}psf_obscuration",
                   f"psf_obscuration = {eps!r} must be in [0, 1) (the central obscuration's "
                   "linear fraction of the aperture)",
                   "give 0 for none, ~0.11 for JWST, ~0.33 for HST")
    if "psf_file" in b:
        if "psf_model" in b:
            raise _bad(f"{where}psf_model", "both psf_file and psf_model are given",
                       "give one: the PSF image or the analytic model")
        _positive(b, "psf_pixscale", where)
        if not Path(b["psf_file"]).is_file():
            raise _bad(f"{where}psf_file", f"no PSF file {b['psf_file']}",
                       "give an existing FITS PSF image (relative paths: to the working "
                       "directory, the repository root under Snakemake)")
    elif "psf_pixscale" in b:
        raise _bad(f"{where}psf_pixscale", "psf_pixscale without psf_file",
                   "give psf_file too, or remove psf_pixscale")


#: ``models`` keys that only the model grid uses (its draws and chunking): the mock
#: galaxy does not depend on them
GRID_ONLY_KEYS = ("seed", "n_models", "chunk_size", "draw")


def mock_models_section(models, mock_settings):
    """The part of a validated ``models`` section that the mock galaxy depends on, which
    its rule passes (so that a grid-only change re-makes no mock): all but
    :data:`GRID_ONLY_KEYS`, and without ``sfh`` and ``params`` where the mock's
    settings (``mock.settings``) give their own ``sfh``."""
    drop = set(GRID_ONLY_KEYS)
    if merge_mock_config(mock_settings)["sfh"]:
        drop |= {"sfh", "params"}
    return {k: v for k, v in models.items() if k not in drop}


def _mock_models(cfg, mc):
    """The models config the mock galaxy is made with: ``mc``, or with ``sfh`` set,
    that form with the library's full parameter ranges (the fit's ranges and draw
    settings do not constrain the truth)."""
    mc = copy.deepcopy(mc)
    if cfg.get("sfh"):
        mc.update(sfh=cfg["sfh"], params={})
        mc.pop("draw", None)
    return mc
