"""The SPS engine: SSP libraries -> batched CSP spectra, photometry and derived quantities."""

from .engine import DERIVED, DUST_LAWS, IGM_MODELS, PARAM_INFO, SFH_FORMS, SPSModel  # noqa: F401
from .ssp import SSPLibrary, age_bin_edges, load_library  # noqa: F401
from .wavelength import make_wavelength_grid  # noqa: F401
