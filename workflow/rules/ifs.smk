# Stage "ifs": an IFS cube matched to the flux map and corrected to its
# photometry -> results/GALAXY/specphoto.fits (galaxies with ifs.enabled); and
# the cube's synthetic band images (ifs.bands) -> results/GALAXY/cube_bands/,
# which the imaging stage reads as bands (sedmap.config.cube_bands).


def ifs_cube(wildcards):
    """The cube of wildcards.galaxy: its ifs.cube, or the mock's ifs.fits."""
    cfg = gcfg(wildcards)["ifs"]
    if cfg["cube"]:
        return resolve_input(gcfg(wildcards), cfg["cube"])
    if not is_mock(wildcards.galaxy):
        raise ValueError(f"galaxy {wildcards.galaxy}: ifs.enabled needs ifs.cube "
                         "(or mock.enabled with mock.settings.ifs: true)")
    return P("mock_cube", wildcards.galaxy)


def ifs_inputs(wildcards):
    """The cube file named in the config (tracked), or the mock that writes it."""
    if gcfg(wildcards)["ifs"]["cube"]:
        return {"cube": ifs_cube(wildcards)}
    return {"mock": P("truth", wildcards.galaxy)}  # written with ifs.fits


rule specphoto:
    input:
        unpack(ifs_inputs),
        fluxmap=P("fluxmap"),
    output:
        P("specphoto"),
    params:
        cube=ifs_cube,
        ifs=lambda w: gcfg(w)["ifs"],
        confhash=stage_hash("galaxy", "mock", "images", "ifs"),
    log:
        f"{LOGS}/specphoto.log",
    benchmark:
        BENCH + "/{galaxy}/specphoto.tsv"
    resources:
        mem_mb=6000,
        runtime=30,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/specphoto.py"


rule cube_band:
    input:
        cube=ifs_cube,
    output:
        f"{P('cube_bands')}/{{band}}.fits",
    params:
        ifs=lambda w: gcfg(w)["ifs"],
        confhash=stage_hash("galaxy", "ifs"),
    log:
        f"{LOGS}/cube_band_{{band}}.log",
    benchmark:
        BENCH + "/{galaxy}/cube_band_{band}.tsv"
    resources:
        mem_mb=6000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/cube_band.py"
