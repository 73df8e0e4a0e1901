"""Where the products live under ``results_dir``: one table that the command line
(:mod:`sedmap.cli`), the workflow's rules (workflow/rules/common.smk) and the run
summary share.

``results_dir/GALAXY/<PRODUCTS[name]>`` is a galaxy's product ``name``;
``results_dir/models/<grid key>.h5`` a model grid (shared by galaxies with equal
``models`` sections); ``results_dir/logs/`` the job logs and benchmarks.
"""

from pathlib import Path

#: the mock's files, under its folder (``PRODUCTS["mock"]``)
MOCK_FILES = {"truth": "truth.fits", "bands": "bands.yaml", "cube": "ifs.fits"}

#: product name -> path under results_dir/GALAXY (docs/products.md)
PRODUCTS = {
    "mock": "mock",                    # the mock's raw images, truth, bands.yaml
    "truth": f"mock/{MOCK_FILES['truth']}",
    "mock_bands": f"mock/{MOCK_FILES['bands']}",  # the band specs of its raw images
    "mock_cube": f"mock/{MOCK_FILES['cube']}",    # its IFS cube
    "images": "images",                # calibrated and matched band images, grid.json
    "image_grid": "images/grid.json",  # the common grid and the target PSF
    "cube_bands": "cube_bands",        # synthetic bands of the IFS cube
    "fluxmap": "fluxmap.fits",
    "specphoto": "specphoto.fits",
    "binmap": "binmap.fits",
    "rdsps": "rdsps",                  # rdsps/bin_K.h5, population_prior.json
    "fits": "fits",                    # fits/job_J/bin_K.h5 (fit.method's refits)
    "maps": "maps.fits",
    "profiles": "profiles.fits",
    "sfh_groups": "sfh_groups.fits",
    "accuracy": "accuracy.json",
    "summary": "summary.html",
    "plots": "plots",
}
#: folders under results_dir shared by the galaxies
MODELS_DIR, LOGS_DIR = "models", "logs"
#: a bin's fit file (``rdsps/`` and ``fits/job_J/``) and a refit job's folder, by number
BIN_FILE, JOB_DIR = "bin_{}.h5", "job_{}"


def galaxy_dir(results_dir, galaxy):
    """``results_dir/GALAXY``: a galaxy's products."""
    return Path(results_dir) / str(galaxy)


def product_path(results_dir, galaxy, name):
    """The path of product ``name`` (a key of :data:`PRODUCTS`) of ``galaxy``."""
    return galaxy_dir(results_dir, galaxy) / PRODUCTS[name]


def bin_file(folder, bin_id):
    """``folder/bin_K.h5``: the fit file of bin ``bin_id`` (1-based) in ``folder``."""
    return Path(folder) / BIN_FILE.format(int(bin_id))


def job_dir(fits_dir, job):
    """``fits_dir/job_J``: the folder of refit job ``job``."""
    return Path(fits_dir) / JOB_DIR.format(job)


def grid_path(results_dir, key):
    """``results_dir/models/<key>.h5``: the model grid of grid key ``key``
    (:func:`sedmap.config.grid_key`)."""
    return Path(results_dir) / MODELS_DIR / f"{key}.h5"
