"""A mock galaxy with known truth: raw survey images (+ an IFS cube) and truth maps.

``make_mock(mock_config, out_dir)`` writes, with no downloads:

* ``{out_dir}/raw/{filter}.fits`` -- one image per band in its survey's own
  delivery format (``docs/surveys.md``): native pixel scale, units, header
  keys, sky and noise; WISE, Spitzer and generic bands also get
  ``{filter}_unc.fits``, Legacy Surveys bands ``{filter}_invvar.fits``; HST/DES
  files carry their weight HDU, Herschel maps their ``error`` extension, JWST
  ``_i2d`` files ``ERR``/``WHT``/``VAR_*``, HSC ``calexp`` files ``MASK`` and
  ``VARIANCE``;
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
populations (no interpolation), the fit's own SPS model: with
``models.dust_emission`` its DL07 dust emission (energy balance) is in every
band, which is what the infrared bands see. Each band is rendered on a grid
aligned with its own native pixels (``k x k`` sub-pixels), convolved with the
band's PSF (a Gaussian of ``psf_fwhm``; ``psf_model: moffat`` or ``airy``; or an empirical
``psf_file`` + ``psf_pixscale``, :mod:`~sedmap.mock.psf`) and summed over the
sub-pixels, which conserves flux exactly.
The truth maps are sums (mass, SFR) or surviving-mass-weighted means (ages,
metallicity, A_V, parameters) over the sub-pixels of the common grid, then
brought to the target PSF like the data (mass and SFR convolved with it,
mass-weighted means as ratios of convolved maps); ``*_NOPSF`` keep the
unsmoothed ones. ``FLUX_TRUE`` is the same model convolved with the target (worst)
Gaussian PSF, galaxy light only (no stars), before Milky-Way extinction: what
the imaging stage should recover.

Milky-Way extinction is :func:`milky_way_transmission` at each filter's pivot.

The modules
-----------
Each imports only those above it in this list:

* :mod:`~sedmap.mock.geometry` -- tangent-plane coordinates, native WCS, sub-pixel
  grids, PSF convolution;
* :mod:`~sedmap.mock.units` -- Milky-Way transmission;
* :mod:`~sedmap.mock.writing` -- atomic FITS/YAML writes;
* :mod:`~sedmap.mock.survey_base` -- :class:`MockSurvey`, the base of the survey
  writers, and the file layouts they share;
* :mod:`~sedmap.mock.surveys_optical`, :mod:`~sedmap.mock.surveys_ir` -- one
  :class:`MockSurvey` per survey (depth keys, sky, native unit, variance recipe,
  files and band-spec roles);
* :mod:`~sedmap.mock.surveys` -- their registry (``MOCK_SURVEYS``) and the band
  writer;
* :mod:`~sedmap.mock.settings` -- ``DEFAULT_MOCK``, the merge and its checks;
* :mod:`~sedmap.mock.galaxy` -- the model galaxy (:class:`MockGalaxy`);
* :mod:`~sedmap.mock.psf` -- each band's PSF (Gaussian, Moffat or a PSF image);
* :mod:`~sedmap.mock.render` -- the noiseless band images, stars, cosmic rays;
* :mod:`~sedmap.mock.truth` -- the truth maps and ``truth.fits``;
* :mod:`~sedmap.mock.ifs` -- the IFS cube;
* this package -- :func:`make_mock` and the other entry points.
"""

import logging
from pathlib import Path

import numpy as np

from ..filters import get_filter
from ..io.paths import MOCK_FILES
from ..io.provenance import config_hash
from ..io.yamlfile import write_yaml
from ..models import model_from_config
from ..progress import progress as progress_bar
from .galaxy import MockGalaxy
from .geometry import _gnomonic, band_wcs  # noqa: F401 (_gnomonic: the tests use it)
from .ifs import _ifs_cube
from .render import _BandSetup, _cosmic_rays, render_band  # noqa: F401 (render_band: public)
from .settings import DEFAULT_MOCK, _mock_models, merge_mock_config
from .survey_base import MockSurvey, band_option
from .surveys import (
    MOCK_SURVEYS,
    SURVEYS,
    _band_spec,
    flam_per_native_unit,
    native_variance,
    write_band,
)
from .truth import _write_truth
from .units import milky_way_transmission

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MOCK",
    "MOCK_SURVEYS",
    "SURVEYS",
    "MockSurvey",
    "band_wcs",
    "flam_per_native_unit",
    "make_mock",
    "merge_mock_config",
    "milky_way_transmission",
    "native_variance",
    "noiseless_images",
]


def noiseless_images(mock_config, models_config, *, stars=True, extinction=True):
    """The noiseless, sky-subtracted native images of a mock (for tests and checks).

    Returns
    -------
    dict
        ``{filter: (image, wcs)}``, images in the survey's native units per
        pixel, with Milky-Way extinction (``extinction``) and stars
        (``stars``) as asked.
    """
    cfg = merge_mock_config(mock_config)
    mc = _mock_models(cfg, models_config)
    setup = _BandSetup(cfg, MockGalaxy(cfg, model_from_config(mc), mc))
    out = {}
    for ib, band in enumerate(cfg["bands"]):
        wcs, shape = band_wcs(cfg, band)
        out[setup.filters[ib]] = (setup.noiseless(ib, wcs, shape, stars, extinction), wcs)
    return out


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


