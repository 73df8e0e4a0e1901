# Stage "binning": flux cube -> bin map. A checkpoint: the number of bins
# decides how many fit jobs run.


def binning_spectra(wildcards):
    """specphoto.fits for galaxies with ifs.enabled: its spectra are binned too."""
    if gcfg(wildcards)["ifs"]["enabled"]:
        return [f"{RESULTS}/{wildcards.galaxy}/specphoto.fits"]
    return []


checkpoint binning:
    input:
        fluxmap=f"{GDIR}/fluxmap.fits",
        specphoto=binning_spectra,
    output:
        binmap=f"{GDIR}/binmap.fits",
        plot=report(f"{GDIR}/plots/binmap.png", caption="../report/binmap.rst",
                    category="Binning", subcategory="{galaxy}"),
    params:
        binning=lambda w: gcfg(w)["binning"],
        confhash=HASH_BINNING,
    log:
        f"{LOGS}/binning.log",
    benchmark:
        "logs/benchmarks/{galaxy}/binning.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/binning.py"


def mcmc_fits(wildcards):
    """fits/bin_K.h5 of the bins that get their own (MCMC) job; every other bin's
    result is its file in the RDSPS folder (sedmap.stages.bin_result_paths)."""
    from astropy.io import fits

    from sedmap.stages import mcmc_bins

    path = checkpoints.binning.get(galaxy=wildcards.galaxy).output.binmap
    flags = fits.getdata(path, "BINS")["flag"]
    return [f"{RESULTS}/{wildcards.galaxy}/fits/bin_{k}.h5"
            for k in mcmc_bins(flags, gcfg(wildcards)["fit"])]
