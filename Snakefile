# sedmap workflow. Thin on purpose: the rules live in workflow/rules/, the
# science in the sedmap package, and every rule's script only unpacks
# snakemake.params and calls one library function.
#
#   snakemake --configfile config/galaxies/demo.yaml --cores 2
#   snakemake --config sample_sheet=config/galaxies.tsv --cores 8   # many galaxies
#
# config/config.yaml holds the defaults; --configfile files merge over them, and
# each galaxy of a sample sheet merges its own file over the result.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/mock.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/ifs.smk"
include: "workflow/rules/binning.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/maps.smk"


def final_products(name):
    out = [P("maps", name), P("sfh_groups", name), f"{P('plots', name)}/binmap.png",
           P("summary", name)]
    if GALAXIES[name]["ifs"]["enabled"]:
        out.append(P("specphoto", name))
    return out + ([P("accuracy", name)] if is_mock(name) else [])


rule all:
    input:
        [f for name in GALAXIES for f in final_products(name)],
    default_target: True
    localrule: True