def make_mock(mock_config, out_dir, *, models_config, grid=None, progress=True):
    """Write the mock galaxy's raw images, band specs, truth (and IFS cube).

    Parameters
    ----------
    mock_config : dict or None
        The ``mock`` section; merged over ``DEFAULT_MOCK`` (lists replace).
    out_dir : str or os.PathLike
        Destination folder; file paths in ``bands.yaml`` are written as
        ``out_dir/raw/...`` (relative if ``out_dir`` is).
    models_config : dict
        The validated ``models`` section: the SPS model of the mock (SFH form, dust
        law, wavelength grid, cosmology).
    grid : dict, optional
        ``pixel_scale`` and ``target_psf_fwhm`` of the ``images`` section (None or
        absent: the imaging stage's defaults), the grid and PSF of the truth maps
        (:func:`sedmap.mock.truth.truth_grid`).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``{"raw": {filter: path}, "unc": {filter: path}, "bands": path,
        "truth": path, "ifs": path or None}``.

    Notes
    -----
    Truth file ``truth.fits`` (``PRODUCT = 'MOCKTRUTH'``; every image on the
    common grid ``target_grid(ra, dec, pixel, stamp_arcsec)`` with its WCS, BUNIT
    and provenance, at the imaging stage's target PSF; pixel and PSF from
    :func:`~sedmap.mock.truth.truth_grid`):

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
    * ``LOG_MDUST`` dex(solMass): dust mass in the pixel (energy balance, DL07:
      ``L_dust / (P0 <U>)``), at the target PSF (``LOG_MDUST_NOPSF``: without it);
      ``LOG_UMIN``, ``LOG_GAMMA``, ``LOG_QPAH`` dex: the DL07 parameters weighted by
      dust mass, at the target PSF -- only when the model emits dust and a band lies
      redward of 5 um rest (:data:`~sedmap.mock.truth.DUST_TRUTH_MIN_REST_AA`);
    * ``PARAMS`` (n_param, ny, nx): surviving-mass-weighted SPS parameters (at
      the target PSF),
      names in ``PARAM1..PARAMn``;
    * ``FLUX_TRUE`` (n_band, ny, nx), 1e-17 erg/s/cm^2/AA per pixel: galaxy
      light only, at the target PSF (Gaussian; by default the widest band PSF
      on the common grid, its native pixels' box included), without
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
    mc = _mock_models(cfg, models_config)
    out_dir = Path(out_dir)
    out_raw = out_dir / "raw"
    grid = {k: v for k, v in (grid or {}).items() if v is not None}
    confhash = config_hash({"mock": cfg, "models": mc, **({"grid": grid} if grid else {})})
    model = model_from_config(mc)
    galaxy = MockGalaxy(cfg, model, mc)

    bands = cfg["bands"]
    setup = _BandSetup(cfg, galaxy)
    filters, trans = setup.filters, setup.trans
    cr = cfg["cosmic_rays"]

    manifest = {"raw": {}, "unc": {}, "bands": None, "truth": None, "ifs": None}
    specs, band_rows = [], []
    for ib, band in enumerate(progress_bar(bands, desc="mock bands", unit="band",
                                           disable=not progress)):
        name = filters[ib]
        wcs, shape = band_wcs(cfg, band)
        signal = setup.noiseless(ib, wcs, shape)
        survey = MOCK_SURVEYS[band["survey"]]
        var = survey.variance(band, signal)
        rng = np.random.default_rng([int(cfg["seed"]), ib])
        image = signal + rng.standard_normal(shape) * np.sqrt(var)
        if survey.sky_in_image:
            image += band["sky"]
        with_cr = bool(cr["enabled"]) and band["survey"] in cr["surveys"]
        if with_cr:
            image += _cosmic_rays(rng, shape, np.sqrt(var), int(cr["count"]))
        files = write_band(band, image, var, wcs, out_raw, confhash)
        manifest["raw"][name] = files["file"]
        spec = _band_spec(band, name, out_raw, with_cr)
        if "unc_file" in files:
            manifest["unc"][name] = files["unc_file"]
        specs.append(spec)
        off = band_option(band, "offset_arcsec")
        band_rows.append((name, band["survey"], band["pixscale"], band_option(band, "rotation_deg"),
                          off[0], off[1], -2.5 * np.log10(trans[ib]), setup.units[ib],
                          shape[1], shape[0]))

    manifest["bands"] = write_yaml(
        {"galaxy": {"ra": float(cfg["ra"]), "dec": float(cfg["dec"]), "z": float(cfg["z"]),
                    "ebv": float(cfg["ebv"])}, "bands": specs}, out_dir / MOCK_FILES["bands"])
    manifest["truth"] = _write_truth(cfg, galaxy, setup, band_rows, confhash,
                                     out_dir / MOCK_FILES["truth"], grid)

    if cfg["ifs"]:
        rng = np.random.default_rng([int(cfg["seed"]), len(bands)])
        manifest["ifs"] = _ifs_cube(cfg, mc, confhash, out_dir / MOCK_FILES["cube"], rng,
                                    progress)
    log.info("mock galaxy written to %s", out_dir)
    return manifest
