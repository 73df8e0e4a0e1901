# Stage "binning": flux cube -> bin map. A checkpoint: the number of bins
# decides how many fit jobs run.


def binning_spectra(wildcards):
    """specphoto.fits for galaxies with ifs.enabled: its spectra are binned too."""
    if gcfg(wildcards)["ifs"]["enabled"]:
        return [P("specphoto", wildcards.galaxy)]
    return []


checkpoint binning:
    input:
        fluxmap=P("fluxmap"),
        specphoto=binning_spectra,
    output:  # the bin map only: a checkpoint with a missing side output (a plot) would
        # leave its dependants' inputs undetermined; rule binmap_plot draws it
        binmap=P("binmap"),
    params:
        binning=lambda w: gcfg(w)["binning"],
        confhash=HASH_BINNING,
    log:
        f"{LOGS}/binning.log",
    benchmark:
        BENCH + "/{galaxy}/binning.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/binning.py"


rule binmap_plot:
    input:
        binmap=P("binmap"),
    output:
        plot=report(f"{P('plots')}/binmap.png", caption="../report/binmap.rst",
                    category="Binning", subcategory="{galaxy}"),
    log:
        f"{LOGS}/binmap_plot.log",
    benchmark:
        BENCH + "/{galaxy}/binmap_plot.tsv"
    localrule: True
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/binmap_plot.py"


def refit_jobs(wildcards):
    """The folders fits/job_J of the refit jobs of fit.method (fits/job_J/bin_K.h5;
    sedmap.fit.methods.fit_jobs); every other bin's result is its file in the RDSPS
    folder (sedmap.stages.bin_result_paths)."""
    from astropy.io import fits

    from sedmap.fit.methods import fit_jobs

    path = checkpoints.binning.get(galaxy=wildcards.galaxy).output.binmap
    flags = fits.getdata(path, "BINS")["flag"]
    return [job_dir(P("fits", wildcards.galaxy), j).as_posix()
            for j in range(len(fit_jobs(flags, gcfg(wildcards)["fit"])))]
