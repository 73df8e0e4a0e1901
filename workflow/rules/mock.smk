# The mock galaxy with known truth (the demo): raw survey images, truth maps.

if MOCK:

    rule mock:
        output:
            raw=[s[k] for s in BANDS for k in FILE_KEYS if s.get(k)],
            truth=f"{GDIR}/mock/truth.fits",
            bands=f"{GDIR}/mock/bands.yaml",
        params:
            settings=config["mock"]["settings"],
            galaxy=config["galaxy"],
            # the mock's SPS physics; the grid's draw settings do not change it
            models={k: v for k, v in config["models"].items()
                    if k not in ("seed", "n_models", "chunk_size")},
            confhash=stage_hash("galaxy", "mock"),
        log:
            f"logs/{GALAXY}/mock.log",
        benchmark:
            f"logs/benchmarks/{GALAXY}/mock.tsv"
        threads: 2
        resources:
            mem_mb=3000,
            runtime=20,
        conda:
            "../../envs/sedmap.yaml"
        script:
            "../../scripts/mock.py"
