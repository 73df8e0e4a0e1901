# Stage "fit": RDSPS for every bin in one array job (rdsps/bin_K.h5), then one
# MCMC job per bin selected by fit.method/fit.mcmc.subset (fits/bin_K.h5). The
# per-bin jobs form group "fit" so that a cluster runs fit.bins_per_job of them
# per job. Both jobs get the grid_hash the grid must carry (sedmap.io.grid_hash
# of the galaxy's models section): a grid made otherwise or corrupted is refused.

from sedmap.io.modelgrid import grid_hash  # noqa: E402


rule rdsps:
    input:
        binmap=f"{GDIR}/binmap.fits",
        grid=grid_file,
    output:
        directory(f"{GDIR}/rdsps"),
    params:
        z=lambda w: gcfg(w)["galaxy"]["z"],
        fit_json=lambda w: json.dumps(gcfg(w)["fit"], sort_keys=True),
        confhash=HASH_FIT,
        grid_hash=lambda w: grid_hash(gcfg(w)["models"]),
    log:
        f"{LOGS}/rdsps.log",
    benchmark:
        BENCH + "/{galaxy}/rdsps.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
        **MPI_RESOURCES,
    conda:
        "../../envs/sedmap.yaml"
    shell:  # a shell rule so that it can run as an MPI job (config mpi.tasks > 1)
        "{MPI_PREFIX}{PYTHON} -m sedmap.cli rdsps --binmap {input.binmap:q} --grid {input.grid:q}"
        " --z {params.z} --fit-json {params.fit_json:q} --confhash {params.confhash}"
        " --grid-hash {params.grid_hash}"
        " --out {output:q} > {log:q} 2>&1 || {{ tail -n 1 {log:q} >&2; exit 1; }}"


rule fit_bin:
    input:
        binmap=f"{GDIR}/binmap.fits",
        grid=grid_file,
        rdsps=f"{GDIR}/rdsps",
    output:
        f"{GDIR}/fits/bin_{{bin}}.h5",
    params:
        z=lambda w: gcfg(w)["galaxy"]["z"],
        fit=lambda w: gcfg(w)["fit"],
        confhash=HASH_FIT,
        grid_hash=lambda w: grid_hash(gcfg(w)["models"]),
    log:
        f"{LOGS}/fits/bin_{{bin}}.log",
    benchmark:
        BENCH + "/{galaxy}/fits/bin_{bin}.tsv"
    group:
        "fit"
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/fit_bin.py"
