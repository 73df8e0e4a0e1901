"""The Snakemake workflow: dry runs, rule conventions, config errors.

These run snakemake in a subprocess from the repository root, dry (-n) only:
nothing is built.
"""

import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sedmap.config import grid_key, load_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = "config/galaxies/demo.yaml"


def snakemake(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--nolock", "--cores", "1", *args],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def test_demo_dry_run_plans_the_model_grid():
    run = snakemake("-n", "--forceall", "--configfile", DEMO)  # whatever results/ holds
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    key = grid_key(load_config(ROOT / DEMO)["models"])
    assert re.search(r"^rule model_grid:", out, re.MULTILINE), out
    assert re.search(rf"output: results/models/{key}\.h5\b", out), out
    assert f"log: results/logs/models/{key}.log" in out
    assert f"benchmark: results/logs/benchmarks/models/{key}.tsv" in out


def test_model_change_gives_a_new_grid_file():
    run = snakemake("-n", "--forceall", "--configfile", DEMO, "--config", "models={n_models: 123}")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    config = load_config(ROOT / DEMO)
    config["models"]["n_models"] = 123
    old = grid_key(load_config(ROOT / DEMO)["models"])
    new = grid_key(config["models"])
    assert f"results/models/{new}.h5" in out
    assert old not in out


RULES_SNIPPET = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, OutputSettings,
                                          ResourceSettings, StorageSettings)
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[Path(sys.argv[1])]),
            storage_settings=StorageSettings(),
            snakefile=Path("Snakefile"),
        )._workflow
        rules = []
        for r in wf.rules:
            acts = bool(r.shellcmd or r.script or r.notebook or r.wrapper or r.cwl
                        or (r.run_func is not None and not r.norun))
            rules.append(dict(name=r.name, acts=acts, log=[str(x) for x in r.log],
                              benchmark=str(r.benchmark) if r.benchmark else None,
                              conda=r.conda_env, script=r.script))
    print("RULES=" + json.dumps(rules))
    """
)


@pytest.fixture(scope="module")
def rules():
    run = subprocess.run(
        [sys.executable, "-c", RULES_SNIPPET, DEMO],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    line = next(x for x in run.stdout.splitlines() if x.startswith("RULES="))
    return json.loads(line[len("RULES="):])


def test_every_rule_has_log_and_benchmark(rules):
    acting = [r for r in rules if r["acts"]]
    assert "model_grid" in [r["name"] for r in acting]
    for rule in acting:
        assert rule["log"], f"rule {rule['name']} declares no log"
        assert rule["benchmark"], f"rule {rule['name']} declares no benchmark"
        assert rule["benchmark"].startswith("results/logs/benchmarks/"), rule
        # not the checkout
        assert all(str(x).startswith("results/logs/") for x in rule["log"]), rule
        assert rule["conda"], f"rule {rule['name']} declares no conda env"


def test_scripts_read_params_not_config(rules):
    scripts = [r["script"] for r in rules if r["script"]]
    assert scripts
    for script in scripts:
        text = (ROOT / "workflow" / "rules" / script).resolve().read_text()
        assert "snakemake.config" not in text and "config[" not in text, script
        # scripts get the params through sedmap.stages.run_script (body(p, i, o, w))
        assert "snakemake.params" in text or "run_script(snakemake, body)" in text, script
    import inspect

    from sedmap.stages import run_script
    assert "snakemake.params" in inspect.getsource(run_script)


def test_every_script_is_a_rules_script(rules):
    """scripts/ holds Snakemake entry points only: each is the script of a rule (a
    script no rule runs is dead code that drifts from the library)."""
    used = {(ROOT / "workflow" / "rules" / r["script"]).resolve() for r in rules if r["script"]}
    present = {p.resolve() for p in (ROOT / "scripts").glob("*.py")}
    assert present, "no scripts found"
    assert not present - used, f"scripts no rule runs: {sorted(p.name for p in present - used)}"


def bad_config_run(*args):
    run = snakemake("-n", *args)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Traceback" not in out, out
    return out


def test_bad_value_on_command_line_stops_with_plain_message():
    out = bad_config_run("--configfile", DEMO, "--config", "models={sfh: foo}")
    line = next(x for x in out.splitlines() if "models.sfh" in x)
    for choice in ("tau", "delayed_tau", "log_normal", "gaussian", "double_power_law",
                   "delayed_tau_burst"):
        assert choice in line


def test_bad_galaxy_file_stops_with_plain_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("galaxy: {name: bad, dec: 95}\nmodels: {colour: red}\n")
    out = bad_config_run("--configfile", str(bad))
    assert re.search(r"(galaxy\.dec: .*-90 <= dec <= 90|models\.colour: unknown key)", out)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "pytest" in x and "&&" in x)
    command = line.split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [x.strip() for x in ci], f"{command!r} is not a line of .ci/run"
    assert ci[0].startswith("#!") and "set -euo pipefail" in ci
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111, ".ci/run is not executable"


def test_mpi_setting_launches_the_grid_and_rdsps_jobs_with_ranks():
    run = snakemake("-n", "-p", "--forceall", "--configfile", DEMO, "--config",
                    "mpi={tasks: 3, launcher: srun --mpi=pmix}")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    # the shell rules run the interpreter that runs Snakemake (no activated venv needed)
    python = re.escape(shlex.quote(sys.executable))
    assert re.search(rf"srun --mpi=pmix -n 3 {python} -m sedmap\.cli models ", out), out[-3000:]
    assert "tasks=3" in out and "mpi=srun --mpi=pmix" in out
    serial = snakemake("-n", "-p", "--forceall", "--configfile", DEMO)
    assert serial.returncode == 0
    assert "-n 3" not in serial.stdout
    assert f"{shlex.quote(sys.executable)} -m sedmap.cli models" in serial.stdout


def test_conda_env_matches_pyproject():
    """envs/sedmap.yaml (for --use-conda) pins what pyproject.toml does, minus the
    workflow engine itself, which runs outside the jobs."""
    import tomllib

    import yaml

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "envs" / "sedmap.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    outside = {d for d in deps if d.startswith("snakemake")}
    assert set(pip) == set(deps) - outside
    assert "python=3.11" in env["dependencies"]


def test_ifs_enabled_plans_the_specphoto_product():
    run = snakemake("-n", "--forceall", "--configfile", DEMO, "--config",
                    "ifs={enabled: true}", "mock={settings: {ifs: true}}")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert re.search(r"^rule specphoto:", out, re.MULTILINE), out[-3000:]
    assert "results/demo/specphoto.fits" in out
    # the binning stage bins the spectra too
    assert re.search(r"checkpoint binning:\n    input: [^\n]*specphoto\.fits", out), out[-3000:]
    plain = snakemake("-n", "--forceall", "--configfile", DEMO)
    assert "rule specphoto:" not in plain.stdout
    assert not re.search(r"checkpoint binning:\n    input: [^\n]*specphoto", plain.stdout)


def test_a_band_setting_naming_an_absent_band_fails_the_dry_run(tmp_path):
    """maps.split naming a band the galaxy does not have stops the dry run with one
    line naming the key and the bands, not the maps stage after every fit."""
    bad = tmp_path / "nir.yaml"
    bad.write_text("maps: {split: {log_mstar: sdss_z}}\n")
    out = bad_config_run("--configfile", "config/galaxies/ngc309.yaml", str(bad))
    line = next(x for x in out.splitlines() if "maps.split.log_mstar" in x)
    assert "sdss_z" in line and "2mass_j, 2mass_h, 2mass_k, wise_w1, wise_w2" in line
    assert "Traceback" not in out


def test_real_examples_dry_run_with_adaptive_defaults():
    """The real examples' files name no maps.split: it adapts to their bands, and the
    two share one model grid."""
    keys = set()
    for name in ("ngc309", "sn2006bh"):
        cfg = load_config(ROOT / f"config/galaxies/{name}.yaml")
        keys.add(grid_key(cfg["models"]))
        run = snakemake("-n", "--forceall", "--configfile", f"config/galaxies/{name}.yaml")
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert len(keys) == 1
    assert load_config(ROOT / "config/galaxies/ngc309.yaml")["maps"]["split"] == {
        "log_mstar": "wise_w1", "log_sfr": "2mass_j", "log_mdust": "wise_w2"}


def test_a_user_error_inside_a_job_reaches_the_terminal_as_one_line(tmp_path):
    """A corrupt input file: the calibrate job stops with the InputError's one line
    (file, problem, fix) on the terminal and no Python traceback."""
    (tmp_path / "g.fits").write_text("not a FITS file\n")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        galaxy: {{name: badgal, ra: 14.17775, dec: -9.91386, z: 0.0189}}
        data_dir: {tmp_path}
        results_dir: {tmp_path / "res"}
        images:
          bands:
            - {{filter: sdss_g, survey: sdss, file: g.fits, psf_fwhm: 1.4}}
        """))
    run = snakemake("--configfile", str(cfg), "--until", "calibrate_band", timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    line = next(x for x in out.splitlines() if x.startswith("sedmap: error in rule"))
    assert "g.fits" in line and "not a readable FITS file" in line and "Fix:" in line
    assert "Traceback" not in out, out[-3000:]
