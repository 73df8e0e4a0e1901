"""Imaging stage: raw survey images -> one PSF-matched, extinction-corrected flux cube.

Per band (independent, one Snakemake job each):

1. ``surveys.load_band(spec)`` reads the image in its survey's native units,
   cleans cosmic rays if asked, estimates and subtracts the background
   (``background``), builds the variance with the survey's own recipe, and
   converts both to erg/s/cm^2/AA per pixel -> ``BandImage`` at native
   resolution.
2. ``grid.reproject_band`` puts it on the common grid (the coarsest pixel
   scale, TAN, north up, centred on the galaxy), conserving flux.
3. ``psf.match_band`` convolves it to the target (worst) PSF: flux with the
   kernel K, variance with K^2.

Then, all bands together: ``region`` (segmentation, galaxy region, star
masks) and ``pipeline`` (Galactic extinction, the flux cube written through
``sedmap.io``).
"""
