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


rule all:
    # Targets of the stages that exist so far: the model grid.
    input:
        GRID_FILE,
    default_target: True
    localrule: True
