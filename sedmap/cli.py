"""The ``sedmap`` command: one subcommand per pipeline stage.

Errors from the library (``sedmap.errors.SedmapError``) become one line on
stderr and exit status 2; the library itself never exits.
"""

import argparse
import json
import sys

from . import __version__
from .errors import InputError, SedmapError


def _cmd_models(args):
    from .io.provenance import config_hash
    from .models import build_grid

    if args.models_json:  # the workflow's way: the rule's params, as JSON
        cfg = {"models": json.loads(args.models_json), "results_dir": "results"}
    else:
        cfg = _load(args)
    mc = cfg["models"]
    if args.n_models is not None:
        mc["n_models"] = args.n_models
    if args.out is None:
        from .config import grid_key
        from .io.paths import grid_path

        args.out = grid_path(cfg["results_dir"], grid_key(mc))
    path = build_grid(mc, args.out, config_hash=args.confhash or config_hash(mc),
                      progress=not args.quiet)
    if path is not None and not args.quiet:
        print(path)


def _cmd_rdsps(args):
    """RDSPS of every bin (the workflow's rdsps rule; MPI-aware)."""
    from .config import section
    from .stages import run_rdsps

    run_rdsps(args.binmap, args.grid, args.z, args.out, section("fit", json.loads(args.fit_json)),
              confhash=args.confhash, grid_hash=args.grid_hash)


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


def _load(args):
    """The validated configuration of the galaxy files and ``--config KEY=VALUE``
    overrides, as ``sedmap run`` reads them."""
    from .run import resolve_config

    return resolve_config(args.configfile, args.config)[0]


def _config_args(parser):
    """The configuration arguments every subcommand that reads one takes."""
    parser.add_argument("configfile", nargs="*", help="galaxy YAML file(s), merged in order "
                                                      "over config/config.yaml")
    parser.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE",
                        help="settings applied last, with dotted keys "
                             "(results_dir=/data/run1 fit.sys_err=0.02)")


def _gdir(cfg):
    """``results_dir/GALAXY`` of a configuration (:mod:`sedmap.io.paths`)."""
    from .io.paths import galaxy_dir

    return galaxy_dir(cfg["results_dir"], cfg["galaxy"]["name"])


def _path(cfg, name):
    """The path of a configuration's product ``name`` (:data:`sedmap.io.paths.PRODUCTS`)."""
    from .io.paths import product_path

    return product_path(cfg["results_dir"], cfg["galaxy"]["name"], name)


def _cmd_mock(args):
    from .stages import run_mock

    cfg = _load(args)
    out = args.out or _path(cfg, "mock")
    man = run_mock(cfg["mock"]["settings"], cfg["galaxy"], out, models_config=cfg["models"],
                   progress=not args.quiet)
    print(man["truth"])


def _cmd_images(args):
    """All imaging steps in one process (the workflow runs them as separate jobs)."""
    from .config import band_specs
    from .images.pipeline import run_all
    from .mock import mock_band_specs

    cfg = _load(args)
    gdir = _gdir(cfg)
    bands = (mock_band_specs(cfg["mock"]["settings"], _path(cfg, "mock"))
             if cfg["mock"]["enabled"] else band_specs(cfg))
    print(run_all(bands, cfg["galaxy"], cfg["images"], gdir, out_path=args.out,
                  plot_dir=_path(cfg, "plots")))


def _cmd_ifs(args):
    from .config import resolve_input
    from .stages import run_ifs

    cfg = _load(args)
    cube = resolve_input(cfg, cfg["ifs"]["cube"]) or _path(cfg, "mock_cube")
    print(run_ifs(cube, _path(cfg, "fluxmap"), args.out or _path(cfg, "specphoto"), cfg["ifs"]))


def _cmd_cube_bands(args):
    from .config import resolve_input
    from .stages import run_cube_bands

    cfg = _load(args)
    if not (cfg["ifs"]["cube"] and cfg["ifs"]["bands"]):
        raise InputError("no synthetic bands to make: ifs.cube and ifs.bands are needed.",
                         path="ifs.bands", fix="list the filters in ifs.bands (and ifs.cube)")
    out = args.out or _path(cfg, "cube_bands")
    for p in run_cube_bands(resolve_input(cfg, cfg["ifs"]["cube"]), cfg["ifs"]["bands"], out,
                            cfg["ifs"]):
        print(p)


