"""``sedmap run``: the workflow from one command, with the configuration checked first.

It does what ``snakemake --configfile FILE --cores N`` does, and three things
Snakemake itself cannot:

* ``--config key.sub=value`` overrides with dotted keys (Snakemake's ``--config``
  takes top-level keys only), each validated like the file: a bad one is one line
  naming the key, not a traceback;
* a YAML error names the file and the line, before Snakemake starts;
* the lock that a killed run (``kill -9``, a lost node) leaves on the working
  folder is released when no Snakemake process works there any more (Snakemake
  would refuse every rerun until ``--unlock``); a live run's lock is kept.

Everything after ``--`` goes to Snakemake unchanged (``--report``, ``--profile``,
``-n``, ...). A run that succeeds ends with a summary (:func:`run_summary`): the
time and peak memory of each stage, the bins, and where the products are.
"""

import os
import subprocess
import sys
from pathlib import Path

import yaml

from .config import deep_merge, galaxy_configs, load_config, validate_config
from .errors import InputError
from .fit.methods import get_method
from .io.paths import LOGS_DIR, MODELS_DIR, PRODUCTS, product_path
from .io.yamlfile import write_yaml


def parse_override(text):
    """``"fit.mcmc.nsteps=2000"`` -> ``{"fit": {"mcmc": {"nsteps": 2000}}}``.

    The value is read as YAML (``0.02`` a number, ``[g, r]`` a list, ``true`` a
    boolean, anything else a string).

    Raises
    ------
    InputError
        No ``=``, an empty key or key part, or a value that is not YAML.
    """
    key, sep, value = str(text).partition("=")
    parts = key.strip().split(".")
    if not sep and str(text).lower().endswith((".yaml", ".yml")):
        raise InputError(f"'{text}' is a file, and --config takes KEY=VALUE settings.",
                         path="--config", fix=f"give galaxy files before the options: "
                         f"sedmap COMMAND {text} --config key=value")
    if not sep or not all(p.strip() for p in parts):
        raise InputError(f"'{text}' is not KEY=VALUE.", path="--config",
                         fix="write settings as section.key=value, e.g. fit.sys_err=0.02")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise InputError(f"the value of '{key}' is not valid YAML ({exc.problem})",
                         path="--config", fix="quote the value") from None
    out = parsed
    for part in reversed(parts):
        out = {part.strip(): out}
    return out


def resolve_config(configfiles=(), overrides=()):
    """The validated configuration of ``configfiles`` (merged over the defaults, in
    order) and the dotted ``overrides``; also returns the overrides as one dict.

    Raises
    ------
    InputError
        A file is missing or is not YAML (file and line named), an override is
        malformed, or the result does not validate (the key named; an error
        that comes from an override says so).
    """
    extra = {}
    for text in overrides:
        extra = deep_merge(extra, parse_override(text))
    merged = deep_merge(load_config(*configfiles, validate=False), extra)
    try:
        config = validate_config(merged)
        galaxy_configs(config)
    except InputError as err:
        keys = _dotted_keys(extra)
        if extra and err.path in keys:
            raise InputError(err.problem, path=f"--config {err.path}", fix=err.fix) from None
        raise
    return config, extra


def _dotted_keys(tree, prefix=""):
    out = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.append(name)
        if isinstance(value, dict):
            out += _dotted_keys(value, name + ".")
    return out


def snakefile():
    """The Snakefile of this checkout (sedmap runs from a checkout installed with
    ``pip install -e .``)."""
    path = Path(__file__).resolve().parents[1] / "Snakefile"
    if not path.is_file():
        raise InputError("the workflow's Snakefile is not beside the sedmap package",
                         path=path, fix="install sedmap from a checkout with "
                                        "'pip install -e .' and run it there")
    return path


def _snakemake_pids(workdir):
    """Process ids of the Snakemake processes whose working folder is ``workdir``
    (from /proc); ``None`` where /proc cannot tell (not Linux)."""
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None
    me, found = os.getpid(), []
    workdir = Path(workdir).resolve()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        # the snakemake entry point, not jobs of a run ("python -m snakemake" too)
        if any(part.endswith(b"snakemake") for part in cmd[:3]) and cwd == workdir:
            found.append(int(entry.name))
    return found


def stale_lock(workdir="."):
    """Whether ``workdir`` holds a Snakemake lock that no running process owns.

    Returns
    -------
    bool or None
        True: locked, and no Snakemake process works in ``workdir`` (a killed
        run's lock); False: not locked, or a live run holds it; None: locked, and
        this system cannot list processes.
    """
    locks = Path(workdir) / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return False
    pids = _snakemake_pids(workdir)
    if pids is None:
        return None
    return not pids


