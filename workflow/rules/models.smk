# Stage "models": the model-grid HDF5, shared by every galaxy whose models
# section is equal (the file name is the hash of that section). A shell rule so
# that it can run as an MPI job (config mpi.tasks > 1).


rule model_grid:
    output:
        grid_path(RESULTS, "{grid}").as_posix(),
    params:
        models_json=lambda wildcards: json.dumps(models_for_grid(wildcards), sort_keys=True),
        confhash=lambda wildcards: config_hash(models_for_grid(wildcards)),
    log:
        LOGDIR + "/models/{grid}.log",
    benchmark:
        BENCH + "/models/{grid}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards: 4000 + 2 * models_for_grid(wildcards)["chunk_size"],
        runtime=lambda wildcards: 30 + models_for_grid(wildcards)["n_models"] // 1000,
        **MPI_RESOURCES,
    conda:
        "../../envs/sedmap.yaml"
    shell:
        "{MPI_PREFIX}{PYTHON} -m sedmap.cli models --models-json {params.models_json:q}"
        " --confhash {params.confhash} --out {output:q} 2>&1 | tee {log:q}"
        " || {{ tail -n 1 {log:q} >&2; exit 1; }}"