def _cmd_binning(args):
    from .stages import run_binmap_plot, run_binning

    cfg = _load(args)
    spec = _path(cfg, "specphoto") if cfg["ifs"]["enabled"] else None
    out = run_binning(_path(cfg, "fluxmap"), args.out or _path(cfg, "binmap"), cfg["binning"],
                      specphoto_path=spec)
    run_binmap_plot(out, _path(cfg, "plots") / "binmap.png")
    print(out)


def _cmd_fit(args):
    from tqdm.auto import tqdm

    from .config import grid_key
    from .fit.methods import fit_jobs
    from .io import grid_hash, read_bin_map
    from .io.paths import bin_file, grid_path
    from .stages import run_fit_job, run_rdsps

    cfg = _load(args)
    grid = grid_path(cfg["results_dir"], grid_key(cfg["models"]))
    expected = grid_hash(cfg["models"])
    z = cfg["galaxy"]["z"]
    binmap, rdsps, fits = _path(cfg, "binmap"), _path(cfg, "rdsps"), _path(cfg, "fits")
    run_rdsps(binmap, grid, z, rdsps, cfg["fit"], grid_hash=expected)
    # the workflow's jobs (stacked ensembles), of the bins asked for or fit.method's
    jobs = fit_jobs(read_bin_map(binmap).flag, cfg["fit"], bins=args.bins or None)
    for job in tqdm(jobs, desc="fit", unit="job", disable=args.quiet):
        run_fit_job(job, binmap, grid, rdsps, z, [bin_file(fits, k) for k in job],
                    cfg["fit"], grid_hash=expected)


def _result_paths(cfg):
    """Every bin's fit file (:func:`sedmap.stages.bin_result_paths`): the refits under
    ``fits/`` (the workflow's job folders and the files ``sedmap fit`` writes), else
    RDSPS's."""
    from .io.paths import BIN_FILE, JOB_DIR
    from .stages import bin_result_paths

    fits = _path(cfg, "fits")
    refits = sorted(fits.glob(JOB_DIR.format("*"))) + sorted(fits.glob(BIN_FILE.format("*")))
    return bin_result_paths(_path(cfg, "binmap"), _path(cfg, "rdsps"), refits)


def _cmd_maps(args):
    from .stages import run_maps

    cfg = _load(args)
    print(run_maps(_path(cfg, "fluxmap"), _path(cfg, "binmap"), _result_paths(cfg),
                   args.out or _path(cfg, "maps"), cfg["maps"], plot_dir=_path(cfg, "plots"),
                   profiles_path=_path(cfg, "profiles"), cosmology=cfg["models"]["cosmology"]))


def _cmd_sfh_groups(args):
    from .stages import run_sfh_groups

    cfg = _load(args)
    print(run_sfh_groups(_path(cfg, "fluxmap"), _path(cfg, "binmap"), _result_paths(cfg),
                         args.out or _path(cfg, "sfh_groups"), cfg["sfh_groups"],
                         plot_path=_path(cfg, "plots") / "sfh_groups.png"))


def _cmd_run(args):
    from .run import run

    extra = list(args.passthrough)
    if args.dry_run:
        extra.append("--dry-run")
    return run(args.configfile, args.config, cores=args.cores, extra=extra)


