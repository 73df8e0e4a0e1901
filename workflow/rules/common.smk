# Shared set-up: import the checkout's sedmap, validate the config, read the
# sample sheet, and the names every rule needs (results folder, galaxies, grids).

import json
import re
import shlex
import sys
from pathlib import Path

# Use this checkout's library, whatever else is installed.
sys.path.insert(0, str(Path(workflow.basedir)))

from sedmap import __version__ as SEDMAP_VERSION  # noqa: E402
from sedmap.config import band_specs, galaxy_configs, grid_key, resolve_input, validate_config  # noqa: E402
from sedmap.errors import InputError  # noqa: E402
from sedmap.images.pipeline import PSF_KEYS  # noqa: E402
from sedmap.io.paths import LOGS_DIR, PRODUCTS, grid_path, job_dir  # noqa: E402
from sedmap.io.provenance import config_hash  # noqa: E402

try:
    validate_config(config)  # fills defaults in place
    # one validated configuration per galaxy: the sample sheet's, or this one
    GALAXIES = galaxy_configs(config)
except InputError as _err:
    # One plain line, no traceback, and a non-zero exit.
    print(f"sedmap: bad configuration: {_err}", file=sys.stderr)
    sys.exit(1)

RESULTS = Path(config["results_dir"]).as_posix()  # "results/" -> "results"

# The interpreter of the shell rules: the one running Snakemake (a venv need not be
# activated), or the conda env's with --use-conda.
from snakemake.settings.types import DeploymentMethod  # noqa: E402

PYTHON = ("python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
          else shlex.quote(sys.executable))

# MPI for the model-grid and RDSPS jobs: the launcher prefix of their shell
# commands, and the resources the SLURM executor turns into --ntasks. Not a
# param: the results are the same for any number of ranks, so it re-runs nothing.
MPI_TASKS = int(config["mpi"]["tasks"])
MPI_PREFIX = f"{config['mpi']['launcher']} -n {MPI_TASKS} " if MPI_TASKS > 1 else ""
MPI_RESOURCES = {"mpi": config["mpi"]["launcher"], "tasks": MPI_TASKS} if MPI_TASKS > 1 else {}
GDIR = f"{RESULTS}/{{galaxy}}"  # a galaxy's products (a rule pattern)
LOGDIR = f"{RESULTS}/{LOGS_DIR}"  # job logs and benchmarks live with the products they made
LOGS = LOGDIR + "/{galaxy}"
BENCH = LOGDIR + "/benchmarks"
GRIDS = {name: grid_key(cfg["models"]) for name, cfg in GALAXIES.items()}


def P(name, galaxy="{galaxy}"):
    """The path of product ``name`` (sedmap.io.paths.PRODUCTS) of ``galaxy`` (default:
    the rule pattern's wildcard)."""
    return f"{RESULTS}/{galaxy}/{PRODUCTS[name]}"


def gcfg(wildcards):
    """The configuration of wildcards.galaxy."""
    return GALAXIES[wildcards.galaxy]


def grid_file(wildcards):
    """The model grid that wildcards.galaxy uses (shared by equal models sections)."""
    return grid_path(RESULTS, GRIDS[wildcards.galaxy]).as_posix()


def models_for_grid(wildcards):
    """The models section whose key is wildcards.grid."""
    for name, key in GRIDS.items():
        if key == wildcards.grid:
            return GALAXIES[name]["models"]
    raise ValueError(f"no galaxy's models section has grid key {wildcards.grid}; "
                     f"the configured ones are {sorted(set(GRIDS.values()))}.")


# ------------------------------------------------------------------ bands
def _bands(name, cfg):
    if cfg["mock"]["enabled"]:
        from sedmap.mock import mock_band_specs

        return mock_band_specs(cfg["mock"]["settings"], P("mock", name))
    return band_specs(cfg)  # file paths resolved against data_dir


