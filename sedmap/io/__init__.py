"""The one data model of sedmap: the on-disk layout of every product.

See ``docs/products.md`` for the layouts.
"""

from .atomic import atomic_path  # noqa: F401
from .provenance import config_hash, provenance_attrs, provenance_header  # noqa: F401
