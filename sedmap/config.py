"""Configuration: defaults, galaxy files, validation and the model-grid key.

A run's configuration is ``config/config.yaml`` (the defaults) deep-merged
with one or more galaxy files (``config/galaxies/NAME.yaml``). It is checked
against the JSON Schema ``config/schema.yaml``; a bad value raises
:class:`sedmap.errors.InputError` with one plain line that names the key
(``models.sfh``) and what is allowed there.

Both YAML files live in the repository's ``config/`` folder, found from this
file: the repository root is the parent of the ``sedmap/`` package.
"""

import math
from pathlib import Path

from .errors import InputError
from .filters import get_filter
from .fit.methods import get_method
from .ifs.bands import cube_band_specs
from .io.provenance import config_hash
from .io.yamlfile import deep_merge, read_yaml  # noqa: F401 (part of this module's API)
from .mock import merge_mock_config
from .priors import build_priors, correlation_from, param_ranges
from .schema import (
    coerce_strings,
    format_number,
    kind_words,
    normalise_numbers,
    show_value,
    to_input_error,
)
from .sps.cosmology import age_of_universe_gyr, get_cosmology
from .sps.engine import model_param_names

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
DEFAULTS_PATH = CONFIG_DIR / "config.yaml"
SCHEMA_PATH = CONFIG_DIR / "schema.yaml"

GRID_PREFIX = "grid_"

__all__ = [
    "DEFAULTS_PATH",
    "SCHEMA_PATH",
    "deep_merge",
    "grid_key",
    "load_config",
    "load_schema",
    "read_yaml",
    "validate_config",
]


# ---------------------------------------------------------------- reading


def _schema_file():
    if not SCHEMA_PATH.is_file():
        raise InputError(
            "the configuration schema is missing; sedmap reads it from the repository's "
            "config/ folder.",
            path=SCHEMA_PATH,
            fix="run sedmap from a checkout installed with 'pip install -e .'.",
        )
    return SCHEMA_PATH


def load_schema():
    """The configuration JSON Schema (``config/schema.yaml``) as a dict."""
    return read_yaml(_schema_file())


def load_config(*paths, validate=True):
    """Load the defaults and merge galaxy file(s) over them, in order.

    Parameters
    ----------
    *paths : str or os.PathLike
        Galaxy YAML files; later files win.
    validate : bool
        Validate the result and fill defaults (:func:`validate_config`).

    Returns
    -------
    dict
        The merged (and, by default, validated) configuration.
    """
    config = read_yaml(DEFAULTS_PATH) if DEFAULTS_PATH.is_file() else {}
    for path in paths:
        config = deep_merge(config, read_yaml(path))
    if validate:
        config = validate_config(config)
    return config


# ------------------------------------------------------------- samples

SHEET_COLUMNS = ("galaxy", "configfile")


def section(name, values=None):
    """A configuration section with the schema's defaults filled: ``values`` (a dict,
    possibly partial) merged over the defaults of section ``name`` and checked
    against the schema (:func:`validate_config`, without the checks that tie it to
    other sections). For library callers and tests that set a few keys of one
    stage's section; the stages read every key they use from it.
    """
    config = load_config()
    config[name] = deep_merge(config[name], dict(values or {}))
    validate_config(config, cross_checks=False)
    return config[name]


