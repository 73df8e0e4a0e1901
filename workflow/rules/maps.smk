# Stage "maps": per-bin fits -> property maps; and, for a mock, the accuracy report.


rule maps:
    input:
        fluxmap=f"{GDIR}/fluxmap.fits",
        binmap=f"{GDIR}/binmap.fits",
        rdsps=f"{GDIR}/rdsps",
        fits=mcmc_fits,
    output:
        maps=f"{GDIR}/maps.fits",
        profiles=f"{GDIR}/profiles.fits",
        plot=report(f"{GDIR}/plots/maps.png", caption="../report/maps.rst", category="Maps",
                    subcategory="{galaxy}"),
        radial=report(f"{GDIR}/plots/profiles.png", caption="../report/profiles.rst",
                      category="Maps", subcategory="{galaxy}"),
        residuals=report(f"{GDIR}/plots/residuals.png", caption="../report/residuals.rst",
                         category="Fits", subcategory="{galaxy}"),
        sed=report(f"{GDIR}/plots/sed_fit.png", caption="../report/sed_fit.rst",
                   category="Fits", subcategory="{galaxy}"),
        sfh=report(f"{GDIR}/plots/sfh.png", caption="../report/sfh.rst",
                   category="Fits", subcategory="{galaxy}"),
        corner=report(f"{GDIR}/plots/corner.png", caption="../report/corner.rst",
                      category="Fits", subcategory="{galaxy}"),
    params:
        maps=lambda w: gcfg(w)["maps"],
        sfh=lambda w: gcfg(w)["models"]["sfh"],
        young=lambda w: gcfg(w)["models"]["continuity_young_gyr"],
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
        maps=f"{GDIR}/maps.fits",
        profiles=f"{GDIR}/profiles.fits",
        accuracy=lambda w: [f"{RESULTS}/{w.galaxy}/accuracy.json"] if is_mock(w.galaxy) else [],
    output:
        html=report(f"{GDIR}/summary.html", caption="../report/summary.rst",
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
        truth=f"{GDIR}/mock/truth.fits",
        binmap=f"{GDIR}/binmap.fits",
        rdsps=f"{GDIR}/rdsps",
        fits=mcmc_fits,
    output:
        json=f"{GDIR}/accuracy.json",
        plot=report(f"{GDIR}/plots/accuracy.png", caption="../report/accuracy.rst",
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
        fluxmap=f"{GDIR}/fluxmap.fits",
        binmap=f"{GDIR}/binmap.fits",
        rdsps=f"{GDIR}/rdsps",
        fits=mcmc_fits,
    output:
        groups=f"{GDIR}/sfh_groups.fits",
        plot=report(f"{GDIR}/plots/sfh_groups.png", caption="../report/sfh_groups.rst",
                    category="SFH groups", subcategory="{galaxy}"),
    params:
        sfh=lambda w: gcfg(w)["models"]["sfh"],
        young=lambda w: gcfg(w)["models"]["continuity_young_gyr"],
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
