# Stage "images": raw survey images -> results/GALAXY/fluxmap.fits.
# One calibrate and one match job per band; the grid and the cube need all bands.


rule calibrate_band:
    input:
        raw_files,
    output:
        f"{GDIR}/images/{{band}}_cal.fits",
    params:
        spec=lambda w: band_spec_without_psf(w.band),
        confhash=HASH_IMAGES,
    log:
        f"logs/{GALAXY}/calibrate_{{band}}.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/calibrate_{{band}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/calibrate_band.py"


rule image_grid:
    input:
        cal=expand(f"{GDIR}/images/{{band}}_cal.fits", band=FILTER_NAMES),
        psf=[f for n in FILTER_NAMES for f in psf_files(n)],
    output:
        f"{GDIR}/images/grid.json",
    params:
        psfs=[band_psf(n) for n in FILTER_NAMES],
        pixel_scale=config["images"]["pixel_scale"],
        target_psf_fwhm=config["images"]["target_psf_fwhm"],
    log:
        f"logs/{GALAXY}/image_grid.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/image_grid.tsv"
    localrule: True
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/image_grid.py"


def _ref_input(wildcards):
    ref = config["images"]["reference_band"]
    return {"ref": f"{GDIR}/images/{ref}_cal.fits"} if ref else {}


rule match_band:
    input:
        unpack(_ref_input),
        cal=f"{GDIR}/images/{{band}}_cal.fits",
        grid=f"{GDIR}/images/grid.json",
        psf=lambda w: psf_files(w.band),
    output:
        f"{GDIR}/images/{{band}}_matched.fits",
    params:
        psf=lambda w: band_psf(w.band),
        galaxy=config["galaxy"],
        stamp_arcsec=config["images"]["stamp_arcsec"],
        realign=config["images"]["realign"],
        confhash=HASH_IMAGES,
    log:
        f"logs/{GALAXY}/match_{{band}}.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/match_{{band}}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/match_band.py"


rule fluxmap:
    input:
        matched=expand(f"{GDIR}/images/{{band}}_matched.fits", band=FILTER_NAMES),
        cal=expand(f"{GDIR}/images/{{band}}_cal.fits", band=FILTER_NAMES),
    output:
        fluxmap=f"{GDIR}/fluxmap.fits",
        plot=report(f"{GDIR}/plots/fluxmap.png", caption="../report/fluxmap.rst",
                    category="Images"),
        region=report(f"{GDIR}/plots/region.png", caption="../report/region.rst",
                      category="Images"),
    params:
        psfs=[band_psf(n) for n in FILTER_NAMES],
        galaxy=config["galaxy"],
        images=config["images"],
        confhash=HASH_IMAGES,
    log:
        f"logs/{GALAXY}/fluxmap.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/fluxmap.tsv"
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/fluxmap.py"