def read_sample_sheet(path):
    """Rows of a sample sheet: a TSV with a header ``galaxy<TAB>configfile``.

    Blank lines and lines starting with ``#`` are skipped. ``configfile``
    paths are relative to the working directory (the repository root).

    Returns
    -------
    list of (name, configfile) tuples, in sheet order.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError("sample sheet not found.", path=path,
                         fix="check sample_sheet, or leave it null for one galaxy.") from None
    rows = [ln.split("\t") for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows or tuple(c.strip() for c in rows[0]) != SHEET_COLUMNS:
        raise InputError(f"the header must be the tab-separated columns {SHEET_COLUMNS}.",
                         path=path, fix="write 'galaxy<TAB>configfile' as the first line.")
    out, seen = [], set()
    for i, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row]
        if len(cells) != 2 or not all(cells):
            raise InputError(f"row {i} has {len(cells)} cells; each row needs a galaxy name "
                             "and a config file, separated by one tab.", path=path)
        if cells[0] in seen:
            raise InputError(f"galaxy '{cells[0]}' is listed twice.", path=path,
                             fix="give every galaxy one row and a unique name.")
        seen.add(cells[0])
        out.append((cells[0], cells[1]))
    if not out:
        raise InputError("the sample sheet lists no galaxies.", path=path,
                         fix="add one row per galaxy under the header.")
    return out


def galaxy_configs(config):
    """One validated configuration per galaxy, ``{name: config}``.

    Without ``sample_sheet`` this is ``{config.galaxy.name: config}``. With one,
    each galaxy's file merges over ``config`` (defaults, ``--configfile`` files
    and ``--config`` values), its ``galaxy.name`` is the sheet's name, and the
    result is validated. Galaxies whose ``models`` sections are equal share a
    model grid (:func:`grid_key`).
    """
    sheet = config["sample_sheet"]
    if not sheet:
        return {config["galaxy"]["name"]: config}
    out = {}
    for name, path in read_sample_sheet(sheet):
        cfg = deep_merge({k: v for k, v in config.items() if k != "sample_sheet"},
                         read_yaml(path))
        cfg = deep_merge(cfg, {"galaxy": {"name": name}, "sample_sheet": None})
        try:
            out[name] = validate_config(cfg)
        except InputError as err:
            where = f"{err.path}: " if err.path else ""
            raise InputError(f"galaxy '{name}': {where}{err.problem}", path=path,
                             fix=err.fix) from None
    return out


# ------------------------------------------------------------- validation


def validate_config(config, cross_checks=True):
    """Check ``config`` against the schema and fill defaults, in place (with
    ``cross_checks``, also the checks that tie sections together, e.g. fit.spectrum
    needs ifs.enabled).

    Strings that spell a number or a boolean where the schema wants one are
    converted first (``snakemake --config`` passes every value as text), and
    whole numbers given for real-valued settings become floats, so that
    ``R: 150`` and ``R: 150.0`` give the same grid key.

    Returns
    -------
    dict
        ``config`` itself, completed.

    Raises
    ------
    InputError
        One line naming the key path and the allowed values.
    """
    import jsonschema
    from jsonschema.exceptions import relevance

    if not isinstance(config, dict):
        raise InputError(f"expected 'key: value' settings, found {kind_words(config)}.",
                         path="config")
    schema = load_schema()
    root = schema
    coerce_strings(config, schema, root)

    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        raise to_input_error(max(errors, key=relevance), root)

    _fill_defaults(config)
    normalise_numbers(config, schema, root)
    # The defaults themselves must be valid too.
    errors = list(validator.iter_errors(config))
    if errors:
        raise to_input_error(max(errors, key=relevance), root)
    _check_finite(config, "")
    if cross_checks:
        _cross_checks(config)
    return config


def _fill_defaults(config):
    """Fill schema defaults with snakemake's own validator (as the Snakefile would)."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(_schema_file()), set_default=True)
    except WorkflowError as exc:
        for arg in exc.args:
            if isinstance(arg, jsonschema.ValidationError):
                raise to_input_error(arg, load_schema()) from None
        raise InputError(str(exc).replace("\n", " "), path="config") from None


def grid_key(model_config):
    """Name of the model grid made from ``model_config`` (a validated ``models`` section).

    ``"grid_" + config_hash(model_config)``: equal sections (whatever their key
    order) share a grid; any change to a setting gives a new key.
    """
    return GRID_PREFIX + config_hash(model_config)


# ------------------------------------------------------------ cross checks


