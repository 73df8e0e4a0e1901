# Stage "models": the model-grid HDF5, shared by every galaxy whose models
# section is equal (the file name is the hash of that section).


rule model_grid:
    output:
        f"{RESULTS}/models/{{grid}}.h5",
    params:
        models=models_for_grid,
        confhash=lambda wildcards: config_hash(models_for_grid(wildcards)),
    log:
        "logs/models/{grid}.log",
    benchmark:
        "logs/benchmarks/models/{grid}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wildcards: 4000 + 2 * config["models"]["chunk_size"],
        runtime=lambda wildcards: 30 + config["models"]["n_models"] // 1000,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/model_grid.py"
