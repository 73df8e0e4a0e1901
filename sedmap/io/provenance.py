"""Provenance keys carried by every product.

FITS headers carry ``SEDMAPV`` (package version) and ``CONFHASH`` (hash of
the configuration that made the product); HDF5 files carry the same values
as the root attributes ``sedmap_version`` and ``config_hash``.
"""

import hashlib
import json

import numpy as np

from .. import __version__

VERSION_KEY = "SEDMAPV"
HASH_KEY = "CONFHASH"


def _default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def canonical_json(obj):
    """JSON text of ``obj`` with sorted keys and no whitespace (stable across runs)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def config_hash(obj, length=12):
    """Hex SHA-256 of the canonical JSON of ``obj``, cut to ``length`` characters.

    Equal configurations give equal hashes whatever their key order.
    """
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def provenance_header(header, confhash=None):
    """Add ``SEDMAPV`` and ``CONFHASH`` to an astropy FITS header, in place."""
    header[VERSION_KEY] = (__version__, "sedmap version")
    header[HASH_KEY] = (confhash or "none", "hash of the config that made this")
    return header


def provenance_attrs(attrs, confhash=None):
    """Add ``sedmap_version`` and ``config_hash`` to an h5py attribute set, in place."""
    attrs["sedmap_version"] = __version__
    attrs["config_hash"] = confhash or "none"
    return attrs
