"""YAML settings files: reading them (one line naming the file on any problem) and
merging one over another (a galaxy file over the defaults, ``--config`` over both)."""

import copy
from pathlib import Path

import yaml

from ..errors import InputError
from .atomic import atomic_path


def read_yaml(path):
    """Read a YAML file that holds a mapping; an empty file reads as ``{}``.

    Raises
    ------
    InputError
        The file is missing, is not YAML, or does not hold ``key: value`` lines.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("file not found.", path=path, fix="check the path.") from None
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror}).", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = f" ({exc.problem})" if getattr(exc, "problem", None) else ""
        raise InputError(
            f"not valid YAML{where}{what}.", path=path,
            fix="check the indentation, colons and brackets there."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"expected 'key: value' settings, found {type(data).__name__}.", path=path
        )
    return data


def deep_merge(base, override):
    """A new dict: ``base`` updated by ``override``, nested mappings merged key by key.

    Lists and scalars in ``override`` replace those in ``base``; neither input
    is changed.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_yaml(data, path):
    """Write a mapping to ``path`` as YAML (block style, keys in order), atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    return Path(path)
