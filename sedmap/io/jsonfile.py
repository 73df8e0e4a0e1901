"""JSON products (``accuracy.json``, ``population_prior.json``, the image grid's
``grid.json``): written atomically with sorted keys (the same configuration gives
the same bytes), read with a one-line error for a missing or damaged file."""

import json
from pathlib import Path

from ..errors import InputError
from .atomic import atomic_path


def write_json(obj, path, indent=2):
    """Write ``obj`` to ``path`` as JSON, atomically; return the path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=indent, sort_keys=True) + "\n")
    return Path(path)


def read_json(path, keys=()):
    """The JSON object of ``path``, checked to hold ``keys``."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("file not found.", path,
                         "check the path, or run the pipeline stage that makes it.") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"not a readable JSON file ({err}).", path,
                         "delete it and run the stage that makes it again.") from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise InputError(f"lacks the keys {missing}.", path,
                         "delete it and run the stage that makes it again.")
    return obj
