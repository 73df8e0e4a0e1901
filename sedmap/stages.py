"""File-in, file-out entry points of every stage, shared by the CLI and the
Snakemake scripts (which only unpack ``snakemake.params`` and call these)."""

import logging
import os
import sys
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits

from .accuracy import QUANTITIES, TRUTH_MAPS, bin_truth, compare, redshift_truth, write_report
from .binning import make_bin_map
from .constants import FLAG_LOW_SNR, FWHM_TO_SIGMA
from .errors import InputError, SedmapError
from .fit.driver import POPULATION_FILE
from .fit.driver import run_rdsps as fit_rdsps_bins
from .fit.methods import fit_bins, get_method
from .ifs import build_spec_photo
from .ifs.bands import write_cube_bands
from .io import (
    read_bin_map,
    read_fit_result,
    read_flux_cube,
    read_model_grid,
    read_spec_photo,
    write_bin_map,
    write_map_set,
    write_sfh_groups,
)
from .io.atomic import copy_file
from .io.paths import BIN_FILE, bin_file
from .io.profiles import write_profiles
from .maps import make_map_set
from .mock import make_mock
from .plots import (
    LABELS,
    plot_bin_sfh,
    plot_binmap,
    plot_corner,
    plot_maps,
    plot_placeholder,
    plot_profiles,
    plot_residuals,
    plot_sed,
    plot_truth_comparison,
)
from .profiles import (
    empty_profiles,
    galaxy_geometry,
    radial_profiles,
    reference_band,
    showcase_bins,
)
from .sfhgroups import make_sfh_groups, plot_sfh_groups
from .sps.cosmology import get_cosmology

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ mock
def run_mock(settings, galaxy, out_dir, *, models_config, grid=None, progress=False):
    """The mock galaxy at the configured position -> raw images, truth, bands.yaml;
    ``grid``: the ``images`` section's ``pixel_scale`` and ``target_psf_fwhm`` (the
    truth maps' grid and PSF)."""
    cfg = dict(settings or {})
    for key in ("ra", "dec", "z", "ebv"):
        cfg.setdefault(key, galaxy[key])
    mismatch = [k for k in ("ra", "dec", "z", "ebv") if abs(cfg[k] - galaxy[k]) > 1e-12]
    if mismatch:
        raise InputError(f"mock.settings {mismatch} differ from the galaxy section",
                         path="mock.settings", fix="set them in galaxy: only")
    return make_mock(cfg, out_dir, models_config=models_config, grid=grid, progress=progress)


# -------------------------------------------------------------------- ifs
def run_ifs(cube_path, fluxmap_path, out_path, cfg, *, confhash=None):
    """IFS cube + flux map -> ``specphoto.fits`` (``ifs`` config section)."""
    return build_spec_photo(cube_path, fluxmap_path, out_path, survey=cfg["survey"],
                            reader=cfg["reader"] if cfg["survey"] == "wcs" else None,
                            order=cfg["order"], psf_fwhm=cfg["psf_fwhm"],
                            max_lost=cfg["max_lost"], config_hash=confhash,
                            progress=True)


def run_cube_bands(cube_path, filters, out_dir, cfg, *, confhash=None):
    """IFS cube -> one synthetic band image per filter in ``out_dir`` (``ifs`` config
    section; :func:`sedmap.ifs.bands.write_cube_bands`)."""
    return write_cube_bands(cube_path, cfg["survey"], filters, out_dir,
                            reader=cfg["reader"] if cfg["survey"] == "wcs" else None,
                            psf_fwhm=cfg["psf_fwhm"], max_lost=cfg["max_lost"],
                            confhash=confhash)


