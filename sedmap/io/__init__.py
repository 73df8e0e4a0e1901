"""The one data model of sedmap: the on-disk layout of every product.

See ``docs/products.md`` for the layouts.
"""

from .atomic import atomic_path  # noqa: F401
from .binmap import BinMap, read_bin_map, write_bin_map  # noqa: F401
from .fitresult import FitResult, read_fit_result, write_fit_result  # noqa: F401
from .fluxcube import Filters, FluxCube, read_flux_cube, write_flux_cube  # noqa: F401
from .maps import MapSet, PropertyMap, read_map_set, write_map_set  # noqa: F401
from .modelgrid import (  # noqa: F401
    ModelGrid,
    grid_hash,
    model_grid_writer,
    read_model_grid,
    read_ssp_library,
)
from .provenance import config_hash, provenance_attrs, provenance_header  # noqa: F401
from .sfhgroups import SFHGroups, read_sfh_groups, write_sfh_groups  # noqa: F401
from .specphoto import SpecPhotoCube, read_spec_photo, write_spec_photo  # noqa: F401