def _check_finite(value, where):
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{show_value(value)} is not allowed; expected a finite number.",
                         path=where or "config")
    if isinstance(value, dict):
        for key, child in value.items():
            _check_finite(child, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            _check_finite(child, f"{where}.{i}")


def _cross_checks(config):
    """Checks that tie two settings together (the schema cannot say these)."""
    models = config["models"]
    if models["backend"] == "bc03" and models["imf"] != "chabrier":
        raise InputError(
            f"{show_value(models['imf'])} is not allowed with models.backend bc03; "
            "allowed values with bc03: chabrier (set models.backend: fsps for other IMFs).",
            path="models.imf",
        )
    for name, value in models["params"].items():
        if isinstance(value, list) and value[0] > value[1]:
            raise InputError(
                f"{show_value(value)} is not allowed; expected [min, max] with min <= max.",
                path=f"models.params.{name}",
            )
    wave = models["wavelength"]
    pairs = [("min_aa", "max_aa")]
    if wave["spec_R"] > 0:  # the spec_* segment is only used then
        pairs.append(("spec_min_aa", "spec_max_aa"))
    for lo, hi in pairs:
        if wave[lo] >= wave[hi]:
            raise InputError(
                f"{format_number(wave[lo])} is not allowed; must be below "
                f"models.wavelength.{hi} ({format_number(wave[hi])}).",
                path=f"models.wavelength.{lo}",
            )
    for key, outside in (("spec_min_aa", wave["spec_min_aa"] < wave["min_aa"]),
                         ("spec_max_aa", wave["spec_max_aa"] > wave["max_aa"])):
        if outside and wave["spec_R"] > 0:
            raise InputError(
                f"{format_number(wave[key])} is outside the stored spectra; allowed range: "
                f"models.wavelength.min_aa to max_aa ({format_number(wave['min_aa'])} to "
                f"{format_number(wave['max_aa'])}).",
                path=f"models.wavelength.{key}",
            )
    window = config["binning"]["voronoi_window"]
    if window is not None:
        if window[0] >= window[1]:
            raise InputError(f"{show_value(window)} is not allowed; expected [min, max] with "
                             "min < max.", path="binning.voronoi_window")
        if not config["ifs"]["enabled"] or config["binning"]["method"] != "voronoi":
            raise InputError(f"{show_value(window)} is not allowed without IFS spectra and "
                             "Voronoi binning; set ifs.enabled: true and binning.method: "
                             "voronoi, or leave it null.", path="binning.voronoi_window")
    fit = config["fit"]
    fz = fit["free_redshift"]
    refits = get_method(fit["method"]).refits
    if fz["enabled"]:
        if not refits or fit["spectrum"]["enabled"]:
            raise InputError("true is not allowed with RDSPS alone (its grid is at galaxy.z) "
                             "or with fit.spectrum; set fit.method: mcmc (or map) and "
                             "fit.spectrum.enabled: false, or leave it false.",
                             path="fit.free_redshift.enabled")
        top = config["galaxy"]["z"] + fz["max_shift"]
        if top > models["redshift"] + 1e-12:
            raise InputError(f"{format_number(fz['max_shift'])} is not allowed: galaxy.z + "
                             f"max_shift = {format_number(top)} is above models.redshift "
                             f"({format_number(models['redshift'])}); lower it or raise "
                             "models.redshift.",
                             path="fit.free_redshift.max_shift")
    if fit["spectrum"]["enabled"] and not (config["ifs"]["enabled"] and refits):
        raise InputError(
            "true is not allowed without IFS spectra and a refit; set ifs.enabled: true "
            "and fit.method: mcmc or map (RDSPS fits the photometry only), or leave it false.",
            path="fit.spectrum.enabled",
        )
    z, zmax = config["galaxy"]["z"], models["redshift"]
    if z > zmax:
        raise InputError(
            f"{format_number(z)} is above models.redshift ({format_number(zmax)}), the highest "
            f"redshift the model grid is made for; allowed range: 0 <= z <= {format_number(zmax)} "
            f"(or raise models.redshift to at least {format_number(z)}).",
            path="galaxy.z",
        )
    _check_ages(config)
    _check_bands(config)
    _check_priors_and_chains(config)


# ------------------------------------------------------------ input paths


def resolve_input(config, path):
    """``path`` (a file a configuration names) against ``data_dir``.

    Relative paths in ``images.bands`` (``file``, ``unc_file``, ``weight_file``,
    ``var_file``, ``psf_file``) and ``ifs.cube`` are relative to ``data_dir``
    when it is set, else to the working directory (the repository root under
    Snakemake). Absolute paths and ``None`` pass through unchanged.
    """
    if path is None:
        return None
    base = config["data_dir"]
    p = Path(path)
    if base is None or p.is_absolute():
        return str(path)
    return (Path(base) / p).as_posix()


#: keys of a band spec that name files
BAND_FILE_KEYS = ("file", "unc_file", "weight_file", "var_file", "psf_file")


def band_specs(config):
    """The configured ``images.bands`` with their file paths resolved (:func:`resolve_input`),
    then the IFS cube's synthetic bands (``ifs.bands``: :func:`cube_bands`)."""
    return [{k: (resolve_input(config, v) if k in BAND_FILE_KEYS else v) for k, v in b.items()}
            for b in config["images"]["bands"]] + cube_bands(config)


def cube_bands(config):
    """Band specs of the synthetic images of the IFS cube (``ifs.bands``), which the
    ``cube_bands`` rule writes to ``results_dir/GALAXY/cube_bands/BAND.fits``;
    checked against the cube's headers (filters inside its wavelengths, its PSF)."""
    ifs = config["ifs"]
    if not (ifs["enabled"] and ifs["bands"]):
        return []
    if not ifs["cube"]:
        raise InputError("ifs.bands needs the cube (ifs.cube).", path="ifs.bands",
                         fix="set ifs.cube, or remove ifs.bands")

    out = Path(config["results_dir"]) / config["galaxy"]["name"] / "cube_bands"
    return cube_band_specs(resolve_input(config, ifs["cube"]), ifs["survey"], ifs["bands"],
                           out, reader=ifs["reader"] if ifs["survey"] == "wcs" else None,
                           psf_fwhm=ifs["psf_fwhm"], calib_err=ifs["bands_calib_err"])


# ---------------------------------------------------------------- bands

#: Longest pivot wavelength (Angstrom) of a band that traces the stars' mass (the
#: reddest optical/NIR band below it; redder bands see hot dust, PAHs)
STELLAR_MAX_PIVOT_AA = 40000.0


def configured_filters(config):
    """Canonical filter names of the configured bands, in order: ``images.bands``, or
    the mock's bands with ``mock.enabled``. InputError for an unknown or repeated filter."""
    if config["mock"]["enabled"]:
        bands, where = merge_mock_config(config["mock"]["settings"])["bands"], \
            "mock.settings.bands"
    else:
        bands, where = config["images"]["bands"], "images.bands"
        if config["ifs"]["enabled"]:
            bands = list(bands) + [{"filter": f} for f in config["ifs"]["bands"] or []]
    names = []
    for i, b in enumerate(bands):
        try:
            name = get_filter(b["filter"]).name
        except InputError as err:
            raise InputError(err.problem, path=f"{where}.{i}.filter", fix=err.fix) from None
        if name in names:
            raise InputError(f"filter {name!r} is listed twice (entries {names.index(name)} "
                             f"and {i}); each band must appear once.", path=f"{where}.{i}.filter",
                             fix="remove one of the two entries.")
        names.append(name)
    return names


def default_split(filters):
    """``maps.split`` picked from the configured bands: the stellar mass by the reddest
    band below 4 micron (optical/NIR), the SFR by the bluest band, the dust mass by the
    reddest band."""
    pivot = {n: get_filter(n).pivot_wavelength for n in filters}
    by_wave = sorted(filters, key=pivot.get)
    stellar = [n for n in by_wave if pivot[n] <= STELLAR_MAX_PIVOT_AA] or by_wave[:1]
    return {"log_mstar": stellar[-1], "log_sfr": by_wave[0], "log_mdust": by_wave[-1]}


def _check_bands(config):
    """Every setting that names a band names a configured one; fill the adaptive
    defaults (``maps.split``, ``sfh_groups.weight_band``) from the configured bands."""
    if not config["mock"]["enabled"] and not (config["images"]["bands"] or (
            config["ifs"]["enabled"] and config["ifs"]["bands"])):
        return  # no bands yet: the workflow refuses an empty images.bands itself
    filters = configured_filters(config)

    def check(name, where):
        if name is None:
            return None
        try:
            canon = get_filter(name).name
        except InputError:
            canon = name
        if canon not in filters:
            raise InputError(f"band {name!r} is not one of the configured bands "
                             f"({', '.join(filters)}).", path=where,
                             fix="name one of those bands (or null for the default).")
        return canon

    images, binning = config["images"], config["binning"]
    images["reference_band"] = check(images["reference_band"], "images.reference_band")
    binning["ref_band"] = check(binning["ref_band"], "binning.ref_band")
    binning["voronoi_band"] = check(binning["voronoi_band"], "binning.voronoi_band")
    thr = binning["sn_threshold"]
    if isinstance(thr, list):
        if len(thr) != len(filters):
            raise InputError(f"{len(thr)} S/N thresholds for {len(filters)} bands "
                             f"({', '.join(filters)}).", path="binning.sn_threshold",
                             fix="give one number, or one per band in the bands' order.")
    split = {**default_split(filters), **config["maps"]["split"]}
    config["maps"]["split"] = {q: check(b, f"maps.split.{q}") for q, b in split.items()}
    weight = config["sfh_groups"]["weight_band"]
    config["sfh_groups"]["weight_band"] = (check(weight, "sfh_groups.weight_band")
                                           if weight is not None
                                           else config["maps"]["split"]["log_mstar"])


def _check_ages(config):
    """The models' ages fit in the universe at ``models.redshift``."""
    models = config["models"]
    if "log_age" not in models["params"]:
        return
    age = models["params"]["log_age"]
    top = max(age) if isinstance(age, list) else age
    cosmo = get_cosmology(**models["cosmology"])
    tmax = age_of_universe_gyr(models["redshift"], cosmo)
    if top > math.log10(tmax) + 1e-9:
        raise InputError(f"{format_number(top)} is older than the universe at models.redshift "
                         f"{format_number(models['redshift'])} ({tmax:.2f} Gyr, log "
                         f"{math.log10(tmax):.3f}).", path="models.params.log_age",
                         fix=f"keep log_age <= {math.log10(tmax):.3f} (or lower "
                             "models.redshift).")


def _check_priors_and_chains(config):
    """``fit.priors`` and ``models.draw`` against the model's parameters and the grid's
    ranges, and the MCMC chain settings: what the fit jobs would refuse, refused now."""
    models, fit = config["models"], config["fit"]
    names = model_param_names(models["sfh"], models["dust_law"], models["nebular"],
                              "gas_logz" in models["params"], models["dust_emission"])
    ranges = param_ranges(models["params"], names)
    for key, cfg in (("models.draw", models["draw"]), ("fit.priors", fit["priors"])):
        try:
            pri = build_priors(names, ranges, {k: dict(v) if isinstance(v, dict) else v
                                              for k, v in (cfg or {}).items()})
            correlation_from(pri, cfg or {})
        except InputError as err:
            where = err.path if str(err.path or "").startswith(("fit.", "models.")) else key
            if key == "models.draw":
                where = str(where).replace("fit.priors", "models.draw")
            raise InputError(err.problem, path=where, fix=err.fix) from None
        except (TypeError, ValueError) as err:
            raise InputError(f"not a valid prior ({err}).", path=key,
                             fix="see config/schema.yaml for the prior forms and their "
                                 "keys.") from None
    n_free = sum(1 for n in names if ranges[n][1] - ranges[n][0] > 1e-5) + 1  # + mass
    get_method(fit["method"]).check(fit, n_free)
