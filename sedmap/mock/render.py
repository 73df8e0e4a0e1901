"""Noiseless images of the mock in each band: the galaxy rendered on the band's native
pixels, Milky-Way extinction, foreground stars (blackbodies) and cosmic-ray hits."""

import numpy as np
from scipy.special import erf

from ..constants import AB_MAG_CGS, C_AA_PER_S, FWHM_TO_SIGMA, HC_OVER_K_AA_K
from ..filters import filter_matrix, get_filter
from .geometry import _block_sum, _fine_coords, _inverse_gnomonic, _sub_factor
from .psf import convolve_psf, is_gaussian, point_sources
from .surveys import flam_per_native_unit
from .units import milky_way_transmission


def render_band(galaxy, band, wcs, shape, phot_col):
    """Noiseless galaxy image of one band, erg/s/cm^2/AA per native pixel (no extinction)."""
    cfg = galaxy.cfg
    k = _sub_factor(band["pixscale"], cfg["fine_pixscale"])
    sub = band["pixscale"] / k
    xi, eta = _fine_coords(wcs, shape, k, cfg["ra"], cfg["dec"])
    img = galaxy.flux(galaxy.sample(xi, eta, sub * sub), phot_col)
    return _block_sum(convolve_psf(img, band, sub), k)


def _pixel_gaussian(shape, x0, y0, sigma_pix):
    """Unit-flux circular Gaussian integrated over pixels (0-based centre x0, y0)."""
    ny, nx = shape
    s = np.sqrt(2.0) * sigma_pix

    def prof(n, c):
        e = np.arange(n + 1) - 0.5 - c
        return 0.5 * np.diff(erf(e / s))

    return np.outer(prof(ny, y0), prof(nx, x0))


def _blackbody_mags(teff, filters, ref_filter, ref_mag):
    """AB magnitudes of a blackbody normalised to ``ref_mag`` in ``ref_filter``."""
    names = [ref_filter] + list(filters)
    # 900 AA - 30 um at 6000 points; as densely to the reddest filter's edge beyond it
    hi = max([3.0e5] + [get_filter(n).wave_max * 1.001 for n in names])
    npts = 6000 if hi == 3.0e5 else int(np.ceil(6000 * np.log(hi / 900.0)
                                                  / np.log(3.0e5 / 900.0)))
    wave = np.geomspace(900.0, hi, npts)
    x = HC_OVER_K_AA_K / (wave * teff)  # h c / (lambda k T), lambda in AA
    flam = 1.0 / (wave**5 * np.expm1(x))
    band = filter_matrix(names, wave) @ flam
    piv = np.array([get_filter(n).pivot_wavelength for n in names])
    fnu = band * piv**2 / C_AA_PER_S
    mags = -2.5 * np.log10(fnu) - AB_MAG_CGS
    return mags[1:] - mags[0] + ref_mag


def _star_catalogue(cfg, filters):
    """List of (ra, dec, teff, ref_mag, mags per filter)."""
    out = []
    for s in cfg["stars"]:
        ra, dec = _inverse_gnomonic(s["offset_arcsec"][0], s["offset_arcsec"][1],
                                    cfg["ra"], cfg["dec"])
        mags = _blackbody_mags(s["teff"], filters, cfg["star_ref_filter"], s["mag"])
        out.append((float(ra), float(dec), float(s["teff"]), float(s["mag"]), mags))
    return out


def _cosmic_rays(rng, shape, sigma, count):
    """Image of cosmic-ray hits: 1-2 pixel events of 30-300 local sigma."""
    ny, nx = shape
    out = np.zeros(shape)
    for _ in range(count):
        y, x = int(rng.integers(2, ny - 2)), int(rng.integers(2, nx - 2))
        amp = rng.uniform(30.0, 300.0) * sigma[y, x]
        out[y, x] += amp
        if rng.random() < 0.5:
            dy, dx = [(0, 1), (1, 0), (1, 1), (1, -1)][int(rng.integers(4))]
            out[y + dy, x + dx] += amp * rng.uniform(0.3, 1.0)
    return out


class _BandSetup:
    """Per-band constants of a mock: filters, photometry, extinction, units, stars."""

    def __init__(self, cfg, galaxy):
        self.cfg, self.galaxy = cfg, galaxy
        self.bands = cfg["bands"]
        self.filters = [get_filter(b["filter"]).name for b in self.bands]
        self.pivots = np.array([get_filter(f).pivot_wavelength for f in self.filters])
        self.phot = galaxy.photometry(self.filters)
        self.trans = milky_way_transmission(self.pivots, cfg["ebv"])
        self.units = [flam_per_native_unit(b) for b in self.bands]
        self.stars = _star_catalogue(cfg, self.filters)

    def noiseless(self, ib, wcs, shape, stars=True, extinction=True):
        """Noiseless sky-subtracted image of band ``ib`` in native units."""
        band = self.bands[ib]
        img = render_band(self.galaxy, band, wcs, shape, self.phot[:, ib])
        if extinction:
            img *= self.trans[ib]
        img /= self.units[ib]
        if stars and self.stars:
            xy = [tuple(float(v) for v in wcs.wcs_world2pix(ra, dec, 0))
                  for ra, dec, _, _, _ in self.stars]
            flux = [10 ** (-0.4 * (mags[ib] + AB_MAG_CGS)) * C_AA_PER_S / self.pivots[ib] ** 2
                    / self.units[ib] for _, _, _, _, mags in self.stars]
            k = _sub_factor(band["pixscale"], self.cfg["fine_pixscale"])
            if is_gaussian(band):  # exact integrals over the pixels
                sig = band["psf_fwhm"] * FWHM_TO_SIGMA / band["pixscale"]
                for (x, y), f in zip(xy, flux):
                    img += f * _pixel_gaussian(shape, x, y, sig)
            else:
                img += point_sources(shape, k, xy, flux, band)
        return img
