"""Bin map ``results/{galaxy}/binmap.fits``: which pixels form which bin, and the
binned photometry (and spectra).

Layout (see ``docs/products.md``)::

    PRIMARY       PRODUCT='BINMAP', GALAXY, NBIN, SEDMAPV, CONFHASH
    BINMAP        int32 (ny, nx): 0 = not binned, bins 1..N; WCS, BUNIT=''
    BINS          table, one row per bin: bin_id, npix, flux (n_band), flux_var (n_band),
                  snr (n_band), flag
    FILTERS       table: name, pivot_aa, psf_fwhm_arcsec
    BIN_SPEC      float32 (n_bin, n_wave), BUNIT, FSCALE       } optional,
    BIN_SPEC_VAR  float32 (n_bin, n_wave), BUNIT (flux unit^2) } all three
    WAVE          table: wave (Å, observed frame)               } or none
"""

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from ..errors import InputError
from .fits_utils import (
    DEFAULT_FSCALE,
    check_error,
    check_shape,
    flux_bunit,
    flux_scale,
    flux_var_unit,
    get_flux_image,
    get_image,
    get_table,
    image_hdu,
    open_fits,
    primary_hdu,
    provenance,
    read_wcs,
    rescale,
    table_hdu,
    write_fits,
)
from .fluxcube import Filters, filters_hdu, read_filters
from .specphoto import read_wave, validate_wave, wave_hdu

PRODUCT = "BINMAP"


@dataclass(eq=False)
class BinMap:
    """Spatial bins of one galaxy and their summed photometry.

    Bin ``k`` (1-based) is row ``k - 1`` of ``flux``, ``flux_var``, ``snr``,
    ``flag`` and ``bin_spec``. Fluxes are in units of ``fscale`` erg/s/cm2/Å,
    variances in units of ``fscale**2``. ``flag`` is a bitmask, 0 = good.
    """

    galaxy: str
    binmap: np.ndarray      #: (ny, nx) int32, 0 = not binned
    wcs: WCS
    filters: Filters
    flux: np.ndarray        #: (n_bin, n_band)
    flux_var: np.ndarray    #: (n_bin, n_band)
    snr: np.ndarray         #: (n_bin, n_band)
    flag: np.ndarray        #: (n_bin,) int32
    fscale: float = DEFAULT_FSCALE
    wave: np.ndarray | None = None          #: (n_wave,) Å
    bin_spec: np.ndarray | None = None      #: (n_bin, n_wave)
    bin_spec_var: np.ndarray | None = None  #: (n_bin, n_wave)
    config_hash: str = "none"
    sedmap_version: str = ""  #: filled in by the reader

    @property
    def n_bin(self):
        return len(self.flux)

    @property
    def bin_id(self):
        """``1..n_bin``."""
        return np.arange(1, self.n_bin + 1, dtype=np.int32)

    @property
    def npix(self):
        """Number of pixels in each bin, from ``binmap``."""
        counts = np.bincount(np.asarray(self.binmap).ravel(), minlength=self.n_bin + 1)
        return counts[1:self.n_bin + 1].astype(np.int32)


def validate_bin_map(bm, path):
    """Check ``bm``; InputError naming ``path`` on failure."""
    binmap = np.asarray(bm.binmap)
    if binmap.ndim != 2 or not np.issubdtype(binmap.dtype, np.integer):
        raise InputError(f"BINMAP must be a 2-D integer image, got {binmap.ndim}-D "
                         f"{binmap.dtype}.", path, "write bin ids as int32 (0 = not binned).")
    flux = np.asarray(bm.flux)
    if flux.ndim != 2 or flux.shape[1] != len(bm.filters):
        raise InputError(f"BINS flux has shape {flux.shape}, expected (n_bin, "
                         f"{len(bm.filters)}).", path, "give one flux per bin and band.")
    check_shape(np.asarray(bm.flux_var), flux.shape, "BINS flux_var", path, "BINS flux")
    check_shape(np.asarray(bm.snr), flux.shape, "BINS snr", path, "BINS flux")
    check_shape(np.asarray(bm.flag), flux.shape[:1], "BINS flag", path, "one row per bin")
    n_bin = flux.shape[0]
    if binmap.size and (binmap.min() < 0 or binmap.max() > n_bin):
        raise InputError(f"BINMAP holds ids from {binmap.min()} to {binmap.max()}, but BINS has "
                         f"{n_bin} bins (ids must be 0..{n_bin}).", path,
                         "number the bins 1..N without gaps, 0 for pixels not binned.")
    empty = np.flatnonzero(bm.npix == 0) + 1
    if empty.size:
        raise InputError(f"{empty.size} empty bins: bin ids {empty[:10].tolist()} have zero "
                         "pixels in BINMAP.", path,
                         "drop empty bins and renumber the bins 1..N without gaps.")
    check_error(np.asarray(bm.flux_var), np.ones(flux.shape, bool), "BINS flux_var", path,
                what="(bin, band) entries")
    spec = [bm.wave is None, bm.bin_spec is None, bm.bin_spec_var is None]
    if any(spec) and not all(spec):
        raise InputError("only some of BIN_SPEC, BIN_SPEC_VAR and WAVE are present.", path,
                         "give all three or none.")
    if not any(spec):
        bin_spec = np.asarray(bm.bin_spec)
        if bin_spec.ndim != 2 or bin_spec.shape[0] != n_bin:
            raise InputError(f"BIN_SPEC has shape {bin_spec.shape}, expected ({n_bin}, n_wave).",
                             path, "give one spectrum per bin.")
        check_shape(np.asarray(bm.bin_spec_var), bin_spec.shape, "BIN_SPEC_VAR", path,
                    "BIN_SPEC")
        validate_wave(bm.wave, bin_spec.shape[1], path)
        check_error(np.asarray(bm.bin_spec_var), np.isfinite(bin_spec), "BIN_SPEC_VAR", path,
                    what="good spectral pixels")