def build_parser():
    p = argparse.ArgumentParser(prog="sedmap", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"sedmap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser(
        "models", help="build a model grid (HDF5); MPI-aware",
        description="Build the model grid the configuration's models section describes "
                    "(shared by every galaxy with the same section). Under mpiexec the "
                    "ranks share the models.",
        epilog="example: mpiexec -n 4 sedmap models config/galaxies/demo.yaml "
               "--config models.n_models=100000")
    _config_args(m)
    m.add_argument("--out", help="output .h5 (default: results_dir/models/<grid key>.h5)")
    m.add_argument("--n-models", type=int, help="override models.n_models")
    m.add_argument("--models-json", help="the models section as JSON (instead of the files; "
                                         "the workflow's way)")
    m.add_argument("--confhash", help="provenance hash to record (default: of the section)")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=_cmd_models)

    r = sub.add_parser(
        "rdsps", help="binmap.fits + model grid -> rdsps/bin_K.h5; MPI-aware",
        description="RDSPS fits of every bin, from explicit files (the workflow's rdsps "
                    "rule calls it so, under mpiexec when mpi.tasks > 1).",
        epilog="example: sedmap rdsps --binmap results/demo/binmap.fits --grid "
               "results/models/grid_KEY.h5 --z 0.01 --fit-json '{\"sys_err\": 0.01}' "
               "--out results/demo/rdsps")
    r.add_argument("--binmap", required=True)
    r.add_argument("--grid", required=True)
    r.add_argument("--z", type=float, required=True, help="redshift of the galaxy")
    r.add_argument("--fit-json", required=True, help="the fit section as JSON")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--confhash", help="provenance hash to record")
    r.add_argument("--grid-hash", help="the grid_hash the grid must carry (refused otherwise)")
    r.set_defaults(func=_cmd_rdsps)

    for name, func, what in (("mock", _cmd_mock, "make the mock galaxy (demo) with known truth"),
                             ("images", _cmd_images, "raw images -> fluxmap.fits"),
                             ("cube-bands", _cmd_cube_bands,
                              "IFS cube -> synthetic band images (ifs.bands), cube_bands/"),
                             ("ifs", _cmd_ifs, "IFS cube + fluxmap.fits -> specphoto.fits"),
                             ("binning", _cmd_binning, "fluxmap.fits -> binmap.fits"),
                             ("fit", _cmd_fit, "binmap.fits + model grid -> fits/bin_K.h5"),
                             ("maps", _cmd_maps, "fits -> maps.fits"),
                             ("sfh-groups", _cmd_sfh_groups,
                              "fits -> sfh_groups.fits (EMD k-means of the SFHs)")):
        sp = sub.add_parser(
            name, help=what, description=f"{what[0].upper()}{what[1:]} (one workflow stage; "
            "the products of the stages before it must exist under results_dir).",
            epilog=f"example: sedmap {name} config/galaxies/demo.yaml "
                   "--config results_dir=/tmp/demo")
        _config_args(sp)
        sp.add_argument("--out", help="output path (default: under results_dir/GALAXY/)")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "fit":
            sp.add_argument("--bins", type=int, nargs="+", help="only these bin ids")
        sp.set_defaults(func=func)

    rn = sub.add_parser(
        "run", help="run the workflow (Snakemake), the configuration checked first",
        description="Run the whole workflow: the configuration (files and --config "
                    "overrides) is validated first, a killed run's lock is released, "
                    "then Snakemake runs. Arguments after -- go to Snakemake.",
        epilog="example: sedmap run config/galaxies/demo.yaml --cores 2 "
               "--config fit.sys_err=0.02 -- --report report.html")
    _config_args(rn)
    rn.add_argument("--cores", help="CPU cores for Snakemake (default: the profile's, all)")
    rn.add_argument("-n", "--dry-run", action="store_true", help="show the jobs, run none")
    rn.set_defaults(func=_cmd_run)

    f = sub.add_parser("filters", help="list, show, add, remove or rename filters")
    f.add_argument("action", choices=["list", "show", "add", "remove", "rename"])
    f.add_argument("name", nargs="?")
    f.add_argument("new", nargs="?", help="new name (rename)")
    f.add_argument("--file", help="two-column text file: wavelength (AA), transmission (add)")
    f.add_argument("--overwrite", action="store_true")
    f.set_defaults(func=_cmd_filters)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = []
    if "--" in argv:  # the rest goes to Snakemake (sedmap run)
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    args = build_parser().parse_args(argv)
    args.passthrough = passthrough
    try:
        status = args.func(args)
    except SedmapError as exc:
        print(f"sedmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # a product of an earlier stage is missing
        print(f"sedmap {args.command}: error: {exc.filename}: not found. Fix: run the "
              "stages before this one (sedmap run CONFIG, or the earlier subcommands), or "
              "give the galaxy file whose results_dir holds it", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
