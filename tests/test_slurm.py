"""profiles/slurm/ on a real (one-node, localhost) SLURM: the demo's fit fan-out
(rdsps, the MCMC jobs of fit.bins_per_job bins, maps) goes through sbatch and
gives the same products as a local run.

The cluster comes from tests/slurm_cluster.sh (Debian packages slurmd slurmctld
slurm-client munge; .ci/run installs them when it runs as root). Everything it
writes lives under the test's tmp dir; the test skips when the packages are
missing or the cluster does not come up.

To stay quick (< 6 min on 2 cores) it runs a shrunk demo: 3000 models, S/N 18
bins (17 on the demo mock), MCMC on all of them with short chains, fitted in
jobs of at most 10 bins (one stacked ensemble each), each bin once. Everything up to the bin map
and the model grid is made locally once and copied (the bin map is made again
through SLURM, and must come out the same), so both runs start from the same files.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from sedmap.io import read_bin_map, read_fit_result, read_map_set

ROOT = Path(__file__).resolve().parents[1]
HELPER = ROOT / "tests" / "slurm_cluster.sh"
DEMO = "config/galaxies/demo.yaml"
OVERRIDES = {
    "fit": {"method": "mcmc", "mcmc": {"subset": 0, "nwalkers": 32, "nsteps": 40, "burn": 10,
                                       "n_tau": 0}},
    "models": {"n_models": 3000},
    # 15 bins (6 LOW_SNR): more than one job of bins_per_job (10), few enough to be quick
    "binning": {"sn_threshold": 10.0, "d_min": 2.0, "max_area": 100.0},
}

pytestmark = [pytest.mark.slurm, pytest.mark.slow]  # it starts from the demo run


def _config_args(results_dir):
    args = ["--config", f"results_dir={results_dir}"]
    for key, value in OVERRIDES.items():
        args.append(f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}")
    return args


def _kind(log):
    """rule_NAME from a SLURM log path (.../rule_NAME/WILDCARDS/ID.log)."""
    return next(p for p in Path(log).parts if p.startswith("rule_"))


def _grid_name():
    """The model-grid file name the workflow derives from the merged config."""
    from snakemake.utils import update_config

    from sedmap.config import grid_key, validate_config

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    update_config(cfg, yaml.safe_load((ROOT / DEMO).read_text()))
    update_config(cfg, {k: v for k, v in OVERRIDES.items()})
    validate_config(cfg)
    return grid_key(cfg["models"]) + ".h5"


def _snakemake(args, env=None, timeout=400):
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "snakemake", "--nolock", "--configfile", DEMO,
                          *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    return out, time.monotonic() - t0


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory):
    """Bring up the one-node cluster; yield the environment that reaches it."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    cdir = tmp_path_factory.mktemp("slurm")
    t0 = time.monotonic()
    try:
        up = subprocess.run(["timeout", "-k", "5", "60", "bash", str(HELPER), "up", str(cdir)],
                            capture_output=True, text=True, check=False)
    except OSError as err:
        pytest.skip(f"cannot start a SLURM cluster: {err}")

    def teardown():
        subprocess.run(["timeout", "-k", "5", "60", "bash", str(HELPER), "down", str(cdir)],
                       capture_output=True, text=True, check=False)

    if up.returncode != 0:
        teardown()
        pytest.skip(f"no local SLURM cluster (rc {up.returncode}): "
                    f"{(up.stderr or up.stdout).strip()[-1500:]}")
    print(f"\n[slurm] cluster up in {time.monotonic() - t0:.1f} s ({cdir})")
    env = dict(os.environ)
    env["SLURM_CONF"] = str(cdir / "slurm.conf")
    env["PATH"] = f"{cdir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    try:
        yield env, cdir
    finally:
        teardown()


