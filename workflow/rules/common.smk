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
