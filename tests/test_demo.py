"""The README demo end to end through Snakemake: mock -> maps, accuracy, SFH groups."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sedmap.io import read_bin_map, read_flux_cube, read_map_set, read_sfh_groups

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_products(demo):
    cube = read_flux_cube(demo / "fluxmap.fits")
    assert cube.flux.shape[0] == 12 and cube.region.sum() > 1000
    bm = read_bin_map(demo / "binmap.fits")
    assert bm.n_bin > 50
    maps = read_map_set(demo / "maps.fits")
    for name in ("LOG_MSTAR_P50", "LOG_MSTAR_PIX_P50", "LOG_SFR_P50", "AV_P50", "AGE_MW_P50"):
        assert name in maps.maps
    # the pixel-space mass map adds up to the bins' masses (flux shares conserve mass)
    total_pix = np.nansum(10 ** maps.maps["LOG_MSTAR_PIX_P50"].data.astype(float))
    inside = bm.binmap > 0
    ids = np.unique(bm.binmap[inside])
    per_bin = [np.nanmax(maps.maps["LOG_MSTAR_P50"].data[bm.binmap == k]) for k in ids]
    assert total_pix == pytest.approx(np.nansum(10 ** np.asarray(per_bin, float)), rel=0.05)
    groups = read_sfh_groups(demo / "sfh_groups.fits")
    assert 2 <= len(groups.mass) <= 6
    for png in ("fluxmap.png", "binmap.png", "maps.png", "sed_fit.png", "accuracy.png",
                "sfh_groups.png", "corner.png", "sfh.png"):
        assert (demo / "plots" / png).stat().st_size > 1000


@pytest.mark.slow
def test_truth_is_on_the_data_grid_at_the_data_psf(demo):
    """The truth maps the fits are judged against have the flux map's pixel and
    target PSF (the widest band PSF with its native pixels' box: WISE W2's 6.4" on
    1.375" pixels makes 6.47")."""
    from astropy.io import fits

    cube = read_flux_cube(demo / "fluxmap.fits")
    head = fits.getheader(demo.parent / "demo" / "mock" / "truth.fits")
    assert head["PSFFWHM"] == pytest.approx(cube.psf_fwhm, rel=1e-9)
    assert head["PIXSIZE"] == pytest.approx(cube.pixsize, rel=1e-9)
    assert cube.psf_fwhm > 1.005 * max(cube.filters.psf_fwhm_arcsec)


@pytest.mark.slow
def test_demo_bin_fluxes_agree_with_truth_within_their_errors(demo):
    """The bins' fluxes against the mock's true (noiseless, PSF-matched) fluxes
    summed over the same pixels: the residuals in units of the stated errors
    have a spread near 1 in every band. Without the pixel-noise correlation
    (bins summed as if their pixels were independent) the spread is 1.4-2.7."""
    from astropy.io import fits

    bm = read_bin_map(demo / "binmap.fits")
    true = fits.getdata(demo / "mock" / "truth.fits", "FLUX_TRUE").astype(float)
    inside = bm.binmap > 0
    idx = bm.binmap[inside] - 1
    tb = np.array([np.bincount(idx, weights=t[inside], minlength=bm.n_bin) for t in true]).T
    ok = bm.flag == 0
    pull = (bm.flux[ok] - tb[ok]) / np.sqrt(bm.flux_var[ok])
    spread = np.std(pull, axis=0)
    assert np.all(spread < 1.8), spread
    assert np.median(spread) < 1.25, spread
    assert np.all(np.abs(np.median(bm.flux[ok] / tb[ok], axis=0) - 1) < 0.03)


@pytest.mark.slow
def test_demo_accuracy(demo):
    """Issue 4's targets on the demo mock (continuity populations, fitted with the
    continuity SFH and the population prior), for RDSPS (every S/N-complete bin)
    and MCMC (a seeded subset of 40 of them). The README gives the figures, and those of
    MCMC on every bin (all five coverages in range there too)."""
    rep = json.loads((demo / "accuracy.json").read_text())
    assert set(rep) >= {"rdsps", "mcmc", "mcmc_bins", "n_bins", "rdsps_on_mcmc_bins"}
    assert len(rep["mcmc_bins"]) == 40
    names = ("log_mass", "log_sfr", "age_mw", "logz", "av")
    for method in ("rdsps", "mcmc"):
        r = rep[method]
        assert abs(r["log_mass"]["bias"]) <= 0.05, (method, r["log_mass"])
        assert r["log_mass"]["scatter"] <= 0.1, (method, r["log_mass"])
        assert r["log_sfr"]["scatter"] <= 0.2, (method, r["log_sfr"])
        assert r["av"]["scatter"] <= 0.15, (method, r["av"])
        for name in names:
            # the intervals' widths are right within a factor 2 (robust pull spread)
            assert 0.4 <= r[name]["pull_spread"] <= 1.6, (method, name, r[name])
            if (method, name) == ("mcmc", "log_mass"):
                # converged chains' mass intervals have the right width (pull
                # spread 0.72) about a -1 sigma (-0.012 dex) bias: the central bins
                # mix the old bulge with the younger disc's light (outshining), which
                # one SFH per bin cannot undo; coverage 0.45 (docs/science.md, "Fitting the demo")
                assert r[name]["coverage68"] >= 0.3 and abs(r[name]["pull_median"]) <= 1.5, \
                    (method, name, r[name])
                continue
            # RDSPS's log Z intervals are 1.5x too wide (pull spread 0.66, coverage
            # 0.81 over 186 bins): the grid's metallicity steps, not the data, set them.
            # MCMC's over 40 bins: 0.68 +- 0.074 (binomial), measured 0.825 (pull
            # spread 0.60) since the snooker update is the correct one (docs/sampling.md)
            top = 0.85 if name == "logz" else 0.80
            assert 0.55 <= r[name]["coverage68"] <= top, (method, name, r[name])
    # the leftover (LOW_SNR) bins are fitted and reported apart
    assert rep["n_bins_low_snr"] > 0 and rep["rdsps_low_snr"]["log_mass"]["n_bins"] > 0
    # RDSPS's weights sit on a few models; every MCMC chain grew to the demo's
    # fit.mcmc.n_tau (20) autocorrelation times, so its ESS (32 walkers x steps / tau)
    # rests on a trustworthy tau
    assert rep["rdsps_ess"]["median"] >= 2, rep["rdsps_ess"]
    # (one of the 40 stops at fit.mcmc.max_steps at 17.6 tau, flagged MCMC_CONVERGED 0)
    assert rep["mcmc_chains"]["converged_fraction"] >= 0.95, rep["mcmc_chains"]
    assert rep["mcmc_chains"]["n_tau_min"] >= 10, rep["mcmc_chains"]
    assert rep["mcmc_ess"]["p10"] >= 32 * 20, rep["mcmc_ess"]


def dry_run(results_dir, *config, configfile="config/galaxies/demo.yaml", targets=()):
    """(job counts per rule, the planned output paths) of a dry run."""
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", configfile,
         "--cores", "2", "--nolock", "--config", f"results_dir={results_dir}", *config,
         *(["--", *targets] if targets else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    counts, outputs = {}, []
    for line in run.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("job", "total"):
            counts[parts[0]] = int(parts[1])
        if line.strip().startswith("output:"):
            outputs += [x.strip() for x in line.split(":", 1)[1].split(",")]
    return counts, outputs


def planned_rules(results_dir, *config):
    return set(dry_run(results_dir, *config)[0])


@pytest.mark.slow
def test_nothing_to_do_after_the_demo(demo):
    assert planned_rules(demo.parent) == set()


@pytest.mark.slow
def test_fit_setting_reruns_fit_and_later_stages_only(demo):
    rules = planned_rules(demo.parent, "fit={sys_err: 0.06}")
    assert {"rdsps", "maps"} <= rules
    assert not rules & {"mock", "calibrate_band", "match_band", "fluxmap", "binning",
                        "model_grid"}


@pytest.mark.slow
def test_region_or_binning_setting_reruns_no_image_matching(demo):
    """A match_band job reads only its band, the PSFs and the grid settings: a new
    region threshold re-makes the flux map and what follows, a binning setting the
    binning and what follows; neither re-matches a band."""
    region = planned_rules(demo.parent, "images={region: {thresh: 2.5}}")
    assert {"fluxmap", "binning", "maps"} <= region
    binning = planned_rules(demo.parent, "binning={sn_threshold: 12.0}")
    assert {"binning", "maps"} <= binning and "fluxmap" not in binning
    for rules in (region, binning):
        assert not rules & {"mock", "calibrate_band", "match_band", "image_grid", "model_grid"}


@pytest.mark.slow
def test_mpi_setting_reruns_nothing(demo):
    # the same bytes for any number of ranks (tests/test_models.py, test_fit.py)
    assert planned_rules(demo.parent, "mpi={tasks: 2}") == set()


@pytest.mark.slow
def test_model_setting_rebuilds_the_grid_and_the_fits_only(demo):
    rules = planned_rules(demo.parent, "models={seed: 7}")
    assert {"model_grid", "rdsps", "maps"} <= rules
    assert not rules & {"mock", "calibrate_band", "match_band", "fluxmap", "binning"}


@pytest.mark.slow
def test_report_holds_the_plots(demo, tmp_path):
    report = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", "config/galaxies/demo.yaml",
         "--nolock", "--config", f"results_dir={demo.parent}", "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    html = report.read_text(errors="replace")
    for item in ("fluxmap.png", "region.png", "binmap.png", "maps.png", "sed_fit.png",
                 "accuracy.png", "sfh_groups.png", "sfh.png", "profiles.png", "residuals.png",
                 "corner.png", "summary.html"):
        assert item in html, item
    assert "RDSPS for every bin (black), MCMC" in html  # a caption from workflow/report/


@pytest.mark.slow
def test_summary_page_holds_provenance_constraints_profiles_and_accuracy(demo):
    from sedmap import __version__

    page = (demo / "summary.html").read_text()
    for text in ("Provenance", __version__, "What the data constrain", "Radial profiles",
                 "Accuracy against the mock", "68% coverage", "log M* / Msun"):
        assert text in page, text
    ms = read_map_set(demo / "maps.fits")
    assert ms.config_hash in page


@pytest.mark.slow
def test_demo_profiles_recover_the_truth(demo):
    """The radial profiles of the demo's surface densities agree with the mock's truth
    (its PSF-matched maps, averaged over the same annuli): inside 2 R_e log Sigma*
    within 0.06 dex and log Sigma_SFR within 0.1 dex. Beyond 2 R_e (the outermost
    S/N-complete bins, S/N ~10) both come out 0.1-0.24 dex high, an open finding
    (docs/science.md, "Radial profiles"): held to 0.3 dex there."""
    from astropy.io import fits

    from sedmap.io.profiles import read_profiles
    from sedmap.profiles import radial_profiles
    from sedmap.stages import profile_geometry

    cube, bm = read_flux_cube(demo / "fluxmap.fits"), read_bin_map(demo / "binmap.fits")
    prof = read_profiles(demo / "profiles.fits")
    assert len(prof) >= 5 and prof.meta["R_E_KPC"] > 0
    ms = read_map_set(demo / "maps.fits")
    with fits.open(demo / "mock" / "truth.fits") as h:
        truth = {"BIN_FLAG": np.asarray(ms["BIN_FLAG"].data, float)}
        for s in ("P16", "P50", "P84"):
            truth[f"LOG_MSTAR_PIX_{s}"] = np.asarray(h["LOG_MASS"].data, float)
            truth[f"LOG_SFR_PIX_{s}"] = np.asarray(h["LOG_SFR"].data, float)
    t = radial_profiles(truth, cube.region & (bm.binmap > 0), profile_geometry(cube, bm),
                        prof.meta["PIXKPC"])
    inner = np.asarray(prof["r_mid"]) < 2.0
    assert inner.sum() >= 5
    for col, tol in (("log_sigma_mstar_p50", 0.06), ("log_sigma_sfr_p50", 0.1)):
        got, want = np.asarray(prof[col]), np.asarray(t[col])
        np.testing.assert_allclose(got[inner], want[inner], atol=tol, err_msg=col)
        np.testing.assert_allclose(got[~inner], want[~inner], atol=0.3, err_msg=col)


@pytest.mark.slow
def test_demo_figures_are_labelled_and_show_snr_complete_bins(demo, tmp_path):
    """The figures' structure, not their pixels: every map's colour bar has a label
    with a unit and no raw extension name; the showcase bins are S/N-complete and
    fitted, distinct, inner to outer, and their titles give their radius."""
    import re

    from sedmap.io import read_fit_result
    from sedmap.stages import _profiles, bin_result_paths, galaxy_pixel_kpc, map_plots

    cube, bm = read_flux_cube(demo / "fluxmap.fits"), read_bin_map(demo / "binmap.fits")
    ms = read_map_set(demo / "maps.fits")
    results = [read_fit_result(p) for p in bin_result_paths(
        demo / "binmap.fits", demo / "rdsps", sorted((demo / "fits").glob("job_*")))]
    kpc = galaxy_pixel_kpc(cube)
    geo, table = _profiles(ms, cube, bm, kpc)
    drawn = map_plots(ms, bm, cube, results, tmp_path, geo, table, kpc)
    assert {p.name for p in drawn["files"]} == {"maps.png", "profiles.png", "residuals.png",
                                                "sed_fit.png", "corner.png", "sfh.png"}
    assert len(drawn["labels"]) == 6
    for label in drawn["labels"]:
        assert "/" in label, label                       # a unit, or a ratio (Z/Zsun)
        assert not re.search(r"[A-Z]{3,}_[A-Z0-9_]+", label), label  # no LOG_MSTAR_P50
    show = drawn["showcase"]
    assert [s[2] for s in show] == ["centre", "R_e", "outskirts"]
    assert show[0][1] < 0.5 and abs(show[1][1] - 1.0) < 0.25 and show[2][1] > 1.2, show
    flags = {r.bin_id: r.flag for r in results}
    for b, _, _ in show:
        assert bm.flag[b - 1] == 0 and flags[b] == 0
    assert all("R$_e$" in t and re.search(r"R = \d", t) for t in drawn["titles"])


# --------------------------------------------------------- many galaxies
SHEET = "sample_sheet=config/galaxies.tsv"  # demo + demo2, sharing the demo's grid


@pytest.mark.slow
def test_adding_a_galaxy_to_the_sheet_runs_only_the_new_galaxy(demo):
    counts, outputs = dry_run(demo.parent, SHEET)
    assert outputs and "model_grid" not in counts  # demo2 shares the demo's grid
    assert all(f"{demo.parent}/demo2/" in o for o in outputs), outputs
    assert {"mock", "calibrate_band", "binning", "rdsps"} <= set(counts)


@pytest.mark.slow
def test_model_edit_rebuilds_the_shared_grid_once_then_every_galaxys_fits(demo):
    counts, _ = dry_run(demo.parent, SHEET, "models={seed: 7}")
    assert counts["model_grid"] == 1
    assert counts["rdsps"] == 2  # demo's refit and demo2's first fit both use the new grid


@pytest.fixture(scope="module")
def observed(demo, tmp_path_factory):
    """Three of the demo's raw mock images (GALEX FUV, NUV, SDSS u) as an observed
    (non-mock) galaxy, through the images stage: a galaxy whose band settings name
    real files and PSFs."""
    import yaml

    bands = yaml.safe_load((demo / "mock" / "bands.yaml").read_text())
    out = tmp_path_factory.mktemp("observed")
    cfg = {"galaxy": dict(bands["galaxy"], name="obs"), "mock": {"enabled": False},
           "images": {"bands": bands["bands"][:3], "stamp_arcsec": 150.0}}
    path = out / "obs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", str(path), "--cores", "2",
         "--nolock", "--config", f"results_dir={out}", "--", f"{out}/obs/fluxmap.fits"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, path, cfg


@pytest.mark.slow
def test_one_band_psf_change_reruns_from_psf_matching(observed, tmp_path):
    import yaml

    out, path, cfg = observed
    target = [f"{out}/obs/fluxmap.fits"]
    assert dry_run(out, configfile=str(path), targets=target)[0] == {}
    cfg["images"]["bands"][2]["psf_fwhm"] += 0.2  # sdss_u, still sharper than GALEX
    changed = tmp_path / "obs.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    counts, outputs = dry_run(out, configfile=str(changed), targets=target)
    assert {"match_band", "fluxmap"} <= set(counts)
    assert "calibrate_band" not in counts and "mock" not in counts
    assert any(o.endswith("sdss_u_matched.fits") for o in outputs)


@pytest.mark.slow
def test_demo_says_its_quantities_are_constrained(demo):
    """On the demo's 12 UV-IR bands the data, not the prior, set all five
    quantities in most bins (measured: 79% (age) to 94% (A_V) of the bins, median
    constraint 0.82 (age) to 0.94 (A_V)); 13 of the 224 fitted bins, at S/N 22-111,
    have RDSPS posteriors resting on fewer than 5 models (ESS < 5): their widths
    measure nothing, and they count as unknown, not constrained. NGC 309's five NIR
    bands constrain the mass only (tests/test_realdata.py)."""
    ms = read_map_set(demo / "maps.fits")
    ess = ms.maps["ESS"].data[ms.maps["FIT_FLAG"].data == 0]
    few = ms.maps["LOG_MSTAR_CONSTRAINT"].data[ms.maps["FIT_FLAG"].data == 0][ess < 5]
    assert np.all(np.isnan(few))
    for q in ("log_mstar", "log_sfr", "age_mw", "logzsol", "av"):
        assert ms.summary[q]["bin_fraction"] >= 0.75, (q, ms.summary[q])
        c = ms.maps[q.upper() + "_CONSTRAINT"].data
        assert np.nanmax(c) <= 1.0
    fitted = ms.maps["FIT_FLAG"].data == 0
    for name, m in ms.maps.items():
        if name.endswith(("_P16", "_P50", "_P84")):
            assert np.all(np.isfinite(m.data[fitted])), name


MAP_BINS_PER_JOB = 120


@pytest.mark.slow
def test_map_method_runs_the_demo_through_fit_method(demo, tmp_path):
    """fit.method: map on the demo, through the workflow: a copy of the demo's
    products up to RDSPS (the grid linked, not copied) gets MAP refits of every bin,
    then maps, SFH groups, the accuracy report and the summary. The best fits are
    better than the best RDSPS models for most bins (a maximum of the posterior, not
    of the likelihood: under the demo's population priors a few bins trade chi^2 for
    prior); the figures and the report name the method."""
    import shutil

    from sedmap.io import read_fit_result

    out = tmp_path / "results"
    shutil.copytree(demo, out / "demo", ignore=shutil.ignore_patterns(
        "fits", "maps.fits", "profiles.fits", "sfh_groups.fits", "accuracy.json",
        "summary.html", "plots"))
    (out / "models").symlink_to(demo.parent / "models", target_is_directory=True)
    shutil.copytree(demo.parent / "logs", out / "logs")
    run = subprocess.run(
        [sys.executable, "-m", "sedmap.cli", "run", "config/galaxies/demo.yaml", "--cores",
         "2", "--config", f"results_dir={out}", "fit.method=map",
         # two jobs: a MAP fit takes 0.4 s a bin, starting a job 3-5 s
         f"fit.bins_per_job={MAP_BINS_PER_JOB}"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    jobs = sorted((out / "demo" / "fits").glob("job_*"))
    files = sorted(f for j in jobs for f in j.glob("bin_*.h5"))
    n_bin = read_bin_map(out / "demo" / "binmap.fits").n_bin
    assert len(files) == n_bin and len(jobs) == -(-n_bin // MAP_BINS_PER_JOB)
    chi2 = np.array([[read_fit_result(f).chi2,
                      read_fit_result(out / "demo" / "rdsps" / f.name).chi2] for f in files
                     if read_fit_result(f).method == "map" and not read_fit_result(f).flag])
    ratio = chi2[:, 0] / chi2[:, 1]
    assert len(chi2) > 0.3 * n_bin, len(chi2)
    # measured: 74-84% of the bins improve, median ratio 0.87
    assert np.mean(ratio <= 1 + 1e-6) > 0.65 and np.median(ratio) < 0.95, ratio
    rep = json.loads((out / "demo" / "accuracy.json").read_text())
    assert "map" in rep and len(rep["map_bins"]) == rep["n_bins"] - rep["n_bins_flagged"]
    assert "MAP" in (out / "demo" / "summary.html").read_text()
    assert (out / "demo" / "plots" / "sed_fit.png").stat().st_size > 10_000
