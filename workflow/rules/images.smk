# Stage "images": raw survey images -> results/GALAXY/fluxmap.fits.
# One calibrate and one match job per band; the grid and the cube need all bands.


def band_files(wildcards, kind):
    """results/GALAXY/images/BAND_{kind}.fits of every band of the galaxy."""
    return [f"{P('images', wildcards.galaxy)}/{b}_{kind}.fits"
            for b in filters(wildcards.galaxy)]


rule calibrate_band:
    input:
        raw_files,
    output:
        f"{P('images')}/{{band}}_cal.fits",
    params:
        spec=band_spec_without_psf,
        confhash=calibration_hash,
    log:
        f"{LOGS}/calibrate_{{band}}.log",
    benchmark:
        BENCH + "/{galaxy}/calibrate_{band}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/calibrate_band.py"


rule image_grid:
    input:
        cal=lambda w: band_files(w, "cal"),
        psf=lambda w: [f for n in filters(w.galaxy) for f in psf_files(w.galaxy, n)],
    output:
        P("image_grid"),
    params:
        psfs=lambda w: [band_psf(w.galaxy, n) for n in filters(w.galaxy)],
        pixel_scale=lambda w: gcfg(w)["images"]["pixel_scale"],
        target_psf_fwhm=lambda w: gcfg(w)["images"]["target_psf_fwhm"],
    log:
        f"{LOGS}/image_grid.log",
    benchmark:
        BENCH + "/{galaxy}/image_grid.tsv"
    localrule: True
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/image_grid.py"


def _ref_input(wildcards):
    ref = gcfg(wildcards)["images"]["reference_band"]
    return {"ref": f"{P('images', wildcards.galaxy)}/{ref}_cal.fits"} if ref else {}


rule match_band:
    input:
        unpack(_ref_input),
        cal=f"{P('images')}/{{band}}_cal.fits",
        grid=P("image_grid"),
        psf=lambda w: psf_files(w.galaxy, w.band),
    output:
        f"{P('images')}/{{band}}_matched.fits",
    params:
        psf=lambda w: band_psf(w.galaxy, w.band),
        galaxy=lambda w: gcfg(w)["galaxy"],
        stamp_arcsec=lambda w: gcfg(w)["images"]["stamp_arcsec"],
        stamp_center=lambda w: gcfg(w)["images"]["stamp_center"],
        realign=lambda w: gcfg(w)["images"]["realign"],
        confhash=match_hash,
    log:
        f"{LOGS}/match_{{band}}.log",
    benchmark:
        BENCH + "/{galaxy}/match_{band}.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/match_band.py"


rule fluxmap:
    input:
        matched=lambda w: band_files(w, "matched"),
        cal=lambda w: band_files(w, "cal"),
    output:
        fluxmap=P("fluxmap"),
        plot=report(f"{P('plots')}/fluxmap.png", caption="../report/fluxmap.rst",
                    category="Images", subcategory="{galaxy}"),
        region=report(f"{P('plots')}/region.png", caption="../report/region.rst",
                      category="Images", subcategory="{galaxy}"),
    params:
        psfs=lambda w: [band_psf(w.galaxy, n) for n in filters(w.galaxy)],
        galaxy=lambda w: gcfg(w)["galaxy"],
        images=lambda w: gcfg(w)["images"],
        confhash=HASH_IMAGES,
    log:
        f"{LOGS}/fluxmap.log",
    benchmark:
        BENCH + "/{galaxy}/fluxmap.tsv"
    resources:
        mem_mb=3000,
        runtime=10,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/fluxmap.py"
