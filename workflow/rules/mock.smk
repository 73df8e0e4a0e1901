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
            models=config["models"],
            confhash=stage_hash("galaxy", "mock", "models"),
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
