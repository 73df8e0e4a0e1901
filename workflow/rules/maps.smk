# Stage "maps": per-bin fits -> property maps; and, for the mock, the accuracy report.


rule maps:
    input:
        fluxmap=f"{GDIR}/fluxmap.fits",
        binmap=f"{GDIR}/binmap.fits",
        fits=all_fits,
    output:
        maps=f"{GDIR}/maps.fits",
        plot=report(f"{GDIR}/plots/maps.png", caption="../report/maps.rst", category="Maps"),
        sed=report(f"{GDIR}/plots/sed_fit.png", caption="../report/sed_fit.rst",
                   category="Fits"),
    params:
        maps=config["maps"],
        confhash=HASH_MAPS,
    log:
        f"logs/{GALAXY}/maps.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/maps.tsv"
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/maps.py"


if MOCK:

    rule accuracy:
        input:
            truth=f"{GDIR}/mock/truth.fits",
            binmap=f"{GDIR}/binmap.fits",
            rdsps=f"{GDIR}/rdsps",
            fits=all_fits,
        output:
            json=f"{GDIR}/accuracy.json",
            plot=report(f"{GDIR}/plots/accuracy.png", caption="../report/accuracy.rst",
                        category="Accuracy"),
        log:
            f"logs/{GALAXY}/accuracy.log",
        benchmark:
            f"logs/benchmarks/{GALAXY}/accuracy.tsv"
        localrule: True
        conda:
            "../../envs/sedmap.yaml"
        script:
            "../../scripts/accuracy.py"


rule sfh_groups:
    input:
        fluxmap=f"{GDIR}/fluxmap.fits",
        binmap=f"{GDIR}/binmap.fits",
        fits=all_fits,
    output:
        groups=f"{GDIR}/sfh_groups.fits",
        plot=report(f"{GDIR}/plots/sfh_groups.png", caption="../report/sfh_groups.rst",
                    category="SFH groups"),
    params:
        sfh=config["models"]["sfh"],
        cfg=config["sfh_groups"],
        confhash=stage_hash("galaxy", "mock", "images", "binning", "models", "fit", "sfh_groups"),
    log:
        f"logs/{GALAXY}/sfh_groups.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/sfh_groups.tsv"
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/sfh_groups.py"