# ---------------------------------------------------------------- binning
def run_binning(fluxmap_path, out_path, cfg, *, confhash=None, specphoto_path=None):
    """Flux cube -> bin map (the validated ``binning`` section;
    :func:`sedmap.binning.make_bin_map`); with ``specphoto_path`` (the IFS stage's
    product, same grid) the bin map also holds each bin's summed spectrum, and
    Voronoi binning may run on the S/N of a line-free window of the spectra
    (``binning.voronoi_window``)."""
    cube = read_flux_cube(fluxmap_path)
    sp = None
    if specphoto_path is not None:
        sp = read_spec_photo(specphoto_path)
        if sp.photometry.shape != cube.shape or \
                sp.photometry.filters.name != list(cube.filters.name):
            raise InputError(f"the spectra's grid {sp.photometry.shape} / bands do not match "
                             f"the flux map's {cube.shape}", path=str(specphoto_path),
                             fix="rebuild specphoto.fits from this flux map (rule specphoto)")
    bm = make_bin_map(cube, spectra=sp, method=cfg["method"], sn_threshold=cfg["sn_threshold"],
                      ref_band=cfg["ref_band"], d_min=cfg["d_min"], max_area=cfg["max_area"],
                      redc_chi2_limit=cfg["redc_chi2_limit"], del_r=cfg["del_r"],
                      max_radius=cfg["max_radius"], voronoi_band=cfg["voronoi_band"],
                      voronoi_window=cfg["voronoi_window"],
                      voronoi_covariance_alpha=cfg["voronoi_covariance_alpha"],
                      config_hash=confhash)
    return write_bin_map(bm, out_path)


def run_binmap_plot(binmap_path, plot_path):
    """The bin map of ``binmap.fits`` as a PNG (the binmap_plot rule, ``sedmap binning``)."""
    plot_binmap(read_bin_map(binmap_path).binmap, plot_path)
    return plot_path


# -------------------------------------------------------------------- fit
def run_rdsps(binmap_path, grid_path, z, out_dir, cfg, *, confhash=None, grid_hash=None):
    """All bins against the model grid -> ``out_dir/bin_{k}.h5`` (``cfg``: the
    validated ``fit`` section).

    ``grid_hash``: the :func:`sedmap.io.grid_hash` the grid must carry (the
    workflow's, of the galaxy's ``models`` section); a grid made otherwise, or
    with corrupted bytes, is refused (:func:`sedmap.io.read_model_grid`).
    """
    bm = read_bin_map(binmap_path)
    # photometry read chunk by chunk, checksums verified
    grid = read_model_grid(grid_path, spectra=False, expected_hash=grid_hash)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return fit_rdsps_bins(bm, grid, z, out_dir, sys_err=cfg["sys_err"],
                          chi2_percentile=cfg["chi2_percentile"], likelihood=cfg["likelihood"],
                          nu=cfg["nu"], priors=cfg["priors"] or None, confhash=confhash,
                          progress=True, population=cfg["population_prior"])


