# Stage "fit": RDSPS for every bin in one job (rdsps/bin_K.h5), then jobs of
# fit.bins_per_job bins each that refit the bins fit.method chooses
# (sedmap.fit.methods.METHODS; fits/job_J/bin_K.h5). MCMC runs a job's bins as one
# stacked ensemble, every bin's walkers sharing the SPS calls. Both rules pass the
# grid_hash the grid must carry (sedmap.io.grid_hash of the galaxy's models section):
# a grid made otherwise or corrupted is refused.

from sedmap.io.modelgrid import grid_hash  # noqa: E402


rule rdsps:
    input:
        binmap=P("binmap"),
        grid=grid_file,
    output:
        directory(P("rdsps")),
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
        " --out {output:q} 2>&1 | tee {log:q} || {{ tail -n 1 {log:q} >&2; exit 1; }}"


def job_bins(wildcards):
    """The bin ids of refit job wildcards.job (sedmap.fit.methods.fit_jobs)."""
    from astropy.io import fits

    from sedmap.fit.methods import fit_jobs

    path = checkpoints.binning.get(galaxy=wildcards.galaxy).output.binmap
    jobs = fit_jobs(fits.getdata(path, "BINS")["flag"], gcfg(wildcards)["fit"])
    return jobs[int(wildcards.job)]


rule fit_job:
    input:
        binmap=P("binmap"),
        grid=grid_file,
        rdsps=P("rdsps"),
    output:
        directory(job_dir(P("fits"), "{job}").as_posix()),
    params:
        bins=job_bins,
        z=lambda w: gcfg(w)["galaxy"]["z"],
        fit=lambda w: gcfg(w)["fit"],
        confhash=HASH_FIT,
        grid_hash=lambda w: grid_hash(gcfg(w)["models"]),
    log:
        f"{LOGS}/fits/job_{{job}}.log",
    benchmark:
        BENCH + "/{galaxy}/fits/job_{job}.tsv"
    resources:
        mem_mb=3000,
        runtime=lambda w: 10 * gcfg(w)["fit"]["bins_per_job"],
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/fit_job.py"
