"""``sedmap run``: dotted --config overrides validated like the file, YAML errors
with file and line, and a killed run's lock told apart from a live one's."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sedmap.cli import main
from sedmap.errors import InputError
from sedmap.run import parse_override, resolve_config, snakemake_command, stale_lock

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "galaxies" / "demo.yaml"


def test_overrides_parse_dotted_keys_and_yaml_values():
    assert parse_override("fit.sys_err=0.02") == {"fit": {"sys_err": 0.02}}
    assert parse_override("fit.mcmc.nsteps=2000") == {"fit": {"mcmc": {"nsteps": 2000}}}
    assert parse_override("maps.split=[sdss_g, sdss_r]") == {"maps": {"split":
                                                                      ["sdss_g", "sdss_r"]}}
    assert parse_override("galaxy.name=ngc 309") == {"galaxy": {"name": "ngc 309"}}
    for bad in ("fit.sys_err", "=3", "fit..x=1"):
        with pytest.raises(InputError, match="not KEY=VALUE"):
            parse_override(bad)


def test_overrides_apply_last_and_are_validated_like_the_file(tmp_path):
    cfg, extra = resolve_config([DEMO], ["fit.sys_err=0.03", f"results_dir={tmp_path}"])
    assert cfg["fit"]["sys_err"] == 0.03 and cfg["fit"]["method"] == "mcmc"  # demo kept
    assert extra == {"fit": {"sys_err": 0.03}, "results_dir": str(tmp_path)}
    with pytest.raises(InputError, match=r"^--config fit\.sys_err: -1 is out of range"):
        resolve_config([DEMO], ["fit.sys_err=-1"])
    with pytest.raises(InputError, match=r"--config fit\.sys_er: unknown key"):
        resolve_config([DEMO], ["fit.sys_er=0.1"])


def test_yaml_error_names_file_line_and_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("galaxy:\n  name: demo\n  z: [0.02\nfit:\n  sys_err: 0.01\n")
    with pytest.raises(InputError) as err:
        resolve_config([bad])
    msg = str(err.value)
    assert str(bad) in msg and "line 4" in msg and "expected ',' or ']'" in msg


def test_cli_run_errors_are_one_line_and_nothing_runs(tmp_path, capsys):
    out = tmp_path / "results"
    status = main(["run", str(DEMO), "--config", "fit.sys_err=-1", f"results_dir={out}",
                   "-n"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sedmap run: error: --config fit.sys_err")
    assert not out.exists()


def test_command_passes_files_overrides_and_snakemake_arguments(tmp_path):
    cmd = snakemake_command([DEMO], tmp_path / "o.yaml", 2, ["--report", "r.html"])
    assert cmd[:3] == [sys.executable, "-m", "snakemake"]
    i = cmd.index("--configfile")
    assert cmd[i + 1:i + 3] == [str(DEMO), str(tmp_path / "o.yaml")]  # overrides last
    assert cmd[-4:] == ["--cores", "2", "--report", "r.html"]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_a_killed_runs_lock_is_stale_and_a_live_runs_is_not(tmp_path):
    assert stale_lock(tmp_path) is False  # no lock
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x")
    assert stale_lock(tmp_path) is True  # nobody works here: a killed run's
    # a live Snakemake process in that folder (its argv[0] is "snakemake")
    live = subprocess.Popen(["bash", "-c", "exec -a snakemake sleep 30"], cwd=tmp_path)
    try:
        for _ in range(50):
            if Path(f"/proc/{live.pid}/cmdline").read_bytes().startswith(b"snakemake"):
                break
            time.sleep(0.05)
        assert stale_lock(tmp_path) is False
    finally:
        live.kill()
        live.wait()
    assert stale_lock(tmp_path) is True
    os.remove(locks / "0.input.lock")
    assert stale_lock(tmp_path) is False


def test_a_stage_without_its_inputs_is_one_line(tmp_path, capsys, monkeypatch):
    """`sedmap maps` before the fits exist: one line naming the missing product."""
    cfg = tmp_path / "g.yaml"
    cfg.write_text(f"results_dir: {tmp_path / 'results'}\n")
    status = main(["maps", str(cfg)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sedmap maps: error: ") and "binmap.fits: not found" in err
    assert "run the stages before this one" in err


def test_a_yaml_file_given_to_config_is_refused_with_the_fix(capsys):
    """Subcommands take galaxy files as arguments and --config KEY=VALUE settings; a
    galaxy file given to --config (the former usage) is one line saying so."""
    status = main(["maps", "--config", "config/galaxies/demo.yaml"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "is a file, and --config takes KEY=VALUE" in err
    assert "sedmap COMMAND config/galaxies/demo.yaml --config key=value" in err


def test_run_summary_sums_each_stages_benchmarks(tmp_path):
    """The end-of-run summary adds up Snakemake's benchmark files per stage (a stage's
    jobs summed, its peak memory the largest), in pipeline order, and names the maps."""
    from sedmap.config import load_config
    from sedmap.run import run_summary

    bench = tmp_path / "logs" / "benchmarks"
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, wall, rss, cpu in (("demo/fits/job_0.tsv", 40.0, 900, 38.0),
                                ("demo/fits/job_1.tsv", 60.0, 1300, 55.0),
                                ("demo/rdsps.tsv", 10.0, 2000, 19.0),
                                ("models/grid_abc.tsv", 30.0, 700, 29.0)):
        p = bench / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(head + f"{wall}\t0:00:{int(wall)}\t{rss}\t0\t0\t0\t0\t0\t0\t{cpu}\n")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "maps.fits").write_bytes(b"")
    (tmp_path / "demo" / "fits" / "job_0").mkdir(parents=True)
    (tmp_path / "demo" / "fits" / "job_0" / "bin_1.h5").write_bytes(b"x" * 1_500_000)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "grid_abc.h5").write_bytes(b"x" * 2_000_000)
    cfg = load_config("config/galaxies/demo.yaml")
    cfg["results_dir"] = str(tmp_path)
    text = run_summary(cfg)
    lines = text.splitlines()
    mcmc = next(ln for ln in lines if "fit (MCMC)" in ln)
    assert "2 jobs" in mcmc and "100.0 s wall" in mcmc and "93.0 s CPU" in mcmc \
        and "1300 MB" in mcmc and "disk      1.5 MB" in mcmc, mcmc
    assert "disk      2.0 MB" in next(ln for ln in lines if ln.startswith("  models"))
    names = [ln.split()[0] for ln in lines if ln.startswith("  ") and " s wall" in ln]
    assert names == ["models", "fit", "fit"] and "(RDSPS)" in lines[3], text
    assert str(tmp_path / "demo" / "maps.fits") in text
