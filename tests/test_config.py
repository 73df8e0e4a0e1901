"""Configuration: defaults, merging, one-line validation errors, grid keys."""

import copy
import re

import pytest
import yaml

from sedmap.config import (
    DEFAULTS_PATH,
    deep_merge,
    galaxy_configs,
    grid_key,
    load_config,
    load_schema,
    read_sample_sheet,
    read_yaml,
    validate_config,
)
from sedmap.errors import InputError
from sedmap.io.provenance import config_hash

SFH_CHOICES = ["tau", "delayed_tau", "log_normal", "gaussian", "double_power_law",
               "delayed_tau_burst"]
MODEL_KEYS = [
    "backend", "imf", "sfh", "dust_law", "nebular", "dust_emission", "igm", "cosmology",
    "redshift", "n_models", "seed", "chunk_size", "dtype", "wavelength", "params",
]
PARAM_NAMES = [
    "logzsol", "log_age", "log_tau", "log_t0", "log_alpha", "log_beta", "log_fburst",
    "log_tburst", "dust1", "dust2",
    "dust_index", "gas_logu", "gas_logz", "log_umin", "log_gamma", "log_qpah",
]


def error_of(config):
    with pytest.raises(InputError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message, f"error spans lines: {message!r}"
    return message


# ------------------------------------------------------------------ defaults


def test_defaults_validate():
    config = load_config()
    assert config["galaxy"] == {"name": "demo", "ra": 150.0, "dec": 2.0, "z": 0.02,
                                "ebv": 0.02}
    assert config["results_dir"] == "results"
    models = config["models"]
    assert models["backend"] == "bc03"
    assert models["sfh"] == "delayed_tau"
    assert models["n_models"] == 100000
    assert models["wavelength"]["max_aa"] == 1.0e7
    assert models["params"]["log_age"] == [-1.0, 1.1]
    assert "gas_logz" not in models["params"]


def test_schema_defaults_equal_config_yaml():
    """An empty config filled from the schema equals config/config.yaml."""
    from_schema = validate_config({})
    from_file = validate_config(read_yaml(DEFAULTS_PATH))
    assert from_schema == from_file


def test_partial_sections_are_completed():
    config = validate_config({"models": {"cosmology": {"H0": 67.7}}})
    assert config["models"]["cosmology"] == {"name": "flat_lcdm", "H0": 67.7, "Om0": 0.3}
    assert config["models"]["sfh"] == "delayed_tau"
    assert config["galaxy"]["name"] == "demo"


def test_schema_rejects_unknown_keys_everywhere():
    free_form = {"config.mock.settings", "config.fit.priors", "config.maps.split",
                 "config.models.draw"}  # keyed by parameter name; the library checks names

    def walk(schema, where):
        if schema.get("type") == "object" and where not in free_form:
            assert schema.get("additionalProperties") is False, where
        for name, sub in schema.get("properties", {}).items():
            walk(sub, f"{where}.{name}")

    walk(load_schema(), "config")


def test_demo_merges_over_defaults():
    config = load_config(DEFAULTS_PATH.parent / "galaxies" / "demo.yaml")
    assert config["galaxy"]["name"] == "demo"
    assert config["models"]["n_models"] == 800000
    assert config["models"]["wavelength"]["R"] == 100
    # keys the demo does not set keep their defaults
    assert config["models"]["wavelength"]["min_aa"] == 900.0
    assert config["models"]["params"]["dust2"] == [0.0, 3.0]


def test_deep_merge_leaves_inputs_alone():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    over = {"a": {"c": [3]}, "e": 2}
    kept = copy.deepcopy(base), copy.deepcopy(over)
    assert deep_merge(base, over) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert (base, over) == kept


def test_later_galaxy_files_win(tmp_path):
    one = tmp_path / "one.yaml"
    two = tmp_path / "two.yaml"
    one.write_text("galaxy: {name: first, z: 0.01}\n")
    two.write_text("galaxy: {name: second}\n")
    config = load_config(one, two)
    assert config["galaxy"]["name"] == "second"
    assert config["galaxy"]["z"] == 0.01


# -------------------------------------------------------------- bad values


def test_wrong_choice_names_key_and_allowed_values():
    message = error_of({"models": {"sfh": "foo"}})
    assert message.startswith("models.sfh:")
    assert "'foo'" in message
    for choice in SFH_CHOICES:
        assert choice in message


def test_unknown_key_names_allowed_keys():
    message = error_of({"models": {"sfhh": "tau"}})
    assert message.startswith("models.sfhh:")
    assert "unknown" in message
    for key in MODEL_KEYS:
        assert key in message


def test_unknown_top_level_key():
    message = error_of({"galaxies": {}})
    assert message.startswith("galaxies:")
    for key in ("galaxy", "results_dir", "models"):
        assert key in message


def test_unknown_parameter_names_allowed_parameters():
    message = error_of({"models": {"params": {"log_mass": [8, 12]}}})
    assert message.startswith("models.params.log_mass:")
    for name in PARAM_NAMES:
        assert name in message


@pytest.mark.parametrize(
    "config, key, words",
    [
        ({"galaxy": {"dec": 95}}, "galaxy.dec", "-90 <= dec <= 90"),
        ({"galaxy": {"ra": 360.0}}, "galaxy.ra", "0 <= ra < 360"),
        ({"galaxy": {"z": -0.1}}, "galaxy.z", "0 <= z <= 10"),
        ({"galaxy": {"ebv": -1}}, "galaxy.ebv", "ebv >= 0"),
        ({"models": {"n_models": 0}}, "models.n_models", "n_models >= 1"),
        ({"models": {"cosmology": {"Om0": 2}}}, "models.cosmology.Om0", "0 <= Om0 <= 1"),
        ({"models": {"wavelength": {"R": 0}}}, "models.wavelength.R", "R > 0"),
    ],
)
def test_out_of_range_names_the_range(config, key, words):
    message = error_of(config)
    assert message.startswith(f"{key}:")
    assert "range" in message
    assert words in message


def test_wrong_type_says_what_is_expected():
    message = error_of({"models": {"n_models": 1.5}})
    assert message.startswith("models.n_models:")
    assert "whole number" in message
    message = error_of({"galaxy": {"z": "far"}})
    assert message.startswith("galaxy.z:") and "a number" in message


def test_bad_parameter_value():
    message = error_of({"models": {"params": {"dust2": [0, 1, 2]}}})
    assert message.startswith("models.params.dust2:")
    assert "[min, max]" in message
    message = error_of({"models": {"params": {"dust2": [2.0, 1.0]}}})
    assert message.startswith("models.params.dust2:")
    assert "min <= max" in message


def test_bad_galaxy_name():
    message = error_of({"galaxy": {"name": "NGC 628"}})
    assert message.startswith("galaxy.name:") and "letters, digits" in message


def test_bc03_has_chabrier_only():
    message = error_of({"models": {"imf": "salpeter"}})
    assert message.startswith("models.imf:") and "chabrier" in message
    config = validate_config({"models": {"backend": "fsps", "imf": "salpeter"}})
    assert config["models"]["imf"] == "salpeter"


def test_spectrum_fit_needs_ifs_spectra_and_mcmc():
    for cfg in ({"fit": {"method": "mcmc", "spectrum": {"enabled": True}}},
                {"ifs": {"enabled": True}, "fit": {"spectrum": {"enabled": True}}}):
        message = error_of(cfg)
        assert message.startswith("fit.spectrum.enabled:") and "ifs.enabled" in message
    config = validate_config({"ifs": {"enabled": True},
                              "fit": {"method": "mcmc", "spectrum": {"enabled": True}}})
    assert config["fit"]["spectrum"]["R"] == 2000.0


def test_voronoi_window_needs_ifs_and_voronoi():
    message = error_of({"binning": {"method": "voronoi", "voronoi_window": [5300, 5700]}})
    assert message.startswith("binning.voronoi_window:") and "ifs.enabled" in message
    message = error_of({"ifs": {"enabled": True},
                        "binning": {"method": "voronoi", "voronoi_window": [5700, 5300]}})
    assert "min < max" in message
    validate_config({"ifs": {"enabled": True},
                     "binning": {"method": "voronoi", "voronoi_window": [5300, 5700]}})


def test_free_redshift_needs_mcmc_and_room_in_the_grid():
    message = error_of({"fit": {"free_redshift": {"enabled": True}}})
    assert message.startswith("fit.free_redshift.enabled:") and "mcmc" in message
    message = error_of({"fit": {"method": "mcmc", "free_redshift": {"enabled": True}}})
    assert message.startswith("fit.free_redshift.max_shift:") and "models.redshift" in message
    validate_config({"fit": {"method": "mcmc", "free_redshift": {"enabled": True}},
                     "models": {"redshift": 0.07, "params": {"log_age": [-1.0, 1.09]}}})


def test_galaxy_beyond_grid_redshift():
    message = error_of({"galaxy": {"z": 0.5}})
    assert message.startswith("galaxy.z:") and "models.redshift" in message
    validate_config({"galaxy": {"z": 0.5},
                     "models": {"redshift": 0.5, "params": {"log_age": [-1.0, 0.9]}}})


def test_wavelength_ranges_are_ordered():
    message = error_of({"models": {"wavelength": {"min_aa": 2.0e7}}})
    assert message.startswith("models.wavelength.min_aa:") and "max_aa" in message
    message = error_of({"models": {"wavelength": {"spec_R": 3000, "spec_min_aa": 2.0e4}}})
    assert message.startswith("models.wavelength.spec_min_aa:")
    message = error_of({"models": {"wavelength": {"spec_R": 3000, "spec_max_aa": 2.0e7}}})
    assert message.startswith("models.wavelength.spec_max_aa:")
    # without a finer segment the spec_* range is unused
    validate_config({"models": {"wavelength": {"spec_max_aa": 2.0e7}}})


def test_not_a_number_is_refused():
    message = error_of({"galaxy": {"ebv": float("nan")}})
    assert message.startswith("galaxy.ebv:") and "finite" in message


def test_command_line_text_is_converted():
    """snakemake --config passes every value as text."""
    config = validate_config(
        {"models": {"n_models": "500", "nebular": "false", "params": {"dust1": ["0", "1"]}}}
    )
    assert config["models"]["n_models"] == 500
    assert config["models"]["nebular"] is False
    assert config["models"]["params"]["dust1"] == [0.0, 1.0]


def test_error_from_a_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="list.yaml"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("galaxy: {name: [\n")
    with pytest.raises(InputError, match="broken.yaml.*YAML"):
        load_config(broken)


# ----------------------------------------------------------------- grid key


def test_grid_key_ignores_key_order():
    models = load_config()["models"]
    reordered = yaml.safe_load(yaml.safe_dump(models, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert list(reordered) != list(models)
    assert grid_key(reordered) == grid_key(models)
    assert re.fullmatch(r"grid_[0-9a-f]{12}", grid_key(models))
    assert grid_key(models) == "grid_" + config_hash(models)


@pytest.mark.parametrize(
    "change",
    [
        {"n_models": 99999},
        {"sfh": "tau"},
        {"seed": 1},
        {"wavelength": {"R": 151}},
        {"params": {"dust2": [0.0, 2.0]}},
        {"params": {"gas_logz": 0.0}},
        {"cosmology": {"name": "Planck18"}},
    ],
)
def test_grid_key_changes_with_any_model_setting(change):
    base = load_config()
    changed = validate_config(deep_merge(base, {"models": change}))
    assert grid_key(changed["models"]) != grid_key(base["models"])


def test_grid_key_ignores_galaxy_settings():
    base = load_config()
    other = validate_config(deep_merge(base, {"galaxy": {"name": "other", "ra": 10.0}}))
    assert grid_key(other["models"]) == grid_key(base["models"])


def test_grid_key_same_for_whole_and_real_numbers():
    a = validate_config({"models": {"wavelength": {"R": 150}, "params": {"dust2": [0, 3]}}})
    b = validate_config({"models": {"wavelength": {"R": 150.0}}})
    assert grid_key(a["models"]) == grid_key(b["models"])


# ------------------------------------------------------------- sample sheets
def write_sheet(tmp_path, rows, header="galaxy\tconfigfile"):
    sheet = tmp_path / "galaxies.tsv"
    sheet.write_text("\n".join([header] + ["\t".join(r) for r in rows]) + "\n")
    return sheet


def test_sample_sheet_gives_one_config_per_galaxy_and_shares_grids(tmp_path):
    (tmp_path / "a.yaml").write_text("galaxy: {ra: 10.0, z: 0.01}\n")
    (tmp_path / "b.yaml").write_text("galaxy: {ra: 20.0}\nfit: {sys_err: 0.1}\n")
    (tmp_path / "c.yaml").write_text("models: {n_models: 5000}\n")
    sheet = write_sheet(tmp_path, [("ngc1", str(tmp_path / "a.yaml")),
                                   ("ngc2", str(tmp_path / "b.yaml")),
                                   ("ngc3", str(tmp_path / "c.yaml"))])
    base = load_config()
    base["sample_sheet"] = str(sheet)
    base["fit"]["sys_err"] = 0.02  # the run's own settings are each galaxy's defaults
    cfgs = galaxy_configs(base)
    assert list(cfgs) == ["ngc1", "ngc2", "ngc3"]
    assert [c["galaxy"]["name"] for c in cfgs.values()] == ["ngc1", "ngc2", "ngc3"]
    assert cfgs["ngc1"]["galaxy"]["ra"] == 10.0 and cfgs["ngc2"]["galaxy"]["ra"] == 20.0
    assert cfgs["ngc1"]["fit"]["sys_err"] == 0.02 and cfgs["ngc2"]["fit"]["sys_err"] == 0.1
    keys = {n: grid_key(c["models"]) for n, c in cfgs.items()}
    assert keys["ngc1"] == keys["ngc2"] != keys["ngc3"]


def test_no_sample_sheet_means_the_configured_galaxy():
    cfg = load_config()
    assert list(galaxy_configs(cfg)) == [cfg["galaxy"]["name"]]


@pytest.mark.parametrize("rows, header, match", [
    ([("a", "x.yaml"), ("a", "y.yaml")], "galaxy\tconfigfile", "listed twice"),
    ([("a",)], "galaxy\tconfigfile", "row 2 has 1 cells"),
    ([("a", "x.yaml")], "name,config", "header"),
    ([], "galaxy\tconfigfile", "lists no galaxies"),
])
def test_bad_sample_sheet_is_a_clear_error(tmp_path, rows, header, match):
    sheet = write_sheet(tmp_path, rows, header)
    with pytest.raises(InputError, match=match) as info:
        read_sample_sheet(sheet)
    assert str(sheet) in str(info.value)


def test_sample_sheet_names_the_galaxy_file_with_a_bad_value(tmp_path):
    (tmp_path / "bad.yaml").write_text("galaxy: {dec: 95}\n")
    sheet = write_sheet(tmp_path, [("ngc9", str(tmp_path / "bad.yaml"))])
    with pytest.raises(InputError, match=r"galaxy 'ngc9': galaxy\.dec") as info:
        galaxy_configs(deep_merge(load_config(), {"sample_sheet": str(sheet)}))
    assert "bad.yaml" in str(info.value)
    with pytest.raises(InputError, match="not found"):
        galaxy_configs(deep_merge(load_config(), {"sample_sheet": str(tmp_path / "no.tsv")}))


# ------------------------------------------------------- checks before any job


def test_ages_older_than_the_universe_fail_validation():
    """At z = 0.5 (flat LCDM 70/0.3) the universe is 8.4 Gyr old: log_age 1.1 is refused
    by the configuration check (the dry run), not after the images are built."""
    message = error_of({"galaxy": {"z": 0.5}, "models": {"redshift": 0.5}})
    assert message.startswith("models.params.log_age:") and "older than the universe" in message
    assert "8.4" in message
    message = error_of({"models": {"params": {"log_age": 1.15}}})  # fixed, 14.1 Gyr at z 0.02
    assert message.startswith("models.params.log_age:")


def _bands(*names, survey="sdss"):
    return [{"filter": n, "survey": survey, "file": f"{n}.fits", "psf_fwhm": 1.4} for n in names]


def test_settings_that_name_a_band_are_checked_against_the_bands():
    bands = {"images": {"bands": _bands("sdss_g", "sdss_r", "sdss_i")}}
    for key, cfg in [
        ("maps.split.log_mstar", {"maps": {"split": {"log_mstar": "sdss_z"}}}),
        ("sfh_groups.weight_band", {"sfh_groups": {"weight_band": "galex_nuv"}}),
        ("images.reference_band", {"images": {"reference_band": "wise_w1"}}),
        ("binning.ref_band", {"binning": {"ref_band": "2mass_k"}}),
        ("binning.voronoi_band", {"binning": {"voronoi_band": "sdss_u"}}),
    ]:
        message = error_of(deep_merge(bands, cfg))
        assert message.startswith(key + ":"), message
        assert "sdss_g, sdss_r, sdss_i" in message
    message = error_of(deep_merge(bands, {"binning": {"sn_threshold": [5.0, 5.0]}}))
    assert message.startswith("binning.sn_threshold:") and "3 bands" in message
    message = error_of(deep_merge(bands, {"binning": {"sn_threshold": [5.0, -1.0, 5.0]}}))
    assert message.startswith("binning.sn_threshold:") and "-1.0" in message


def test_a_band_listed_twice_is_refused():
    message = error_of({"images": {"bands": _bands("sdss_g", "sdss_r", "sdss_g")}})
    assert message.startswith("images.bands.2.filter:") and "twice" in message


def test_an_unknown_filter_fails_validation():
    message = error_of({"images": {"bands": _bands("sdss_g", "sdss_q")}})
    assert message.startswith("images.bands.1.filter:")


def test_split_and_weight_band_defaults_adapt_to_the_bands():
    """Mass by the reddest band below 4 micron, SFR by the bluest, dust by the reddest."""
    nir = validate_config({"images": {"bands": _bands("2mass_j", "2mass_h", "2mass_k",
                                                      "wise_w1", "wise_w2")}})
    assert nir["maps"]["split"] == {"log_mstar": "wise_w1", "log_sfr": "2mass_j",
                                    "log_mdust": "wise_w2"}
    assert nir["sfh_groups"]["weight_band"] == "wise_w1"
    opt = validate_config({"images": {"bands": _bands("sdss_r", "sdss_g", "sdss_z")},
                           "maps": {"split": {"log_sfr": "sdss_r"}}})
    assert opt["maps"]["split"] == {"log_mstar": "sdss_z", "log_sfr": "sdss_r",
                                    "log_mdust": "sdss_z"}
    # validating twice changes nothing (the workflow validates a sample's galaxies again)
    assert validate_config(copy.deepcopy(opt)) == opt
    demo = load_config(DEFAULTS_PATH.parent / "galaxies" / "demo.yaml")
    assert demo["maps"]["split"]["log_mstar"] == "wise_w1"


def test_psf_file_alone_is_enough():
    band = {"filter": "sdss_g", "survey": "sdss", "file": "g.fits", "psf_file": "psf.fits",
            "psf_pixscale": 0.25}
    validate_config({"images": {"bands": [band]}})
    del band["psf_file"]
    message = error_of({"images": {"bands": [band]}})
    assert message.startswith("images.bands.0:")


def test_data_dir_resolves_relative_input_paths():
    from sedmap.config import band_specs, resolve_input

    cfg = validate_config({"data_dir": "../data/ngc309",
                           "images": {"bands": _bands("sdss_g") + [
                               {"filter": "sdss_r", "survey": "sdss", "file": "/abs/r.fits",
                                "psf_file": "psf_r.fits", "psf_pixscale": 0.25}]},
                           "ifs": {"cube": "cube.fits"}})
    specs = band_specs(cfg)
    assert specs[0]["file"] == "../data/ngc309/sdss_g.fits"
    assert specs[1]["file"] == "/abs/r.fits"
    assert specs[1]["psf_file"] == "../data/ngc309/psf_r.fits"
    assert cfg["images"]["bands"][0]["file"] == "sdss_g.fits"  # the config is not rewritten
    assert resolve_input(cfg, cfg["ifs"]["cube"]) == "../data/ngc309/cube.fits"
    cfg["data_dir"] = None
    assert band_specs(cfg)[0]["file"] == "sdss_g.fits"


def test_priors_and_chains_are_checked_before_any_job():
    """What the fit jobs would refuse after the images and the grid are built fails
    validation instead: a prior outside the grid's range or on a parameter the model
    does not have, an unknown prior form, burn-in as long as the chain, too few
    walkers."""
    message = error_of({"fit": {"priors": {"dust2": {"form": "gaussian", "mu": 0.3,
                                                     "sigma": 0.1, "max": 5.0}}}})
    assert message.startswith("fit.priors.dust2:") and "outside" in message
    message = error_of({"fit": {"priors": {"log_sfr_ratio_1": {"form": "gaussian", "mu": 0,
                                                               "sigma": 0.3}}}})
    assert message.startswith("fit.priors:") and "does not have" in message
    message = error_of({"fit": {"priors": {"dust2": {"form": "lognormalish"}}}})
    assert "unknown prior form" in message
    message = error_of({"models": {"draw": {"dust2": {"form": "gaussian", "mu": 0.3}}}})
    assert message.startswith("models.draw") and "sigma" in message
    message = error_of({"fit": {"method": "mcmc", "mcmc": {"nsteps": 300, "burn": 300}}})
    assert message.startswith("fit.mcmc.burn:")
    message = error_of({"fit": {"method": "mcmc", "mcmc": {"nsteps": 600, "max_steps": 500}}})
    assert message.startswith("fit.mcmc.max_steps:") and "shorter" in message
    message = error_of({"fit": {"method": "mcmc", "mcmc": {"nwalkers": 8}}})
    assert message.startswith("fit.mcmc.nwalkers:") and "twice" in message
    validate_config({"fit": {"method": "mcmc", "priors": {"dust2": {
        "form": "gaussian", "mu": 0.3, "sigma": 0.2}}}})