def write_bin_map(bm, path):
    """Write ``bm`` (a :class:`BinMap`) to ``path`` atomically; return the path."""
    validate_bin_map(bm, path)
    h = bm.config_hash
    n_band = len(bm.filters)
    bunit, varunit = flux_bunit(bm.fscale), flux_var_unit(bm.fscale)
    hdus = [
        primary_hdu(PRODUCT, h, {"GALAXY": (bm.galaxy, "galaxy name"),
                                 "NBIN": (bm.n_bin, "number of bins")}),
        image_hdu("BINMAP", np.asarray(bm.binmap, dtype=np.int32), h, bm.wcs, "",
                  {"BINNULL": (0, "bin id of pixels not binned")}),
        table_hdu("BINS", [
            ("bin_id", "J", bm.bin_id, None),
            ("npix", "J", bm.npix, None),
            ("flux", f"{n_band}D", np.asarray(bm.flux, dtype=float), bunit),
            ("flux_var", f"{n_band}D", np.asarray(bm.flux_var, dtype=float), varunit),
            ("snr", f"{n_band}D", np.asarray(bm.snr, dtype=float), None),
            ("flag", "J", np.asarray(bm.flag, dtype=np.int32), None),
        ], h, {"FSCALE": (float(bm.fscale), "flux * FSCALE = erg/s/cm2/AA")}),
        filters_hdu(bm.filters, h),
    ]
    if bm.bin_spec is not None:
        fcard = {"FSCALE": (float(bm.fscale), "data * FSCALE = erg/s/cm2/AA")}
        hdus += [
            image_hdu("BIN_SPEC", np.asarray(bm.bin_spec, dtype=np.float32), h, None, bunit,
                      fcard),
            image_hdu("BIN_SPEC_VAR", np.asarray(bm.bin_spec_var, dtype=np.float32), h, None,
                      varunit),
            wave_hdu(bm.wave, h),
        ]
    return write_fits(hdus, path)


def read_bin_map(path):
    """Read and validate a bin map."""
    hdul = open_fits(path, PRODUCT)
    binmap = get_image(hdul, "BINMAP", path, 2)
    if not np.issubdtype(binmap.dtype, np.integer):
        raise InputError(f"BINMAP has dtype {binmap.dtype}, expected an integer type.", path,
                         "write bin ids as int32.")
    filters = read_filters(hdul, path)
    n_band = len(filters)
    table = get_table(hdul, "BINS", path, ["bin_id", "npix", "flux", "flux_var", "snr", "flag"])
    cols = hdul["BINS"].columns
    fscale = flux_scale(cols["flux"].unit, path, "BINS flux")
    var_scale = flux_scale(cols["flux_var"].unit, path, "BINS flux_var", power=2)

    def col2d(name):
        return np.array(table[name], dtype=float).reshape(len(table), n_band)

    kwargs = {}
    if "BIN_SPEC" in hdul or "BIN_SPEC_VAR" in hdul or "WAVE" in hdul:
        kwargs = {"bin_spec": get_flux_image(hdul, "BIN_SPEC", path, 2, fscale),
                  "bin_spec_var": get_flux_image(hdul, "BIN_SPEC_VAR", path, 2, fscale, 2),
                  "wave": read_wave(hdul, path)}
    version, confhash = provenance(hdul[0].header)
    bm = BinMap(
        galaxy=str(hdul[0].header.get("GALAXY", "")),
        binmap=binmap.astype(np.int32),
        wcs=read_wcs(hdul["BINMAP"].header, path, "BINMAP"),
        filters=filters,
        flux=col2d("flux"),
        flux_var=rescale(col2d("flux_var"), var_scale**2, fscale**2),
        snr=col2d("snr"),
        flag=np.array(table["flag"], dtype=np.int32),
        fscale=fscale, config_hash=confhash, sedmap_version=version, **kwargs,
    )
    validate_bin_map(bm, path)
    if not np.array_equal(np.asarray(table["bin_id"]), bm.bin_id):
        raise InputError("BINS bin_id is not 1..N in order.", path,
                         "number the bins 1..N, one row per bin, in order.")
    if not np.array_equal(np.asarray(table["npix"]), bm.npix):
        raise InputError("BINS npix disagrees with the pixel counts in BINMAP.", path,
                         "rewrite the bin map with sedmap so that npix matches BINMAP.")
    return bm
