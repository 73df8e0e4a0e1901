"""The far-infrared demo (config/galaxies/demo_fir.yaml) end to end, and the dust
truth it is judged against.

The demo is run once (``sedmap run`` from a clean results folder in a temporary
directory: nothing is written into the checkout) or reused with
``SEDMAP_TEST_DEMO_FIR=DIR`` (a finished run made with ``--config results_dir=DIR``).
It needs the IRAC in-flight PSFs of ``../shared/realdata/psf``; without them the
slow tests are skipped. The dust-obscured bins are the S/N-complete bins whose true
A_V is in the top quartile (docs/validation.md, "The far-infrared demo").
"""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from sedmap.accuracy import QUANTITIES, TRUTH_MAPS, bin_truth, compare
from sedmap.config import load_config
from sedmap.fit.methods import fit_jobs
from sedmap.io import read_bin_map, read_fit_result, read_flux_cube, write_bin_map
from sedmap.io.fitresult import FitResult
from sedmap.io.fluxcube import Filters
from sedmap.mock import merge_mock_config
from sedmap.stages import run_fit_job, run_rdsps

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "galaxies" / "demo_fir.yaml"
PSF_DIR = ROOT.parent / "shared" / "realdata" / "psf"
#: the bands of piXedfit's M51 example, as the issue lists them
FIR_BANDS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
             "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2", "wise_w3", "wise_w4",
             "spitzer_irac_36", "spitzer_irac_45", "spitzer_irac_58", "spitzer_irac_80",
             "spitzer_mips_24", "herschel_pacs_70", "herschel_pacs_100", "herschel_pacs_160",
             "herschel_spire_250", "herschel_spire_350"]


# --------------------------------------------------------------------------- fast


def test_config_is_the_m51_band_set_in_native_formats():
    """The galaxy file is valid, its mock writes the issue's bands in their surveys'
    formats (IRAC through the in-flight PSF files), and it is the demo's galaxy."""
    cfg = load_config(CONFIG)
    assert cfg["mock"]["enabled"] and cfg["galaxy"]["name"] == "demo_fir"
    bands = cfg["mock"]["settings"]["bands"]
    assert [b["filter"] for b in bands] == FIR_BANDS
    surveys = {b["filter"].split("_")[0]: b["survey"] for b in bands}
    assert surveys == {"galex": "galex", "sdss": "sdss", "2mass": "2mass", "wise": "wise",
                       "spitzer": "spitzer", "herschel": "herschel"}
    irac = [b for b in bands if b["filter"].startswith("spitzer_irac")]
    assert all(Path(b["psf_file"]).name.startswith("irac_ch") for b in irac)
    demo = load_config(ROOT / "config" / "galaxies" / "demo.yaml")
    for key in ("galaxy", "ra", "dec", "z"):
        assert merge_mock_config(cfg["mock"]["settings"])[key] == \
            merge_mock_config(demo["mock"]["settings"])[key]
    assert cfg["mock"]["settings"]["clumps"][:4] == demo["mock"]["settings"]["clumps"]
    assert cfg["models"]["sfh"] == demo["models"]["sfh"] and cfg["models"]["dust_emission"]
    assert not np.isscalar(cfg["models"]["params"]["log_umin"])      # the grid frees them
    assert not np.isscalar(cfg["models"]["params"]["log_qpah"])


def _result(bin_id, pct):
    names = list(pct)
    return FitResult(bin_id=bin_id, method="mcmc", param_names=names,
                     samples=np.zeros((0, len(names))),
                     percentiles={k: np.asarray(v, float) for k, v in pct.items()})


def test_dust_truth_per_bin_and_its_report():
    """The dust mass of a bin is the sum of its pixels'; U_min, gamma and q_PAH are
    their dust-mass-weighted means; a quantity every fit holds at one value (fixed in
    the grid) is left out of the report."""
    binmap = np.array([[1, 1, 2]])
    maps = {"LOG_MASS": np.log10([[1e9, 3e9, 2e9]]), "LOG_SFR": np.log10([[0.1, 0.3, 0.2]]),
            "AV": np.array([[1.0, 0.5, 0.2]]), "LOG_MDUST": np.log10([[1e6, 3e6, 1e6]]),
            "LOG_UMIN": np.array([[0.2, 0.6, 0.4]]), "LOG_QPAH": np.array([[0.3, 0.3, 0.1]])}
    t = bin_truth(binmap, maps)
    assert t["LOG_MDUST"] == pytest.approx(np.log10([4e6, 1e6]))
    assert t["LOG_UMIN"] == pytest.approx([0.5, 0.4])
    assert t["AV"][0] == pytest.approx(0.625)      # weighted by the stellar mass
    results = {k: _result(k, {"log_mdust": [t["LOG_MDUST"][k - 1] - 0.1,
                                            t["LOG_MDUST"][k - 1],
                                            t["LOG_MDUST"][k - 1] + 0.1],
                              "log_umin": [0.3, 0.45, 0.6], "log_qpah": [0.45, 0.45, 0.45]})
               for k in (1, 2)}
    rep = compare(t, results)
    assert rep["log_mdust"]["bias"] == pytest.approx(0.0) and rep["log_mdust"]["n_bins"] == 2
    assert rep["log_umin"]["coverage68"] == 1.0
    assert "log_qpah" not in rep                   # held fixed: nothing was fitted
    assert {"LOG_MDUST", "LOG_UMIN", "LOG_GAMMA", "LOG_QPAH"} <= set(TRUTH_MAPS)
    assert {"log_mdust", "log_umin", "log_gamma", "log_qpah"} <= set(QUANTITIES)


