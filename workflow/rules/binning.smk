# Stage "binning": flux cube -> bin map. A checkpoint: the number of bins
# decides how many fit jobs run.


checkpoint binning:
    input:
        fluxmap=f"{GDIR}/fluxmap.fits",
    output:
        binmap=f"{GDIR}/binmap.fits",
        plot=report(f"{GDIR}/plots/binmap.png", caption="../report/binmap.rst",
                    category="Binning"),
    params:
        binning=config["binning"],
        confhash=HASH_BINNING,
    log:
        f"logs/{GALAXY}/binning.log",
    benchmark:
        f"logs/benchmarks/{GALAXY}/binning.tsv"
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/sedmap.yaml"
    script:
        "../../scripts/binning.py"


def n_bins(wildcards):
    """Number of bins, read from the checkpoint's bin map header."""
    from astropy.io import fits

    path = checkpoints.binning.get().output.binmap
    return int(fits.getheader(path, 0)["NBIN"])


def all_fits(wildcards):
    return [f"{GDIR}/fits/bin_{k}.h5" for k in range(1, n_bins(wildcards) + 1)]