def snakemake_command(configfiles, override_file=None, cores=None, extra=()):
    """The Snakemake command line (a list) of a run."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile())]
    files = [str(f) for f in configfiles] + ([str(override_file)] if override_file else [])
    if files:
        cmd += ["--configfile", *files]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    return cmd + list(extra)


def run(configfiles=(), overrides=(), cores=None, extra=(), workdir="."):
    """Check the configuration, release a killed run's lock, and run Snakemake.

    Parameters
    ----------
    configfiles : list of path
        Galaxy YAML files, merged in order over ``config/config.yaml``.
    overrides : list of str
        ``key.sub=value`` settings, applied last.
    cores : int or str, optional
        Snakemake's ``--cores`` (the default profile uses all).
    extra : list of str
        More Snakemake arguments.

    Returns
    -------
    int
        Snakemake's exit status.

    Raises
    ------
    InputError
        The configuration is bad (before anything runs).
    """
    config, extra_cfg = resolve_config(configfiles, overrides)
    override_file = None
    if extra_cfg:
        # Snakemake reads the overrides as one more config file, merged last
        override_file = Path(config["results_dir"]) / LOGS_DIR / "run" / "overrides.yaml"
        write_yaml(extra_cfg, override_file)
    state = stale_lock(workdir)
    if state:
        print("sedmap run: a killed run left its lock on this folder and no Snakemake "
              "process works here; releasing it", file=sys.stderr)
        subprocess.run(snakemake_command(configfiles, override_file, extra=["--unlock"]),
                       cwd=workdir, check=False, stdout=subprocess.DEVNULL)
    elif state is None:
        print("sedmap run: the folder is locked; if no other run works here, run "
              "'sedmap run ... -- --unlock' once", file=sys.stderr)
    status = subprocess.run(snakemake_command(configfiles, override_file, cores, extra),
                            cwd=workdir, check=False).returncode
    if status == 0 and not {"-n", "--dry-run", "--dryrun", "--unlock"} & set(extra):
        print(run_summary(config), file=sys.stderr)
    return status


def _stage(name):
    """The stage a benchmark file (its path under logs/benchmarks/) belongs to."""
    for prefix, stage in (("grid_", "models"), ("calibrate_", "images"), ("match_", "images"),
                          ("image_grid", "images"), ("fluxmap", "images"),
                          ("cube_band", "ifs"), ("specphoto", "ifs"), ("binmap_plot", "binning"),
                          ("binning", "binning"), ("rdsps", "fit (RDSPS)"),
                          ("job_", "fit (refit)"), ("bin_", "fit (refit)"), ("maps", "maps"),
                          ("summary", "maps"),
                          ("sfh_groups", "sfh groups"), ("accuracy", "accuracy"),
                          ("mock", "mock")):
        if name.startswith(prefix):
            return stage
    return name


#: what each stage leaves on disk, relative to results_dir/GALAXY ("models": to
#: results_dir, shared by the galaxies)
STAGE_PRODUCTS = {stage: [PRODUCTS[n] for n in names] for stage, names in {
    "mock": ["mock"], "models": [], "images": ["images", "fluxmap"],
    "ifs": ["specphoto", "cube_bands"], "binning": ["binmap"], "fit (RDSPS)": ["rdsps"],
    "fit (refit)": ["fits"], "maps": ["maps", "profiles", "plots", "summary"],
    "sfh groups": ["sfh_groups"], "accuracy": ["accuracy"]}.items()}


def _disk_mb(paths):
    """Megabytes under ``paths`` (files, or folders walked)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total / 1e6


def run_summary(config):
    """A few lines on a finished run: CPU and wall seconds, peak memory and disk per
    stage (Snakemake's benchmark files under ``results_dir/logs/benchmarks``, a
    stage's jobs summed; the products of :data:`STAGE_PRODUCTS`), the number of
    bins, and where the maps, plots, report page and logs are."""
    import csv

    results = Path(config["results_dir"])
    bench = results / LOGS_DIR / "benchmarks"
    stages = {}
    for tsv in sorted(bench.rglob("*.tsv")):
        try:
            with open(tsv) as fh:
                rows = list(csv.DictReader(fh, delimiter="\t"))
        except OSError:
            continue
        if not rows:
            continue
        row = rows[-1]
        st = stages.setdefault(_stage(tsv.stem), [0.0, 0.0, 0, 0.0])
        st[0] += float(row.get("s") or 0)
        cpu = row.get("cpu_time")
        st[1] += float(cpu) if cpu not in (None, "", "NA") else 0.0
        st[2] += 1
        st[3] = max(st[3], float(row.get("max_rss") or 0) if row.get("max_rss") not in
                    ("", "NA", None) else 0.0)
    lines = ["", "sedmap run: done. Time per stage (jobs summed; benchmark files in "
             f"{bench}):"]
    order = ["mock", "models", "images", "ifs", "binning", "fit (RDSPS)", "fit (refit)", "maps",
             "sfh groups", "accuracy"]
    refit = f"fit ({get_method(config['fit']['method']).label})"  # fit.method's jobs
    galaxies = list(galaxy_configs(config))
    for name in sorted(stages, key=lambda k: (order.index(k) if k in order else len(order), k)):
        wall, cpu, n, rss = stages[name]
        where = [results / MODELS_DIR] if name == "models" else \
            [results / g / p for g in galaxies for p in STAGE_PRODUCTS.get(name, [])]
        label = refit if name == "fit (refit)" else name
        lines.append(f"  {label:<12} {n:>3} job{'s' if n > 1 else ' '}  {wall:8.1f} s wall  "
                     f"{cpu:8.1f} s CPU  peak {rss:7.0f} MB  disk {_disk_mb(where):8.1f} MB")
    from astropy.io import fits

    for name in galaxies:
        bm = product_path(results, name, "binmap")
        if bm.is_file():
            with fits.open(bm) as h:
                flags = h["BINS"].data["flag"]
            lines.append(f"  {name}: {flags.size} bins ({int((flags != 0).sum())} flagged)")
        for what, path in (("maps", product_path(results, name, "maps")),
                           ("plots", product_path(results, name, "plots")),
                           ("summary", product_path(results, name, "summary")),
                           ("logs", results / LOGS_DIR / name)):
            if path.exists():
                lines.append(f"    {what:<6} {path}")
    lines.append("  report (every figure, the summary page): add '-- --report report.html' to "
                 "the same command")
    return "\n".join(lines)
