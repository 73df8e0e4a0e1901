"""Every rule runs with the interpreter of the Snakemake process: a user who calls
the venv's ``snakemake`` by its path, without activating the venv, gets the
venv's Python in every job (a bare ``python`` would find no sedmap)."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_rules_use_the_venv_python_without_an_activated_venv(tmp_path):
    exe = Path(sys.executable).parent / "snakemake"
    if not exe.is_file():
        pytest.skip("no snakemake script beside the interpreter")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"  # the venv's bin/ is not on it
    run = subprocess.run(
        [str(exe), "-n", "--printshellcmds", "--configfile", "config/galaxies/demo.yaml",
         "--cores", "1", "--nolock", "--config", f"results_dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    commands = [line for line in run.stdout.splitlines() if "-m sedmap" in line]
    assert commands, run.stdout[-2000:]  # the model grid, at least
    for line in commands:
        first = shlex.split(line.split("Shell command:")[-1].strip())[0]
        # the venv's interpreter (bin/python or bin/python3 of the same venv)
        assert Path(first).parent == Path(sys.executable).parent, line[:200]
        assert Path(first).name.startswith("python"), line[:200]
