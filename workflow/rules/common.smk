# Shared set-up: import the checkout's sedmap, validate the config, and
# the names every rule needs (results folder, model-grid key).

import sys
from pathlib import Path

# Use this checkout's library, whatever else is installed.
sys.path.insert(0, str(Path(workflow.basedir)))

from sedmap.config import grid_key, validate_config  # noqa: E402
from sedmap.errors import InputError  # noqa: E402
from sedmap.io.provenance import config_hash  # noqa: E402

try:
    validate_config(config)  # fills defaults in place
except InputError as _err:
    # One plain line, no traceback, and a non-zero exit.
    print(f"sedmap: bad configuration: {_err}", file=sys.stderr)
    sys.exit(1)

RESULTS = Path(config["results_dir"]).as_posix()  # "results/" -> "results"
GALAXY = config["galaxy"]["name"]
GRID = grid_key(config["models"])
GRID_FILE = f"{RESULTS}/models/{GRID}.h5"


wildcard_constraints:
    grid=r"grid_[0-9a-f]{12}",
    galaxy=r"[A-Za-z0-9_.-]+",


def models_for_grid(wildcards):
    """The models section whose key is wildcards.grid (the configured one)."""
    if wildcards.grid != GRID:
        raise ValueError(
            f"no models section in this config has grid key {wildcards.grid}; "
            f"this config's is {GRID}."
        )
    return config["models"]


# ------------------------------------------------------------------ galaxy
from sedmap.images.pipeline import PSF_KEYS  # noqa: E402

GDIR = f"{RESULTS}/{GALAXY}"
MOCK = bool(config["mock"]["enabled"])
if MOCK:
    from sedmap.mock import mock_band_specs  # noqa: E402

    BANDS = mock_band_specs(config["mock"]["settings"], f"{GDIR}/mock")
else:
    BANDS = list(config["images"]["bands"])
if not BANDS:
    print("sedmap: bad configuration: images.bands is empty; list the bands "
          "(docs/surveys.md) or set mock.enabled: true", file=sys.stderr)
    sys.exit(1)
BAND_SPEC = {b["filter"]: dict(b) for b in BANDS}
FILTER_NAMES = list(BAND_SPEC)
FILE_KEYS = ("file", "unc_file", "weight_file", "var_file")


def raw_files(wildcards):
    """Every file a band's config names (tracked as inputs)."""
    spec = BAND_SPEC[wildcards.band]
    return [spec[k] for k in FILE_KEYS if spec.get(k)]


def band_spec_without_psf(name):
    return {k: v for k, v in BAND_SPEC[name].items() if k not in PSF_KEYS}


def band_psf(name):
    return {k: v for k, v in BAND_SPEC[name].items() if k in PSF_KEYS}


def psf_files(name):
    f = BAND_SPEC[name].get("psf_file")
    return [f] if f else []


# provenance hash of each stage: the config sections the product depends on
from sedmap import __version__ as SEDMAP_VERSION  # noqa: E402


def stage_hash(*sections):
    """Provenance hash: the sections a product depends on, and the sedmap version
    (so upgrading sedmap re-runs the stages, as library code is not a rule's code)."""
    return config_hash({"sedmap": SEDMAP_VERSION, **{s: config[s] for s in sections}})


HASH_IMAGES = stage_hash("galaxy", "mock", "images")
HASH_BINNING = stage_hash("galaxy", "mock", "images", "binning")
HASH_FIT = stage_hash("galaxy", "mock", "images", "binning", "models", "fit")
HASH_MAPS = stage_hash("galaxy", "mock", "images", "binning", "models", "fit", "maps")


wildcard_constraints:
    band="|".join(FILTER_NAMES),
    bin=r"[0-9]+",
