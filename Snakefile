# sedmap workflow. Thin on purpose: the rules live in workflow/rules/, the
# science in the sedmap package, and every rule's script only unpacks
# snakemake.params and calls one library function.
#
#   snakemake --configfile config/galaxies/demo.yaml --cores 2
#
# config/config.yaml holds the defaults; --configfile files merge over them.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/mock.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/binning.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/maps.smk"


rule all:
    input:
        f"{GDIR}/maps.fits",
        f"{GDIR}/sfh_groups.fits",
        [f"{GDIR}/accuracy.json"] if MOCK else [],
    default_target: True
    localrule: True
