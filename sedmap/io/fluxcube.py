"""Flux cube ``results/{galaxy}/fluxmap.fits``: PSF-matched multiband photometry.

Layout (see ``docs/products.md``)::

    PRIMARY        PRODUCT='FLUXMAP', GALAXY, RA, DEC, Z, PIXSIZE, PSFFWHM, EBV,
                   SEDMAPV, CONFHASH
    FLUX           float32 (n_band, ny, nx), BUNIT, FSCALE, WCS
    FLUX_ERR       float32 (n_band, ny, nx), BUNIT, FSCALE, WCS   (1-sigma)
    GALAXY_REGION  uint8   (ny, nx), 1 = inside the galaxy, WCS
    FILTERS        table: name, pivot_aa, psf_fwhm_arcsec
    NOISE_CORR     float64 (n_band, 2L+1, 2L+1), optional: correlation
                   coefficient of the noise of two pixels by their offset
                   (centre = 0 offset); header SKYERRk: the error of band k's
                   sky level per pixel (in FSCALE units), shared by every
                   pixel, so fully correlated (it is included in FLUX_ERR)
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
    get_flux_image,
    get_hdu,
    get_image,
    get_table,
    header_float,
    header_flux_scale,
    image_hdu,
    open_fits,
    primary_hdu,
    provenance,
    read_wcs,
    table_hdu,
    write_fits,
)

PRODUCT = "FLUXMAP"


@dataclass
class Filters:
    """The photometric bands, in the order of the band axis."""

    name: list
    pivot_aa: np.ndarray           #: pivot wavelength, Å
    psf_fwhm_arcsec: np.ndarray    #: native PSF FWHM of the image, arcsec
    calib_err: np.ndarray = None   #: fractional zero-point error of each band (0 = none)

    def __post_init__(self):
        self.name = [str(n) for n in self.name]
        self.pivot_aa = np.asarray(self.pivot_aa, dtype=float)
        self.psf_fwhm_arcsec = np.asarray(self.psf_fwhm_arcsec, dtype=float)
        self.calib_err = (np.zeros(len(self.name)) if self.calib_err is None
                          else np.asarray(self.calib_err, dtype=float))

    def __len__(self):
        return len(self.name)

    def __eq__(self, other):
        return (isinstance(other, Filters) and self.name == other.name
                and np.array_equal(self.pivot_aa, other.pivot_aa)
                and np.array_equal(self.psf_fwhm_arcsec, other.psf_fwhm_arcsec)
                and np.array_equal(self.calib_err, other.calib_err))


@dataclass(eq=False)
class FluxCube:
    """Multiband flux cube of one galaxy.

    ``flux`` and ``flux_err`` are in units of ``fscale`` erg/s/cm2/Å
    (``flux * fscale`` is in erg/s/cm2/Å); ``region`` is True inside the
    galaxy. ``ra``/``dec`` in degrees, ``pixsize`` and ``psf_fwhm`` (the
    target PSF all bands were matched to) in arcsec.
    """

    galaxy: str
    flux: np.ndarray        #: (n_band, ny, nx)
    flux_err: np.ndarray    #: (n_band, ny, nx), 1-sigma
    region: np.ndarray      #: (ny, nx) bool
    wcs: WCS
    filters: Filters
    ra: float
    dec: float
    z: float
    pixsize: float
    psf_fwhm: float
    ebv: float
    fscale: float = DEFAULT_FSCALE
    config_hash: str = "none"
    sedmap_version: str = ""  #: filled in by the reader
    noise_corr: np.ndarray = None  #: (n_band, 2L+1, 2L+1) or None (independent pixels)
    sky_err: np.ndarray = None     #: (n_band,) shared sky-level error per pixel, or None

    @property
    def shape(self):
        """``(ny, nx)`` of the images."""
        return tuple(self.region.shape)


def validate_flux_cube(cube, path):
    """Check shapes and errors of ``cube``; InputError naming ``path`` on failure."""
    flux, err, region = np.asarray(cube.flux), np.asarray(cube.flux_err), np.asarray(cube.region)
    if flux.ndim != 3:
        raise InputError(f"FLUX has {flux.ndim} dimensions, expected 3 (n_band, ny, nx).", path,
                         "stack the band images into one (n_band, ny, nx) array.")
    check_shape(err, flux.shape, "FLUX_ERR", path, "FLUX")
    check_shape(region, flux.shape[1:], "GALAXY_REGION", path, "one FLUX plane")
    if len(cube.filters) != flux.shape[0]:
        raise InputError(f"FILTERS has {len(cube.filters)} rows but FLUX has "
                         f"{flux.shape[0]} bands.", path, "give one filter row per band.")
    inside = np.broadcast_to(region.astype(bool), flux.shape)
    check_error(err, inside, "FLUX_ERR", path)
    nbad = int(np.count_nonzero(inside & ~np.isfinite(flux)))
    if nbad:
        raise InputError(f"FLUX is NaN or infinite in {nbad} pixels inside the galaxy region.",
                         path, "shrink GALAXY_REGION to where every band has data.")
    if not np.isfinite(cube.fscale) or cube.fscale <= 0:
        raise InputError(f"FSCALE {cube.fscale} is not a positive number.", path,
                         "use a positive flux scale such as 1e-17.")
    if cube.noise_corr is not None:
        rho = np.asarray(cube.noise_corr)
        if (rho.ndim != 3 or rho.shape[0] != flux.shape[0] or rho.shape[1] != rho.shape[2]
                or rho.shape[1] % 2 == 0):
            raise InputError(f"NOISE_CORR has shape {rho.shape}, expected (n_band, 2L+1, 2L+1) "
                             f"with n_band = {flux.shape[0]}.", path,
                             "rebuild the flux map with the imaging stage.")
        c = rho.shape[1] // 2
        if not (np.all(np.isfinite(rho)) and np.allclose(rho[:, c, c], 1.0)):
            raise InputError("NOISE_CORR is not a correlation (NaN, or not 1 at zero offset).",
                             path, "rebuild the flux map with the imaging stage.")


# --------------------------------------------------------------------------- shared parts

def filters_hdu(filters, confhash):
    """The FILTERS table extension."""
    width = max([len(n) for n in filters.name] + [1])
    return table_hdu("FILTERS", [
        ("name", f"{width}A", np.array(filters.name), None),
        ("pivot_aa", "D", filters.pivot_aa, "Angstrom"),
        ("psf_fwhm_arcsec", "D", filters.psf_fwhm_arcsec, "arcsec"),
        ("calib_err", "D", filters.calib_err, None),
    ], confhash)


def read_filters(hdul, path):
    """Filters from the FILTERS table extension."""
    data = get_table(hdul, "FILTERS", path, ["name", "pivot_aa", "psf_fwhm_arcsec"])
    calib = np.array(data["calib_err"]) if "calib_err" in data.columns.names else None
    return Filters([str(n).strip() for n in data["name"]], np.array(data["pivot_aa"]),
                   np.array(data["psf_fwhm_arcsec"]), calib)


def flux_cube_hdus(cube, product):
    """All HDUs of a flux cube, with primary ``PRODUCT=product``."""
    h = cube.config_hash
    bunit = flux_bunit(cube.fscale)
    fcard = {"FSCALE": (float(cube.fscale), "data * FSCALE = erg/s/cm2/AA")}
    primary = primary_hdu(product, h, {
        "GALAXY": (cube.galaxy, "galaxy name"),
        "RA": (float(cube.ra), "[deg] galaxy centre"),
        "DEC": (float(cube.dec), "[deg] galaxy centre"),
        "Z": (float(cube.z), "redshift"),
        "PIXSIZE": (float(cube.pixsize), "[arcsec] pixel size"),
        "PSFFWHM": (float(cube.psf_fwhm), "[arcsec] target PSF FWHM of all bands"),
        "EBV": (float(cube.ebv), "[mag] Milky Way E(B-V)"),
    })
    hdus = [
        primary,
        image_hdu("FLUX", np.asarray(cube.flux, dtype=np.float32), h, cube.wcs, bunit, fcard),
        image_hdu("FLUX_ERR", np.asarray(cube.flux_err, dtype=np.float32), h, cube.wcs, bunit,
                  fcard),
        image_hdu("GALAXY_REGION", np.asarray(cube.region, dtype=np.uint8), h, cube.wcs, ""),
        filters_hdu(cube.filters, h),
    ]
    if cube.noise_corr is not None:
        sky = np.zeros(len(cube.filters)) if cube.sky_err is None else np.asarray(cube.sky_err)
        cards = {f"SKYERR{k + 1}": (float(v), f"sky-level error per pixel, {n}")
                 for k, (v, n) in enumerate(zip(sky, cube.filters.name))}
        hdus.append(image_hdu("NOISE_CORR", np.asarray(cube.noise_corr, dtype=float), h,
                              None, "", cards))
    return hdus


def flux_cube_from_hdul(hdul, path):
    """FluxCube from an in-memory HDUList (also used for specphoto files)."""
    head = hdul[0].header
    fscale = header_flux_scale(get_hdu(hdul, "FLUX", path).header, path, "FLUX")
    flux = get_flux_image(hdul, "FLUX", path, 3, fscale)
    err = get_flux_image(hdul, "FLUX_ERR", path, 3, fscale)
    region = get_image(hdul, "GALAXY_REGION", path, 2).astype(bool)
    version, confhash = provenance(head)
    cube = FluxCube(
        galaxy=str(head.get("GALAXY", "")),
        flux=flux, flux_err=err, region=region,
        wcs=read_wcs(hdul["FLUX"].header, path, "FLUX"),
        filters=read_filters(hdul, path),
        ra=header_float(head, "RA", path), dec=header_float(head, "DEC", path),
        z=header_float(head, "Z", path), pixsize=header_float(head, "PIXSIZE", path),
        psf_fwhm=header_float(head, "PSFFWHM", path), ebv=header_float(head, "EBV", path),
        fscale=fscale, config_hash=confhash, sedmap_version=version,
    )
    if "NOISE_CORR" in hdul:
        cube.noise_corr = get_image(hdul, "NOISE_CORR", path, 3).astype(float)
        hc = hdul["NOISE_CORR"].header
        cube.sky_err = np.array([float(hc.get(f"SKYERR{k + 1}", 0.0))
                                 for k in range(len(cube.filters))])
    validate_flux_cube(cube, path)
    return cube


# --------------------------------------------------------------------------- public API

def write_flux_cube(cube, path):
    """Write ``cube`` (a :class:`FluxCube`) to ``path`` atomically; return the path."""
    validate_flux_cube(cube, path)
    return write_fits(flux_cube_hdus(cube, PRODUCT), path)


def read_flux_cube(path):
    """Read and validate a flux cube (also reads the photometry of a specphoto file)."""
    hdul = open_fits(path, (PRODUCT, "SPECPHOTO"))
    return flux_cube_from_hdul(hdul, path)