# --------------------------------------------------------------------------- the run


@pytest.fixture(scope="module")
def demo_fir(tmp_path_factory):
    """results_dir/demo_fir of one run (or of SEDMAP_TEST_DEMO_FIR's)."""
    if os.environ.get("SEDMAP_TEST_DEMO_FIR"):
        return Path(os.environ["SEDMAP_TEST_DEMO_FIR"]) / "demo_fir"
    if not PSF_DIR.is_dir():
        pytest.skip("../shared/realdata/psf (the IRAC in-flight PSFs) is absent")
    out = tmp_path_factory.mktemp("demo_fir")
    run = subprocess.run(
        [sys.executable, "-m", "sedmap.cli", "run", str(CONFIG), "--cores", "2",
         "--config", f"results_dir={out}", "--", "--nolock"],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out / "demo_fir"


def _truth(demo_fir, bm):
    with fits.open(demo_fir / "mock" / "truth.fits") as h:
        maps = {k: np.asarray(h[k].data, float) for k in TRUTH_MAPS if k in h}
    return bin_truth(bm.binmap, maps)


def _results(demo_fir):
    return {r.bin_id: r for r in map(read_fit_result,
                                     sorted((demo_fir / "fits").glob("job_*/bin_*.h5")))
            if r.method == "mcmc"}


def obscured_bins(bm, truth, quantile=75.0):
    """The S/N-complete bins whose true A_V is in the top quartile."""
    ok = np.flatnonzero(bm.flag == 0) + 1
    cut = np.percentile(truth["AV"][ok - 1], quantile)
    return [int(k) for k in ok if truth["AV"][k - 1] >= cut]


@pytest.mark.slow
def test_far_infrared_bands_are_in_the_flux_map(demo_fir):
    """Every band, the far infrared included, on SPIRE 350 um's 10" pixels at its 25"
    (widened by the reprojection of its own pixels): the bins' fluxes are the truth's
    within 2% (within their noise where it is larger), the MIPS and Herschel bands at
    S/N > 20 a bin."""
    cube = read_flux_cube(demo_fir / "fluxmap.fits")
    assert list(cube.filters.name) == FIR_BANDS
    assert cube.pixsize == pytest.approx(10.0) and 25.0 < cube.psf_fwhm < 26.5
    bm = read_bin_map(demo_fir / "binmap.fits")
    true = fits.getdata(demo_fir / "mock" / "truth.fits", "FLUX_TRUE").astype(float)
    inside = bm.binmap > 0
    idx = bm.binmap[inside] - 1
    tb = np.array([np.bincount(idx, weights=t[inside], minlength=bm.n_bin) for t in true]).T
    ok = bm.flag == 0
    assert ok.sum() >= 20
    ratio = np.median(bm.flux[ok] / tb[ok], axis=0)
    snr = np.median(bm.flux[ok] / np.sqrt(bm.flux_var[ok]), axis=0)
    # 2% or the noise of a median over a few independent 25" beams (GALEX FUV, 2MASS:
    # S/N 25-30 a bin, 3.3% low), whichever is larger
    assert np.all(np.abs(ratio - 1) < np.maximum(0.02, 2.0 / snr)), dict(zip(FIR_BANDS, ratio))
    assert np.all(snr[FIR_BANDS.index("spitzer_mips_24"):] > 20), snr


@pytest.mark.slow
def test_truth_and_report_hold_the_dust(demo_fir):
    """truth.fits has the dust mass and the DL07 parameters; accuracy.json reports
    the fit (and, where the workflow reads the dust truth, the dust quantities)."""
    with fits.open(demo_fir / "mock" / "truth.fits") as h:
        assert {"LOG_MDUST", "LOG_UMIN", "LOG_GAMMA", "LOG_QPAH"} <= {x.name for x in h}
    rep = json.loads((demo_fir / "accuracy.json").read_text())
    assert {"rdsps", "mcmc"} <= set(rep)
    bm = read_bin_map(demo_fir / "binmap.fits")
    dust = compare(_truth(demo_fir, bm), {k: r for k, r in _results(demo_fir).items()
                                          if bm.flag[k - 1] == 0})
    assert {"log_mdust", "log_umin", "log_qpah"} <= set(dust)
    assert "log_gamma" not in dust                   # held fixed by the grid
    for name in ("log_mdust", "log_umin", "log_qpah"):
        if name in rep["mcmc"]:
            assert rep["mcmc"][name] == pytest.approx(dust[name])


#: the dust-obscured bins' figures the run is held to (measured: docs/validation.md)
OBSCURED_TOL = {"log_sfr": 0.1, "log_mdust": 0.15, "av": 0.2}


def _obscured_stats(results, truth, ids):
    """{quantity: (median 68% width, median bias)} over ``ids``."""
    out = {}
    for name, tkey in (("log_sfr", "LOG_SFR"), ("av", "AV"), ("log_mdust", "LOG_MDUST")):
        fkey = QUANTITIES[name][1]
        p = np.array([results[k].percentiles[fkey] for k in ids])
        t = np.array([truth[tkey][k - 1] for k in ids])
        out[name] = (float(np.median(p[:, 2] - p[:, 0])), float(np.median(p[:, 1] - t)))
    return out


@pytest.mark.slow
def test_obscured_bins_sfr_and_dust_mass(demo_fir):
    """In the dust-obscured bins MCMC recovers log SFR within 0.1 dex, the dust mass
    within 0.15 dex and A_V within 0.2 mag (median biases: 25" mixes populations and
    dust at different U_min, which one model per bin cannot undo; docs/validation.md),
    with intervals of 0.1 dex (mag) or less."""
    bm = read_bin_map(demo_fir / "binmap.fits")
    truth = _truth(demo_fir, bm)
    mc = _results(demo_fir)
    ids = obscured_bins(bm, truth)
    assert len(ids) >= 5 and set(ids) <= set(mc)
    for name, (width, bias) in _obscured_stats(mc, truth, ids).items():
        assert abs(bias) <= OBSCURED_TOL[name], (name, width, bias)
        assert width <= 0.1, (name, width, bias)


@pytest.mark.slow
def test_coverage(demo_fir):
    """Over every S/N-complete bin MCMC's 68% intervals of log M*, log SFR and log Z
    hold the truth in at least a third of the bins and its pulls spread within a
    factor 2.5 of 1 (the chains reached 20 autocorrelation times in most bins)."""
    rep = json.loads((demo_fir / "accuracy.json").read_text())
    for name in ("log_mass", "log_sfr", "logz"):
        r = rep["mcmc"][name]
        assert r["coverage68"] >= 0.33 and 0.4 <= r["pull_spread"] <= 2.5, (name, r)
    assert rep["mcmc_chains"]["converged_fraction"] >= 0.7, rep["mcmc_chains"]


@pytest.mark.slow
def test_far_infrared_tightens_sfr_and_av_in_the_obscured_bins(demo_fir, tmp_path):
    """The same obscured bins refitted (RDSPS, then MCMC) with the 12 demo bands only:
    the far-infrared bands make the 68% intervals of log SFR and A_V at least 3x
    narrower (measured 5x: docs/validation.md)."""
    cfg = load_config(CONFIG)
    bm = read_bin_map(demo_fir / "binmap.fits")
    truth = _truth(demo_fir, bm)
    ids = obscured_bins(bm, truth)
    keep = [FIR_BANDS.index(n) for n in FIR_BANDS[:12]]
    f = bm.filters
    sub = replace(bm, filters=Filters([f.name[i] for i in keep], f.pivot_aa[keep],
                                      f.psf_fwhm_arcsec[keep], f.calib_err[keep]),
                  flux=bm.flux[:, keep], flux_var=bm.flux_var[:, keep], snr=bm.snr[:, keep])
    path = write_bin_map(sub, tmp_path / "binmap.fits")
    grid = next((demo_fir.parent / "models").glob("grid_*.h5"))
    z = cfg["galaxy"]["z"]
    run_rdsps(path, grid, z, tmp_path / "rdsps", cfg["fit"])
    # every obscured bin, on chains of 5 autocorrelation times, not the demo's 20:
    # measured 4.9x (log SFR) and 4.6x (A_V) narrower with the FIR at 5, 5.2x and
    # 5.0x at 20; the refits' MCMC takes 9 s instead of 33
    fit = dict(cfg["fit"], mcmc=dict(cfg["fit"]["mcmc"], subset=0, n_tau=5, max_steps=2000))
    jobs = [[k for k in job if k in ids] for job in fit_jobs(bm.flag, fit)]
    for j, job in enumerate(j for j in jobs if j):
        run_fit_job(job, path, grid, tmp_path / "rdsps", z,
                    [tmp_path / f"job_{j}" / f"bin_{k}.h5" for k in job], fit)
    twelve = {r.bin_id: r for r in map(read_fit_result, tmp_path.glob("job_*/bin_*.h5"))}
    assert set(twelve) == set(ids)
    with_fir = _obscured_stats(_results(demo_fir), truth, ids)
    without = _obscured_stats(twelve, truth, ids)
    for name in ("log_sfr", "av"):
        assert without[name][0] > 3 * with_fir[name][0], (name, without, with_fir)
