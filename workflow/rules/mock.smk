# The mock galaxy with known truth (the demo): raw survey images, truth maps.
# Used by the galaxies whose config sets mock.enabled.

from sedmap.mock.settings import mock_models_section


rule mock:
    output:
        raw=directory(f"{P('mock')}/raw"),
        truth=P("truth"),
        bands=P("mock_bands"),
    params:
        settings=lambda w: gcfg(w)["mock"]["settings"],
        galaxy=lambda w: gcfg(w)["galaxy"],
        # the mock's SPS physics; the grid's draw settings do not change it, nor
        # do the fit's SFH and ranges when the mock sets its own sfh
        models=lambda w: mock_models_section(gcfg(w)["models"], gcfg(w)["mock"]["settings"]),
        # the truth maps' grid and PSF: those the imaging stage will give the data
        grid=lambda w: {k: gcfg(w)["images"][k] for k in ("pixel_scale", "target_psf_fwhm")},
        confhash=stage_hash("galaxy", "mock"),
    log:
        f"{LOGS}/mock.log",
    benchmark:
        BENCH + "/{galaxy}/mock.tsv"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=20,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/mock.py"