BAND_SPEC = {}  # {galaxy: {filter: band spec}}
for _name, _cfg in GALAXIES.items():
    _b = _bands(_name, _cfg)
    if not _b:
        print(f"sedmap: bad configuration: galaxy '{_name}': images.bands is empty; list "
              "the bands (docs/surveys.md) or set mock.enabled: true", file=sys.stderr)
        sys.exit(1)
    BAND_SPEC[_name] = {b["filter"]: dict(b) for b in _b}
FILE_KEYS = ("file", "unc_file", "weight_file", "var_file")


def is_mock(name):
    return bool(GALAXIES[name]["mock"]["enabled"])


def filters(name):
    return list(BAND_SPEC[name])


def raw_files(wildcards):
    """Every file a band's config names (tracked as inputs); a mock's raw folder."""
    if is_mock(wildcards.galaxy):
        return [f"{P('mock', wildcards.galaxy)}/raw"]
    spec = BAND_SPEC[wildcards.galaxy][wildcards.band]
    return [spec[k] for k in FILE_KEYS if spec.get(k)]


def band_spec_without_psf(wildcards):
    return {k: v for k, v in BAND_SPEC[wildcards.galaxy][wildcards.band].items()
            if k not in PSF_KEYS}


def band_psf(galaxy, band):
    return {k: v for k, v in BAND_SPEC[galaxy][band].items() if k in PSF_KEYS}


def psf_files(galaxy, band):
    f = BAND_SPEC[galaxy][band].get("psf_file")
    return [f] if f else []


# provenance hash of each stage: the config sections the product depends on
def stage_hash(*sections):
    """A function of wildcards: the provenance hash of the sections a product of
    wildcards.galaxy depends on, and the sedmap version (so upgrading sedmap
    re-runs the stages, as library code is not a rule's code)."""

    def _hash(wildcards):
        cfg = GALAXIES[wildcards.galaxy]
        return config_hash({"sedmap": SEDMAP_VERSION, **{s: cfg[s] for s in sections}})

    return _hash


HASH_IMAGES = stage_hash("galaxy", "mock", "images")


def calibration_hash(wildcards):
    """Provenance of one band's calibration: its own settings without the PSF, so
    that a changed PSF re-runs from PSF matching onwards, not the calibration."""
    cfg = GALAXIES[wildcards.galaxy]
    return config_hash({"sedmap": SEDMAP_VERSION, "galaxy": cfg["galaxy"], "mock": cfg["mock"],
                        "band": band_spec_without_psf(wildcards)})
#: the images settings PSF matching and resampling read (not the region, the
#: background or the flux map's): changing the others re-runs no match_band job
MATCH_KEYS = ("pixel_scale", "target_psf_fwhm", "stamp_arcsec", "stamp_center", "realign",
              "reference_band")


def match_hash(wildcards):
    """Provenance of one band's matched image: its band entry (PSF included), the
    galaxy, the mock and the images settings in MATCH_KEYS."""
    cfg = GALAXIES[wildcards.galaxy]
    return config_hash({"sedmap": SEDMAP_VERSION, "galaxy": cfg["galaxy"], "mock": cfg["mock"],
                        "band": band_spec_without_psf(wildcards),
                        "psf": band_psf(wildcards.galaxy, wildcards.band),
                        "images": {k: cfg["images"][k] for k in MATCH_KEYS}})


HASH_BINNING = stage_hash("galaxy", "mock", "images", "binning")
HASH_FIT = stage_hash("galaxy", "mock", "images", "binning", "models", "fit")
HASH_MAPS = stage_hash("galaxy", "mock", "images", "binning", "models", "fit", "maps")


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))


wildcard_constraints:
    grid=r"grid_[0-9a-f]{12}",
    galaxy=_alternatives(GALAXIES),
    band=_alternatives(f for name in GALAXIES for f in BAND_SPEC[name]),
    bin=r"[0-9]+",
