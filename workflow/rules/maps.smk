# Stage "maps": per-bin fits -> property maps; and, for a mock, the accuracy report.


rule maps:
    input:
        fluxmap=P("fluxmap"),
        binmap=P("binmap"),
        rdsps=P("rdsps"),
        fits=refit_jobs,
    output:
        maps=P("maps"),
        profiles=P("profiles"),
        plot=report(f"{P('plots')}/maps.png", caption="../report/maps.rst", category="Maps",
                    subcategory="{galaxy}"),
        radial=report(f"{P('plots')}/profiles.png", caption="../report/profiles.rst",
                      category="Maps", subcategory="{galaxy}"),
        residuals=report(f"{P('plots')}/residuals.png", caption="../report/residuals.rst",
                         category="Fits", subcategory="{galaxy}"),
        sed=report(f"{P('plots')}/sed_fit.png", caption="../report/sed_fit.rst",
                   category="Fits", subcategory="{galaxy}"),
        sfh=report(f"{P('plots')}/sfh.png", caption="../report/sfh.rst",
                   category="Fits", subcategory="{galaxy}"),
        corner=report(f"{P('plots')}/corner.png", caption="../report/corner.rst",
                      category="Fits", subcategory="{galaxy}"),
    params:
        maps=lambda w: gcfg(w)["maps"],
        cosmology=lambda w: gcfg(w)["models"]["cosmology"],
        confhash=HASH_MAPS,
    log:
        f"{LOGS}/maps.log",
    benchmark:
        BENCH + "/{galaxy}/maps.tsv"
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/maps.py"


rule summary:
    input:
        maps=P("maps"),
        profiles=P("profiles"),
        accuracy=lambda w: [P("accuracy", w.galaxy)] if is_mock(w.galaxy) else [],
    output:
        html=report(P("summary"), caption="../report/summary.rst",
                    category="Summary", subcategory="{galaxy}"),
    params:
        confhash=HASH_MAPS,
    log:
        f"{LOGS}/summary.log",
    benchmark:
        BENCH + "/{galaxy}/summary.tsv"
    localrule: True
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/summary.py"


rule accuracy:
    input:
        truth=P("truth"),
        binmap=P("binmap"),
        rdsps=P("rdsps"),
        fits=refit_jobs,
    output:
        json=P("accuracy"),
        plot=report(f"{P('plots')}/accuracy.png", caption="../report/accuracy.rst",
                    category="Accuracy", subcategory="{galaxy}"),
    log:
        f"{LOGS}/accuracy.log",
    benchmark:
        BENCH + "/{galaxy}/accuracy.tsv"
    localrule: True
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/accuracy.py"


rule sfh_groups:
    input:
        fluxmap=P("fluxmap"),
        binmap=P("binmap"),
        rdsps=P("rdsps"),
        fits=refit_jobs,
    output:
        groups=P("sfh_groups"),
        plot=report(f"{P('plots')}/sfh_groups.png", caption="../report/sfh_groups.rst",
                    category="SFH groups", subcategory="{galaxy}"),
    params:
        cfg=lambda w: gcfg(w)["sfh_groups"],
        confhash=stage_hash("galaxy", "mock", "images", "binning", "models", "fit",
                            "sfh_groups"),
    log:
        f"{LOGS}/sfh_groups.log",
    benchmark:
        BENCH + "/{galaxy}/sfh_groups.tsv"
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/sfh_groups.py"