def job_files(paths):
    """The fit files ``bin_K.h5`` of ``paths``: files, or job folders (``fits/job_J``)
    whose files are listed in bin order."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("bin_*.h5"), key=lambda f: int(f.stem.split("_")[1])))
        else:
            files.append(p)
    return files


def bin_result_paths(binmap_path, rdsps_dir, job_paths):
    """The fit file of every bin, ordered 1..N: its refit (``fit.method``'s) file where
    one ran (``job_paths``: files ``bin_K.h5``, or the job folders ``fits/job_J``
    that hold them), else its RDSPS file (``rdsps/bin_K.h5``)."""
    n_bin = int(fits.getheader(binmap_path, 0)["NBIN"])
    refit = {p.name: p for p in job_files(job_paths)}
    return [refit.get(BIN_FILE.format(k), bin_file(rdsps_dir, k))
            for k in range(1, n_bin + 1)]


def run_fit_job(bin_ids, binmap_path, grid_path, rdsps_dir, z, out_paths, cfg, *,
                confhash=None, grid_hash=None):
    """The fit files of a job's bins (``out_paths``) with ``fit.method``
    (:data:`sedmap.fit.methods.METHODS`); a bin the method does not refit gets a
    copy of its RDSPS result. ``cfg``: the validated ``fit`` section;
    ``grid_hash``: as in :func:`run_rdsps`."""
    bm = read_bin_map(binmap_path)
    chosen = set(fit_bins(bm.flag, cfg))
    rd = [bin_file(rdsps_dir, k) for k in bin_ids]
    for k, src, out in zip(bin_ids, rd, out_paths):
        if int(k) not in chosen:
            copy_file(src, out)
    run = [i for i, k in enumerate(bin_ids) if int(k) in chosen]
    if not run:
        return [Path(p) for p in out_paths]
    # the refits need the grid's config and ranges only
    grid = read_model_grid(grid_path, spectra=False, expected_hash=grid_hash)
    population = (Path(rdsps_dir) / POPULATION_FILE if cfg["population_prior"]["enabled"]
                  else None)
    get_method(cfg["method"]).fit([int(bin_ids[i]) for i in run], bm, grid, [rd[i] for i in run],
                               z, [out_paths[i] for i in run], cfg, confhash=confhash,
                               population_prior=population, progress=True)
    return [Path(p) for p in out_paths]


# ------------------------------------------------------------------- maps
def run_maps(fluxmap_path, binmap_path, fit_paths, out_path, cfg, *, confhash=None,
             plot_dir=None, profiles_path=None, cosmology=None):
    """Fit results -> ``maps.fits``; with ``profiles_path`` also the radial profiles
    (``profiles.fits``, :mod:`sedmap.profiles`); with ``plot_dir`` the plots
    (:func:`map_plots`). ``cosmology``: the ``models.cosmology`` section (kpc
    scales)."""
    cube = read_flux_cube(fluxmap_path)
    bm = read_bin_map(binmap_path)
    results = sorted((read_fit_result(p) for p in fit_paths), key=lambda r: r.bin_id)
    if [r.bin_id for r in results] != list(range(1, bm.n_bin + 1)):
        raise InputError(f"fit results for bins {[r.bin_id for r in results][:5]}... do not "
                         f"cover bins 1..{bm.n_bin}", path=str(binmap_path),
                         fix="run the fit stage for every bin")
    ms = make_map_set(cube.galaxy, cube.wcs, bm.binmap, results, cube.flux, cube.flux_err,
                      list(cube.filters.name), cfg["split"], confhash,
                      constraint_min=cfg["constraint_min"], bin_flags=bm.flag)
    path = write_map_set(ms, out_path)
    for name, s in (ms.summary or {}).items():
        log.info("%-9s constrained (1 - posterior/prior 68%% width >= %.2f) in %3.0f%% of the "
                 "fitted bins, %3.0f%% of the fitted pixels (median %.2f)", name,
                 cfg["constraint_min"], 100 * s["bin_fraction"], 100 * s["fraction"],
                 s["median"])
    geo, table, pixel_kpc = None, None, galaxy_pixel_kpc(cube, cosmology)
    if profiles_path is not None or (plot_dir is not None and cfg["plots"]):
        geo, table = _profiles(ms, cube, bm, pixel_kpc)
    if profiles_path is not None:
        write_profiles(table, profiles_path, cube.galaxy, confhash)
    if plot_dir is not None and cfg["plots"]:
        map_plots(ms, bm, cube, results, Path(plot_dir), geo, table, pixel_kpc)
    return path


def galaxy_pixel_kpc(cube, cosmology=None):
    """Side of a flux-map pixel in proper kpc at the galaxy's redshift; NaN at z <= 0
    (no distance: the kpc scales, surface densities and the scale bar are left
    out, with a warning)."""
    if not cube.z > 0:
        log.warning("galaxy.z = %g gives no distance: the maps' kpc scales and surface "
                    "densities are left out (set galaxy.z > 0)", cube.z)
        return float("nan")
    cosmo = get_cosmology(**(cosmology or {}))
    return float(cube.pixsize * cosmo.kpc_proper_per_arcmin(cube.z).value / 60.0)


def profile_geometry(cube, bm):
    """:func:`sedmap.profiles.galaxy_geometry` of a flux cube's reference band over the
    binned region, centred on the galaxy's position (``band``: the band's index)."""

    centre = cube.wcs.celestial.world_to_pixel(SkyCoord(cube.ra, cube.dec, unit="deg"))
    band = reference_band(cube.filters.pivot_aa)
    geo = galaxy_geometry(cube.flux[band], cube.region & (bm.binmap > 0), centre)
    geo["band"] = band
    return geo


def _profiles(ms, cube, bm, pixel_kpc):
    """(geometry, profile table) of a map set (:mod:`sedmap.profiles`); where none can
    be made (no pixel masses: every bin flagged; no light in the reference band),
    (None, an empty table whose ``meta["NOTE"]`` says why), with a warning."""
    maps = {k: np.asarray(m.data, float) for k, m in ms.maps.items()}
    try:
        geo = profile_geometry(cube, bm)
        return geo, radial_profiles(maps, cube.region & (bm.binmap > 0), geo, pixel_kpc)
    except InputError as err:
        log.warning("no radial profiles: %s", err.problem)
        return None, empty_profiles(pixel_kpc, note=err.problem)


#: the maps drawn in maps.png: extension, label key (:data:`sedmap.plots.LABELS`),
#: colour map
MAP_PANELS = (("LOG_SIGMA_MSTAR", "log_sigma_mstar", "viridis"),
              ("LOG_SIGMA_SFR", "log_sigma_sfr", "magma"),
              ("LOG_SSFR_P50", "log_ssfr", "magma"),
              ("AGE_MW_P50", "age_mw", "cividis"),
              ("LOGZSOL_P50", "logzsol", "plasma"),
              ("AV_P50", "av", "inferno"))


def map_plots(ms, bm, cube, results, plot_dir, geo, profiles, pixel_kpc):
    """The maps stage's figures: ``maps.png`` (sky axes, labelled colour bars,
    prior-dominated pixels hatched, a kpc scale bar, the showcase bins marked),
    ``profiles.png``, ``residuals.png``, and for the showcase bins (S/N-complete,
    fitted, with MCMC where at least three such bins were: the centre, R_e and the
    outskirts, :func:`sedmap.profiles.showcase_bins`) ``sed_fit.png``, ``sfh.png``
    (with the SFH the fit results record) and ``corner.png`` (the R_e bin).

    Returns
    -------
    dict: ``files`` (the figures written), ``labels`` (the maps' colour-bar
    labels), ``titles`` (the showcase plots' titles), ``showcase`` ((bin id,
    R/R_e, label) each).
    """
    data = {k: np.asarray(m.data, float) for k, m in ms.maps.items()}
    if np.isfinite(pixel_kpc) and pixel_kpc > 0:
        area = np.log10(pixel_kpc**2)
        for name, pix in (("LOG_SIGMA_MSTAR", "LOG_MSTAR_PIX_P50"),
                          ("LOG_SIGMA_SFR", "LOG_SFR_PIX_P50")):
            if pix in data:
                data[name] = data[pix] - area
    panels = []
    for key, quantity, cmap in MAP_PANELS:
        label = LABELS[quantity]
        if key not in data:
            continue
        stem = {"LOG_SIGMA_MSTAR": "LOG_MSTAR", "LOG_SIGMA_SFR": "LOG_SFR"}.get(
            key, key.removesuffix("_P50"))
        c = data.get(f"{stem}_CONSTRAINT")
        img = data[key]
        low = None
        if key.endswith("_P50") and "BIN_FLAG" in data:  # a bin's value, not a pixel's
            low = np.isfinite(img) & (data["BIN_FLAG"] != 0)
            img = np.where(low, np.nan, img)
        prior = None if c is None or ms.constraint_min is None else \
            np.isfinite(img) & ~(c >= ms.constraint_min)
        panels.append({"data": img, "label": label, "cmap": cmap, "prior": prior,
                       "low": low})
    if geo is not None:
        radius_re, unit = geo["radius"] / geo["r_e_pix"], "R$_e$"
    else:  # no geometry: pixels from the image's centre
        yy, xx = np.indices(bm.binmap.shape, dtype=float)
        radius_re, unit = np.hypot(yy - yy.mean(), xx - xx.mean()), "pixels"
    fitted = [r.bin_id for r in results if not r.flag]
    usable = [b for b in fitted if bm.flag[b - 1] == 0]
    by_id = {r.bin_id: r for r in results}
    # fit.method's own posterior samples (MCMC, MAP), where it ran
    sampled = [b for b in usable if get_method(by_id[b].method).samples_own_posterior]
    # S/N-complete bins (refitted ones where at least three), else any fitted bin
    show = showcase_bins(bm.binmap, radius_re,
                         sampled if len(sampled) >= 3 else usable or fitted)
    markers = []
    for b, _, label in show:  # on the bin's pixel nearest its centroid (a ring's too)
        yy, xx = np.nonzero(bm.binmap == b)
        i = int(np.argmin((xx - xx.mean()) ** 2 + (yy - yy.mean()) ** 2))
        markers.append((xx[i], yy[i], label))
    drawn = {"files": [plot_maps(panels, cube.wcs.celestial, plot_dir / "maps.png",
                                 pixel_kpc, markers)],
             "labels": [p["label"] for p in panels], "titles": [], "showcase": show}
    if profiles is not None and len(profiles):
        drawn["files"].append(plot_profiles(profiles, plot_dir / "profiles.png",
                                            title=cube.galaxy))
    else:
        note = profiles.meta.get("NOTE", "") if profiles is not None else ""
        drawn["files"].append(plot_placeholder(plot_dir / "profiles.png",
                                               f"no radial profiles: {note}"))
    pivots = np.asarray(bm.filters.pivot_aa)
    chi = [(bm.flux[r.bin_id - 1] - r.bestfit_photometry) / np.sqrt(bm.flux_var[r.bin_id - 1])
           for r in results if not r.flag and r.bestfit_photometry is not None]
    if chi:
        drawn["files"].append(plot_residuals(list(bm.filters.name), pivots, np.array(chi),
                                             plot_dir / "residuals.png"))
    else:
        drawn["files"].append(plot_placeholder(plot_dir / "residuals.png",
                                               "no fitted bin: no residuals"))
    if not show:
        for name in ("sed_fit.png", "corner.png", "sfh.png"):
            drawn["files"].append(plot_placeholder(plot_dir / name, "no fitted bin to show"))
        return drawn
    titles = [f"bin {b}, {label}: R = {rr:.2f} {unit} ({by_id[b].method})"
              for b, rr, label in show]
    drawn["titles"] = titles
    log.info("showcase bins: %s", ", ".join(f"{b} ({label}, R = {rr:.2f} R_e)"
                                            for b, rr, label in show))
    drawn["files"].append(plot_sed([(by_id[b], bm.flux[b - 1], np.sqrt(bm.flux_var[b - 1]), t)
              for (b, _, _), t in zip(show, titles)], pivots, plot_dir / "sed_fit.png",
             fscale=bm.fscale))
    mid = next((b for b, _, label in show if label == "R_e"), show[0][0])
    drawn["files"].append(plot_corner(by_id[mid], plot_dir / "corner.png",
                names=[n for n in ("log_mstar", "log_sfr", "age_mw", "logzsol", "av")
                       if n in by_id[mid].param_names],
                title=next(t for (b, _, _), t in zip(show, titles) if b == mid)))
    if all(by_id[b].sfh is not None for b, _, _ in show):
        drawn["files"].append(plot_bin_sfh(
            [by_id[b] for b, _, _ in show], plot_dir / "sfh.png",
            labels=[f"bin {b}, {label} ({rr:.2f} {unit})" for b, rr, label in show],
            title=f"{cube.galaxy}: showcase bins"))
    else:  # results of sedmap < 0.4 do not record the SFH their models had
        drawn["files"].append(plot_placeholder(
            plot_dir / "sfh.png", "the fit results do not record their SFH: rerun the fits"))
    return drawn


# --------------------------------------------------------------- accuracy
def run_accuracy(truth_path, binmap_path, rdsps_paths, fit_paths, out_json, *, plot_path=None):
    """Recovered vs true per bin, for RDSPS (all bins) and for the method that refitted
    bins (``fit.method``: the entries under its name, on the bins it fitted)."""
    bm = read_bin_map(binmap_path)
    with fits.open(truth_path) as h:
        maps = {k: np.asarray(h[k].data, float) for k in TRUTH_MAPS if k in h}
        z = float(h[0].header["Z"])
    truth = {**bin_truth(bm.binmap, maps), **redshift_truth(bm.n_bin, z)}
    flag = np.asarray(bm.flag)
    ok = set((np.flatnonzero(flag == 0) + 1).tolist())  # S/N-complete bins
    low = set((np.flatnonzero(flag == FLAG_LOW_SNR) + 1).tolist())  # LOW_SNR (leftover) only
    rd_all = {r.bin_id: r for r in map(read_fit_result, rdsps_paths)}
    fitted = [(read_fit_result(p), p) for p in fit_paths]
    refit = [r for r, p in fitted if get_method(r.method, p).refits]
    methods = sorted({r.method for r in refit})
    if len(methods) > 1:
        raise InputError(f"the fit files hold results of several methods ({methods})",
                         path=str(Path(fit_paths[0]).parent),
                         fix="rerun the fit stage (one fit.method per run)")
    name = methods[0] if methods else None
    mc_all = {r.bin_id: r for r in refit}
    rd = {k: r for k, r in rd_all.items() if k in ok}
    mc = {k: r for k, r in mc_all.items() if k in ok}
    report = {"n_bins": bm.n_bin, "n_bins_flagged": bm.n_bin - len(ok),
              "n_bins_low_snr": len(low), "rdsps": compare(truth, rd)}
    # the leftover bins (binned to the S/N they can reach, flagged LOW_SNR), apart
    for key, res in (("rdsps", rd_all), (name, mc_all)):
        left = {k: r for k, r in res.items() if k in low}
        if left:
            report[f"{key}_low_snr"] = compare(truth, left)
    for key, res in (("rdsps", rd), (name, mc)):  # how many samples the percentiles rest on
        ess = [r.effective_sample_size for r in res.values() if not r.flag]
        ess = np.asarray([e for e in ess if np.isfinite(e)])
        if ess.size:
            report[f"{key}_ess"] = {"p10": float(np.percentile(ess, 10)),
                                    "median": float(np.median(ess))}
    if mc:
        report[name] = compare(truth, mc)
        report[f"{name}_bins"] = sorted(mc)
        chains = [r for r in mc.values() if not r.flag and r.converged >= 0]
        if get_method(name).chains and chains:  # the chains' length in autocorrelation times
            ntau = np.array([r.n_tau for r in chains])
            report[f"{name}_chains"] = {
                "converged_fraction": float(np.mean([r.converged for r in chains])),
                "n_tau_min": float(ntau.min()), "n_tau_median": float(np.median(ntau)),
                "steps_median": float(np.median([r.n_steps for r in chains]))}
        report[f"{name}_note"] = (f"{get_method(name).label} ran on {len(mc)} of {bm.n_bin} bins "
                                  "(a seeded random subset); its figures cover those bins only")
        if len(mc) < len(rd):  # both methods on the same bins
            report[f"rdsps_on_{name}_bins"] = compare(truth, {k: rd[k] for k in mc if k in rd})
    write_report(out_json, report)
    if plot_path:
        def pairs_of(res):
            out = {}
            for qty, (tkey, fkey) in QUANTITIES.items():
                ids = [k for k in sorted(res) if not res[k].flag
                       and fkey in res[k].percentiles and tkey in truth]
                if ids:
                    out[qty] = (np.array([truth[tkey][k - 1] for k in ids]),
                                np.array([res[k].percentiles[fkey] for k in ids]))
            return out

        plot_truth_comparison(pairs_of(rd), plot_path, overlay=pairs_of(mc) if mc else None,
                              labels=("RDSPS", get_method(name).label if name else ""))
    return report


def run_script(snakemake, body):
    """Run ``body(params, input, output, wildcards)`` for a Snakemake script, with the
    job's logging sent to its ``log:`` file and any failure logged there too.

    A user error (:class:`sedmap.errors.SedmapError`: the file, the problem and the
    fix) reaches the terminal as that one line and exits 1; the job log holds the
    same line (Snakemake shows failed logs), and its traceback too with
    ``SEDMAP_DEBUG=1``. Anything else (a bug) is raised with its traceback."""

    log = snakemake_logging(snakemake)
    try:
        return body(snakemake.params, snakemake.input, snakemake.output, snakemake.wildcards)
    except SedmapError as exc:
        log.error("rule %s failed: %s", snakemake.rule, exc,
                  exc_info=bool(os.environ.get("SEDMAP_DEBUG")))
        print(f"sedmap: error in rule {snakemake.rule}: {exc} (details: {snakemake.log[0]})",
              file=sys.stderr)
        raise SystemExit(1) from None
    except Exception:
        log.exception("rule %s failed", snakemake.rule)
        raise


def snakemake_logging(snakemake):
    """Send this job's logging (and warnings) to its ``log:`` file; put the checkout first
    on sys.path. Called at the top of every script in scripts/."""
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))
    logging.basicConfig(filename=snakemake.log[0], filemode="w", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.captureWarnings(True)
    return logging.getLogger(f"sedmap.scripts.{snakemake.rule}")


# -------------------------------------------------------------- SFH groups
def run_sfh_groups(fluxmap_path, binmap_path, fit_paths, out_path, cfg, *, confhash=None,
                   plot_path=None):
    """Per-bin fits -> SFH groups (``sfh_groups`` config section, validated); the SFH
    is the one the fit results record."""
    bm = read_bin_map(binmap_path)
    cube = read_flux_cube(fluxmap_path)
    results = sorted((read_fit_result(p) for p in fit_paths), key=lambda r: r.bin_id)
    names = list(cube.filters.name)
    band = cfg["weight_band"]
    if band not in names:
        raise InputError(f"sfh_groups.weight_band {band!r} is not a band of the flux map "
                         f"({', '.join(names)})", path=str(fluxmap_path),
                         fix="name one of those bands, or leave it null (the mass split band)")
    weights = cube.flux[names.index(band)].astype(float)
    edges = np.geomspace(cfg["tmin_gyr"], cfg["tmax_gyr"], int(cfg["n_time"]) + 1)
    edges[0] = 0.0
    k = cfg["k"]
    k = range(int(k[0]), int(k[1]) + 1) if isinstance(k, (list, tuple)) else int(k)
    sigma = cube.psf_fwhm / cube.pixsize * FWHM_TO_SIGMA if cfg["smooth"] else 0.0
    groups = make_sfh_groups(bm, results, edges, k, seed=cfg["seed"],
                             smooth_sigma_pix=sigma, min_mass=cfg["min_mass"],
                             pixel_weights=np.clip(weights, 0, None), config_hash=confhash)
    path = write_sfh_groups(groups, out_path)
    if plot_path:
        plot_sfh_groups(groups, plot_path)
    return path