def test_fit_fanout_through_slurm_matches_local(slurm_env, demo, tmp_path):
    env, cdir = slurm_env
    local, remote = tmp_path / "local", tmp_path / "slurm"
    grid = _grid_name()
    timings = {}

    # 0. the mock and its flux map are the demo's (OVERRIDES change nothing before
    #    the binning): copied with their mtimes, so that they do not run again
    for name in ("mock", "images", "fluxmap.fits"):
        src, dst = demo / name, local / "demo" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    # 1. up to binmap.fits and the model grid, locally, once; the SLURM run's
    #    results folder starts as a copy (mtimes kept, so nothing upstream reruns)
    prep, timings["prep (local)"] = _snakemake(
        ["--cores", "2", *_config_args(local),
         "--", f"{local}/demo/binmap.fits", f"{local}/models/{grid}"], timeout=600)
    assert not re.search(r"^(local)?rule (mock|fluxmap):", prep, re.MULTILINE), prep[-3000:]
    shutil.copytree(local, remote, symlinks=True)
    # the SLURM run makes its own bin map (the checkpoint runs through sbatch too)
    (remote / "demo/binmap.fits").unlink()
    binmap = read_bin_map(local / "demo/binmap.fits").binmap
    bin_ids = {str(k) for k in np.unique(binmap[binmap > 0])}  # 0 = not binned
    assert 10 < len(bin_ids) <= 20, \
        f"{len(bin_ids)} bins: the test wants more than one job's 10 (bins_per_job)"

    # 2. the reference: the fit fan-out and maps, locally
    _, timings["fits + maps (local)"] = _snakemake(
        ["--cores", "2", *_config_args(local), "--", f"{local}/demo/maps.fits"])

    # 3. the same through SLURM. --workflow-profile none: otherwise
    #    profiles/default/ (picked up automatically) wins over --profile.
    slurm_logs = tmp_path / "slurm_logs"
    out, timings["fits + maps (SLURM)"] = _snakemake(
        ["--profile", "profiles/slurm", "--workflow-profile", "none",
         "--cores", str(os.cpu_count() or 2),  # the node's CPUs: the most a job may ask for
         "--slurm-init-seconds-before-status-checks", "2",
         "--slurm-logdir", str(slurm_logs), "--slurm-keep-successful-logs",
         *_config_args(remote), "--", f"{remote}/demo/maps.fits"], env=env)

    # every job was an sbatch job: binning, rdsps, the fit jobs, maps
    jobids = re.findall(r"submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", out)
    kinds = sorted({_kind(log) for _, log in jobids})
    assert kinds == ["rule_binning", "rule_fit_job", "rule_maps", "rule_rdsps"], out[-3000:]
    assert not re.search(r"^localrule (binning|rdsps|fit_job|maps):", out,
                         re.MULTILINE), out[-3000:]
    # each bin fitted once, in jobs of at most fit.bins_per_job
    job_dirs = sorted((remote / "demo/fits").glob("job_*"))
    group_sizes = [len(list(d.glob("bin_*.h5"))) for d in job_dirs]
    grouped_bins = {p.stem.split("_")[1] for d in job_dirs for p in d.glob("bin_*.h5")}
    assert grouped_bins == bin_ids, group_sizes
    assert sum(group_sizes) == len(bin_ids) and max(group_sizes) <= 10, group_sizes
    assert sum(_kind(log) == "rule_fit_job" for _, log in jobids) == len(job_dirs)
    # and SLURM ran them to completion (jobcomp/filetxt, as there is no slurmdbd for sacct)
    jobcomp = (cdir / "jobcomp.txt").read_text()
    for jid, _ in jobids:
        assert re.search(rf"^JobId={jid} .*JobState=COMPLETED", jobcomp, re.MULTILINE), jobcomp

    # 4. the products equal the local run's
    t0 = time.monotonic()
    assert (local / "demo/binmap.fits").read_bytes() == (remote / "demo/binmap.fits").read_bytes()
    local_fits = sorted(str(p.relative_to(local / "demo/fits"))
                        for p in (local / "demo/fits").glob("job_*/bin_*.h5"))
    remote_fits = sorted(str(p.relative_to(remote / "demo/fits"))
                         for p in (remote / "demo/fits").glob("job_*/bin_*.h5"))
    assert local_fits == remote_fits and len(local_fits) == len(bin_ids)
    n_identical = 0
    for name in local_fits:
        a, b = local / "demo/fits" / name, remote / "demo/fits" / name
        if a.read_bytes() == b.read_bytes():
            n_identical += 1
            continue
        ra, rb = read_fit_result(a), read_fit_result(b)
        assert (ra.method, ra.param_names, ra.flag) == (rb.method, rb.param_names, rb.flag), name
        np.testing.assert_array_equal(ra.percentiles, rb.percentiles, err_msg=name)
        np.testing.assert_array_equal(ra.samples, rb.samples, err_msg=name)
    ma, mb = read_map_set(local / "demo/maps.fits"), read_map_set(remote / "demo/maps.fits")
    assert sorted(ma.maps) == sorted(mb.maps)
    for name in ma.maps:
        np.testing.assert_array_equal(np.asarray(ma.maps[name].data),
                                      np.asarray(mb.maps[name].data), err_msg=name)
    timings["compare"] = time.monotonic() - t0

    print(f"[slurm] SLURM jobs: {', '.join(f'{j} {_kind(log)}' for j, log in jobids)}")
    print(f"[slurm] fit job sizes: {group_sizes}")
    print(f"[slurm] per-bin files byte-identical: {n_identical}/{len(local_fits)} "
          "(the rest equal in percentiles and samples)")
    for step, sec in timings.items():
        print(f"[slurm] {step}: {sec:.1f} s")
