"""sedmap: pixel-resolved SED fitting of galaxies.

Stages: images -> ifs -> binning -> models -> fit -> maps -> sfh groups.
Every stage is a library function here, a ``sedmap`` subcommand and a
Snakemake rule.
"""

__version__ = "0.2.0"

from .errors import InputError, SedmapError  # noqa: F401
