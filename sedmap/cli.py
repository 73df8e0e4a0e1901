"""The ``sedmap`` command: one subcommand per pipeline stage.

Errors from the library (``sedmap.errors.SedmapError``) become one line on
stderr and exit status 2; the library itself never exits.
"""

import argparse
import sys

from . import __version__
from .errors import SedmapError


def _cmd_models(args):
    from .config import load_config
    from .io.provenance import config_hash
    from .models import build_grid

    cfg = load_config(*args.config)
    mc = cfg["models"]
    if args.n_models is not None:
        mc["n_models"] = args.n_models
    if args.out is None:
        from .config import grid_key

        args.out = f"{cfg['results_dir']}/models/{grid_key(mc)}.h5"
    path = build_grid(mc, args.out, config_hash=config_hash(mc), progress=not args.quiet)
    if path is not None and not args.quiet:
        print(path)


def _cmd_filters(args):
    from . import filters

    if args.action == "list":
        for name in filters.list_filters():
            print(name)
    elif args.action == "show":
        f = filters.get_filter(args.name)
        print(f"{f.name}: pivot {f.pivot_wavelength:.1f} AA, effective "
              f"{f.effective_wavelength:.1f} AA, range {f.wave_min:.0f}-{f.wave_max:.0f} AA")
    elif args.action == "add":
        import numpy as np

        tab = np.loadtxt(args.file)
        filters.add_filter(args.name, tab[:, 0], tab[:, 1], overwrite=args.overwrite)
    elif args.action == "remove":
        filters.remove_filter(args.name)
    elif args.action == "rename":
        filters.rename_filter(args.name, args.new)


def build_parser():
    p = argparse.ArgumentParser(prog="sedmap", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"sedmap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="build a model grid (HDF5); MPI-aware")
    m.add_argument("--config", nargs="+", default=[],
                   help="galaxy YAML file(s) merged over config/config.yaml")
    m.add_argument("--out", help="output .h5 (default: results/models/<grid key>.h5)")
    m.add_argument("--n-models", type=int, help="override models.n_models")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=_cmd_models)

    f = sub.add_parser("filters", help="list, show, add, remove or rename filters")
    f.add_argument("action", choices=["list", "show", "add", "remove", "rename"])
    f.add_argument("name", nargs="?")
    f.add_argument("new", nargs="?", help="new name (rename)")
    f.add_argument("--file", help="two-column text file: wavelength (AA), transmission (add)")
    f.add_argument("--overwrite", action="store_true")
    f.set_defaults(func=_cmd_filters)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SedmapError as exc:
        print(f"sedmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
