"""Fixtures shared by test files."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: test files that use the session's ``demo`` run: under pytest-xdist they run on one
#: worker, so the demo runs once
DEMO_USERS = {"test_demo", "test_slurm"}


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``--dist loadfile``, pyproject.toml) a test file runs whole on
    one worker, so its module fixtures (a demo run, a mock) are made once; the files
    that use the session's ``demo`` run count as one file. (``loadgroup`` marks do not
    reach xdist 3.8's scheduler under pytest 9.2.)"""
    from xdist.scheduler import LoadFileScheduling

    class DemoTogether(LoadFileScheduling):
        def _split_scope(self, nodeid):
            scope = super()._split_scope(nodeid)
            return "demo" if Path(scope).stem in DEMO_USERS else scope

    if config.getoption("dist") == "loadfile":
        return DemoTogether(config, log)
    return None


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The README demo run once per session (tests/test_demo.py checks it; the
    SLURM test starts from its images). Returns its ``results/demo`` folder;
    tests must not change what is in it.

    ``SEDMAP_TEST_DEMO=DIR`` reuses a finished demo run made with this code
    (``--config results_dir=DIR``; DIR/demo is returned) when iterating on one test."""
    import os

    if os.environ.get("SEDMAP_TEST_DEMO"):
        return Path(os.environ["SEDMAP_TEST_DEMO"]) / "demo"
    out = tmp_path_factory.mktemp("demo")
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--configfile", "config/galaxies/demo.yaml",
         "--cores", "2", "--nolock", "--config", f"results_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out / "demo"


def _checkout_status():
    """The checkout's untracked, changed and ignored paths (``git status``), but for
    Python's byte-code caches and Snakemake's own metadata folder (``.snakemake/``,
    which Snakemake keeps in the folder it runs from); None outside a git checkout."""
    try:
        # every file (not folders), so a write inside an untracked or ignored folder shows
        out = subprocess.run(["git", "status", "--porcelain", "--ignored",
                              "--untracked-files=all"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line for line in out.splitlines()
            if "__pycache__" not in line and ".snakemake/" not in line}


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean():
    """The suite writes only to temporary folders: after it, ``git status`` (ignored
    files included) shows nothing that was not there before."""
    before = _checkout_status()
    yield
    after = _checkout_status()
    if before is not None and after is not None:
        new = sorted(after - before)
        assert not new, f"the tests wrote into the checkout: {new}"
