# Stage "fit": RDSPS for every bin in one array job, then one file per bin
# (MCMC for the bins selected by fit.method/fit.mcmc.subset). The per-bin
# jobs form group "fit" so that a cluster runs fit.bins_per_job of them per job.


rule rdsps:
    input:
        binmap=f"{GDIR}/binmap.fits",
        grid=GRID_FILE,
    output:
        directory(f"{GDIR}/rdsps"),
    params:
        z=config["galaxy"]["z"],
        fit=config["fit"],
        confhash=HASH_FIT,
    log:
        f"logs/{GALAXY}/rdsps.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/rdsps.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/rdsps.py"


rule fit_bin:
    input:
        binmap=f"{GDIR}/binmap.fits",
        grid=GRID_FILE,
        rdsps=f"{GDIR}/rdsps",
    output:
        f"{GDIR}/fits/bin_{{bin}}.h5",
    params:
        z=config["galaxy"]["z"],
        fit=config["fit"],
        confhash=HASH_FIT,
    log:
        f"logs/{GALAXY}/fits/bin_{{bin}}.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/fits/bin_{{bin}}.tsv"
    group:
        "fit"
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/fit_bin.py"
