"""Spatial binning of a flux cube: SED-shape similarity or Voronoi (vorbin).

Both return a bin map (0 = not binned, bins numbered 1..N, every bin one
4-connected piece; Voronoi cells 8-connected) and a flag per bin. Every valid
pixel of the galaxy region ends in a bin.

Bin sizes (``min_npix``, ``max_npix``; the binning stage sets them from the
target PSF, ``binning.d_min`` and ``binning.max_area``):

* a bin covers at least ``min_npix`` pixels: by default one PSF area,
  pi (FWHM / 2)^2 of the target PSF, so that neighbouring bins do not share
  most of their light (``binning.d_min`` is the diameter in target FWHMs; 0
  drops the floor and bins may be single pixels, as before);
* a bin grows to at most ``max_npix`` pixels (``binning.max_area`` PSF
  areas): pixels that cannot reach the S/N target within that size are binned
  at the S/N they can reach (below), never swept into one large bin.

SED-shape-similarity binning (Abdurro'uf & Akiyama 2017; piXedfit's
``pixel_binning``), with piXedfit's faults fixed:

* a bin starts at the brightest unbinned pixel of the reference band and
  grows in annuli of ``del_r`` pixels from radius ``max(d_min / 2, 0.5)`` (or
  the smallest disc of ``min_npix`` pixels), taking only pixels whose SED
  matches the seed's shape (reduced chi-square with the best scaling below
  ``redc_chi2_limit``) and that connect to the bin (so bins are contiguous);
* it is complete when it has ``min_npix`` pixels and reaches
  ``sn_threshold`` in every required band; it fails when it passes
  ``max_npix`` pixels or ``max_radius``, or when no pixel bordering it passes
  the SED test (it cannot grow: the same outcome as growing on to
  ``max_radius``);
* negative fluxes are clipped to 0 only inside the chi-square test, never in
  the binned fluxes;
* seeding stops after ``max_failures`` consecutive failed seeds (the seeds
  only get fainter);
* the default reference band is the band with the highest S/N summed over
  the galaxy region;
* the noise of PSF-matched, reprojected images is correlated between nearby
  pixels: with the flux cube's ``noise_corr`` (``grid.noise_correlation``)
  the variance of a bin's sum includes every pixel pair's covariance, and
  the shared sky-level error (``sky_err``) adds coherently; piXedfit sums the
  pixel variances only, which overstates the S/N of large bins several times;
* the growth is a compiled loop (:mod:`sedmap.binning_kernels`) that tests each
  pixel's SED once per seed, only where the bin reaches.

Leftover pixels (:func:`bin_leftovers`; those no complete bin took, and for
Voronoi binning those of cells larger than ``max_npix``) are binned without
the SED test, brightest first: a bin accretes the bordering leftover pixel
nearest to its centroid, one at a time (round bins, or sectors of a thin
ring), until it reaches the thresholds with at least ``min_npix`` pixels
(``leftover_min_npix`` when larger: the binning stage makes every leftover
bin one PSF area at least, whatever ``d_min``) or has ``max_npix`` pixels. One short
of the thresholds keeps the size, between
``min_npix`` and ``max_npix`` pixels, at which it came closest to them (the
mean over required bands of min(S/N / threshold, 1): with a shared sky
error the S/N of faint pixels peaks at some size), and gives the rest back
to later bins. Then (:func:`sedmap.binning_kernels.merge_bins`) pieces
smaller than ``min_npix`` join the neighbouring bin they share the longest
border with (one they fit in within ``max_npix`` if any; a piece of the
region with no neighbouring bin, an island, stays unbinned), and each
bin short of the thresholds (a leftover bin, or a Voronoi cell below the
target) merges with the neighbour with which,
within ``max_npix`` pixels, it meets them, or, that neighbour short too,
comes closer to them than either alone, until no such pair is left. Bins
short of the thresholds are flagged ``FLAG_LOW_SNR``; the bin map's ``snr``
holds what they reach.
"""

import logging

import numpy as np
from scipy import ndimage

from . import binning_kernels as kern
from .constants import FLAG_BAD_SED, FLAG_LOW_SNR
from .errors import InputError
from .io import BinMap

log = logging.getLogger(__name__)

_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = ndimage.generate_binary_structure(2, 2)
_NO_CAP = np.iinfo(np.int64).max // 4


def psf_area_pixels(fwhm_arcsec, pixsize_arcsec):
    """Area pi (FWHM / 2)^2 of a PSF of FWHM ``fwhm_arcsec``, in pixels of
    ``pixsize_arcsec`` (both arcsec)."""
    return float(np.pi * (fwhm_arcsec / 2.0) ** 2 / pixsize_arcsec**2)


def large_bin_fraction(binmap, region, area_pix, n_area=50.0):
    """Fraction of the ``region`` pixels that lie in bins of more than
    ``n_area`` areas of ``area_pix`` pixels each (e.g. PSF areas)."""
    npix = np.bincount(np.asarray(binmap).ravel())
    big = npix > n_area * area_pix
    big[0] = False
    return float(big[binmap][np.asarray(region, bool)].mean()) if np.any(region) else 0.0


def _valid_pixels(flux, var, region):
    ok = np.all(np.isfinite(flux) & np.isfinite(var) & (var > 0), axis=0)
    return np.asarray(region, bool) & ok


def default_reference_band(flux, var, region):
    """Index of the band with the highest S/N summed over ``region``."""
    valid = _valid_pixels(flux, var, region)
    if not valid.any():
        raise InputError("no valid pixel in the galaxy region (all NaN or zero variance)",
                         path="fluxmap.fits", fix="check the imaging stage's products")
    s = np.nansum(np.where(valid, flux, 0.0), axis=(1, 2))
    n = np.sqrt(np.nansum(np.where(valid, var, 0.0), axis=(1, 2)))
    return int(np.argmax(s / n))


def _chi2_red(f_cand, v_cand, f_seed, v_seed):
    """Reduced chi-square of candidate SEDs (m, nb) against the seed's (nb,), best scaling.

    Fluxes and variances in any consistent units (the chi-square is
    dimensionless). Negative fluxes are clipped to 0 here only (for the shape test).
    """
    fc = np.clip(f_cand, 0.0, None)
    fs = np.clip(f_seed, 0.0, None)
    return _chi2_red_clipped(fc, fc.sum(axis=1), v_cand, fs, fs.sum(), v_seed)


def _chi2_red_clipped(fc, fc_sum, v_cand, fs, fs_sum, v_seed):
    """:func:`_chi2_red` on fluxes already clipped at 0, with their band sums given.

    ``fc`` (m, nb), ``fc_sum`` (m,), ``v_cand`` (m, nb): candidates; ``fs``,
    ``v_seed`` (nb,), ``fs_sum`` (scalar): the seed.
    """
    # first guess of the scale from the sums, then one weighted least-squares step
    s0 = fc_sum / max(fs_sum, 1e-300)
    w = 1.0 / (v_cand + s0[:, None] ** 2 * v_seed[None, :])
    s = (fc * fs * w).sum(axis=1) / np.maximum((fs**2 * w).sum(axis=1), 1e-300)
    w = 1.0 / (v_cand + s[:, None] ** 2 * v_seed[None, :])
    chi2 = ((fc - s[:, None] * fs) ** 2 * w).sum(axis=1)
    return chi2 / max(fc.shape[1] - 1, 1)


def _growth_radii(del_r, d_min, max_radius, min_npix):
    """Growth radii (pixels): r_0, r_0 + del_r, ... up to the first >= ``max_radius``;
    r_0 = max(d_min / 2, 0.5, radius of the smallest disc of ``min_npix`` pixels)."""
    r0 = max(d_min / 2.0, 0.5)
    if min_npix > 1:
        h = int(np.ceil(np.sqrt(min_npix))) + 2
        dy, dx = np.mgrid[-h:h + 1, -h:h + 1]
        d2 = np.sort((dy**2 + dx**2).ravel())
        r0 = max(r0, float(np.sqrt(d2[int(np.ceil(min_npix)) - 1])))
    radii = []
    r = r0
    while True:   # the same float steps as the growth always took
        radii.append(r)
        if r >= max_radius:
            break
        r += del_r
    return np.array(radii)


def _size_limits(min_npix, max_npix):
    """(min, max) pixel counts as ints; InputError when they contradict."""
    lo = max(int(np.ceil(min_npix or 0)), 1)
    hi = _NO_CAP if max_npix is None else int(np.floor(max_npix))
    if hi < lo:
        raise InputError(f"the largest bin ({hi} pixels) is smaller than the smallest "
                         f"({lo} pixels)", path="binning.max_area",
                         fix="raise binning.max_area or lower binning.d_min")
    return lo, hi


def _pixel_major(a):
    """(n_band, ny, nx) -> contiguous (ny * nx, n_band)."""
    return np.ascontiguousarray(np.moveaxis(a, 0, -1)).reshape(-1, a.shape[0])


def bin_sed_similarity(flux, var, region, sn_threshold=10.0, ref_band=None,
                       redc_chi2_limit=4.0, del_r=2.0, d_min=2.0, max_radius=30.0,
                       required_bands=None, max_failures=100, noise_corr=None, sky_err=None,
                       min_npix=0, max_npix=None, leftover_min_npix=0):
    """SED-shape-similarity binning, then the leftover pixels (module docstring).

    Parameters
    ----------
    flux, var : ndarray (n_band, ny, nx)
        Fluxes and variances (any consistent units).
    region : ndarray (ny, nx) of bool
        Pixels to bin.
    sn_threshold : float or sequence (n_band,)
        S/N each bin must reach in each required band.
    ref_band : int, optional
        Band whose brightest pixel seeds each bin (default: highest total S/N).
    redc_chi2_limit : float
        Largest reduced chi-square of a pixel's SED against the seed's.
    del_r : float
        Annulus width, pixels.
    d_min : float
        Diameter, pixels, of the first disc a bin grows from.
    max_radius : float
        A bin that has not reached the thresholds at this radius (pixels) is abandoned.
    required_bands : sequence of int, optional
        Bands whose threshold must be met (default: all).
    max_failures : int
        Seeds come in order of decreasing brightness; after this many
        consecutive seeds fail to make a bin, the remaining pixels are leftovers.
    noise_corr, sky_err : optional
        The flux cube's pixel-noise correlation and shared sky error
        (:class:`NoiseModel`); the S/N of a bin then counts every covariance.
    min_npix : float
        Fewest pixels in a bin (e.g. one PSF area); 0 = no floor.
    max_npix : float, optional
        Most pixels a bin grows to; None = no cap (leftovers are then binned
        in pieces of whatever size reaches the thresholds, or whole).

    Returns
    -------
    binmap : ndarray (ny, nx) of int32
    flag : ndarray (n_bin,) of int32
    """
    flux = np.asarray(flux, dtype=float)
    var = np.asarray(var, dtype=float)
    nb, ny, nx = flux.shape
    valid = _valid_pixels(flux, var, region)
    if ref_band is None:
        ref_band = default_reference_band(flux, var, region)
    thr, req = _thresholds(sn_threshold, required_bands, nb)
    lo, hi = _size_limits(min_npix, max_npix)
    noise = NoiseModel(noise_corr, sky_err, n_band=nb)
    f, v = _pixel_major(flux), _pixel_major(var)
    s = _own_sigma(noise, v)
    fc = np.clip(f, 0.0, None)   # negative fluxes clipped for the shape test only
    order = _brightest_first(flux[ref_band], valid)
    radii = _growth_radii(del_r, d_min, max_radius, min_npix)
    rho, sky, tab_n, tab_fac = noise.kernel_args()
    flat = kern.grow_sed_bins(
        f, v, s, fc, fc.sum(axis=1), valid.ravel().copy(), ny, nx, order, thr, req,
        float(redc_chi2_limit), radii, int(np.ceil(max_radius)), lo if min_npix else 0, hi,
        int(max_failures), rho, sky, tab_n, tab_fac, noise.correlated)
    return bin_leftovers(flat.reshape(ny, nx), valid, flux, var, thr, req, noise, ref_band,
                         min_npix=min_npix, max_npix=max_npix, complete=True,
                         leftover_min_npix=leftover_min_npix, _pixels=(f, s))


def _own_sigma(noise, v):
    """Pixels' own noise (n_pix, n_band) from their variances ``v`` (n_pix, n_band)."""
    if not noise.correlated:
        return np.sqrt(v)
    return np.ascontiguousarray(noise.own_sigma(v.T).T)


def _brightest_first(image, mask):
    """Flat indices of the ``mask`` pixels by decreasing ``image`` (ties: the
    smaller index)."""
    idx = np.flatnonzero(mask)
    return idx[np.argsort(-np.asarray(image).ravel()[idx], kind="stable")]


def _thresholds(sn_threshold, required_bands, nb):
    """(thr (nb,), req (nb,) bool) from a threshold (one or per band) and band indices."""
    thr = np.broadcast_to(np.asarray(sn_threshold, dtype=float), (nb,)).copy()
    req = np.zeros(nb, bool)
    req[list(range(nb)) if required_bands is None else list(required_bands)] = True
    return thr, req


def bin_leftovers(binmap, valid, flux, var, thr, req, noise=None, order_band=0, min_npix=0,
                  max_npix=None, complete=False, leftover_min_npix=0, _pixels=None):
    """Bin every ``valid`` pixel that ``binmap`` leaves at 0 (the rule in the module
    docstring), then renumber the bins 1..N and flag those short of the thresholds.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
        Bins 1..K (need not be consecutive), 0 elsewhere.
    valid : ndarray (ny, nx) of bool
    flux, var : ndarray (n_band, ny, nx)
    thr : ndarray (n_band,)
        S/N thresholds; ``req`` (n_band,) bool: the bands that must meet them.
    noise : NoiseModel, optional
    order_band : int
        Band whose brightest leftover pixel seeds each leftover bin.
    min_npix, max_npix
        Fewest / most pixels of a bin, as in :func:`bin_sed_similarity`.
    complete : bool
        The bins of ``binmap`` are known to meet the thresholds (complete SED
        bins); otherwise they are tested.
    leftover_min_npix : float
        Fewest pixels of a leftover bin, when more than ``min_npix`` (the
        binning stage: one PSF area, whatever ``binning.d_min``): a few faint
        pixels at the region's edge are not a bin a fit can say anything about;
        they join a neighbour, or, an island, stay unbinned.

    Returns
    -------
    binmap : ndarray (ny, nx) of int32
    flag : ndarray (n_bin,) of int32
        ``FLAG_LOW_SNR`` where the bin misses a required threshold.
    """
    nb, ny, nx = flux.shape
    noise = noise if noise is not None else NoiseModel(n_band=nb)
    lo, hi = _size_limits(min_npix, max_npix)
    lo_left = min(max(lo, int(np.ceil(leftover_min_npix or 0))), hi)
    # (_pixels: the pixel-major fluxes and own noise, when the caller has them)
    f, s = _pixels if _pixels is not None else (_pixel_major(flux),
                                                 _own_sigma(noise, _pixel_major(var)))
    rho, sky, _, _ = noise.kernel_args()
    thr = np.asarray(thr, dtype=float)
    req = np.asarray(req, dtype=bool)
    flat = np.asarray(binmap, np.int32).ravel().copy()
    left = np.asarray(valid, bool).ravel() & (flat == 0)
    order = _brightest_first(flux[order_band], left)
    first = int(flat.max()) + 1
    n_new, _ = kern.accrete_bins(f, s, left, flat, ny, nx, order, thr, req, lo_left, hi, first,
                                 rho, sky)
    done = np.zeros(first + n_new, bool)
    done[1:first] = complete
    done = kern.merge_bins(flat, ny, nx, first, f, s, rho, sky, thr, req, lo, hi, done,
                           lo_left)
    ids = np.zeros(done.size, np.int32)
    present = np.zeros(done.size, bool)
    present[flat] = True
    present[0] = False
    ids[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    flag = np.where(done[present], 0, FLAG_LOW_SNR).astype(np.int32)
    return ids[flat].reshape(ny, nx), flag


class NoiseModel:
    """Correlated pixel noise: the variance of a sum of pixels.

    Parameters
    ----------
    noise_corr : ndarray (n_band, 2L+1, 2L+1) or None
        Correlation coefficient of two pixels' noise by their offset (1 at the
        centre), from ``FluxCube.noise_corr``; None: independent pixels.
    sky_err : ndarray (n_band,) or None
        Error of the sky level per pixel, shared by every pixel (fully
        correlated) and included in the pixel variances.

    Notes
    -----
    The variance of the sum over a set S of pixels is::

        V(S) = sum_{p,q in S} s_p s_q rho(p - q) + (N sky)^2,   s_p^2 = var_p - sky^2

    (``s``: the pixel's own noise, whose correlation ``rho`` leaves; the
    approximation ``cov = s_p s_q rho`` holds where the variance varies slowly
    over ``rho``'s width).
    """

    def __init__(self, noise_corr=None, sky_err=None, n_band=None):
        self.rho = None if noise_corr is None else np.asarray(noise_corr, dtype=float)
        nb = n_band if self.rho is None else self.rho.shape[0]
        self.sky = np.zeros(nb) if sky_err is None else np.asarray(sky_err, dtype=float)
        self._table = None

    @property
    def correlated(self):
        """True when a sum's variance is not the sum of the pixel variances."""
        return (self.rho is not None and self.rho.shape[1] > 1) or bool(np.any(self.sky > 0))

    def own_sigma(self, var):
        """Pixel noise without the shared sky term, (n_band, ...) like ``var``."""
        sky2 = self.sky.reshape((-1,) + (1,) * (np.ndim(var) - 1)) ** 2
        return np.sqrt(np.clip(var - sky2, 0.0, None))

    def sum_variance(self, ys, xs, sig):
        """Variance of the sum over pixels (ys, xs) with own noise ``sig`` (n, n_band)."""
        ys, xs = np.atleast_1d(ys), np.atleast_1d(xs)
        sig = np.asarray(sig, dtype=float).reshape(ys.size, -1)
        n = ys.size
        if self.rho is None or self.rho.shape[1] == 1:
            return (sig**2).sum(axis=0) + (n * self.sky) ** 2
        from scipy.signal import fftconvolve

        y0, x0 = ys.min(), xs.min()
        img = np.zeros((sig.shape[1], ys.max() - y0 + 1, xs.max() - x0 + 1))
        img[:, ys - y0, xs - x0] = sig.T
        conv = fftconvolve(img, self.rho, mode="same", axes=(1, 2))
        return np.einsum("bi,bi->b", img.reshape(img.shape[0], -1),
                         conv.reshape(img.shape[0], -1)) + (n * self.sky) ** 2

    def bin_variances(self, binmap, var):
        """Variance of every bin's sum, (n_bin, n_band): the :meth:`sum_variance` of
        each bin at once, in one pass over the offsets d of ``rho`` that adds
        ``rho(d) s_p s_{p+d}`` over the pixel pairs in the same bin."""
        n_bin = int(binmap.max())
        nb, ny, nx = var.shape
        s = self.own_sigma(var)
        vs = np.zeros((n_bin, nb))
        rho = self.rho if self.rho is not None else np.ones((nb, 1, 1))
        lag = rho.shape[1] // 2
        for dy in range(lag + 1):
            for dx in range(-lag, lag + 1):
                if dy == 0 and dx < 0:
                    continue   # d and -d give the same pairs: count each once, twice
                r = rho[:, lag + dy, lag + dx]
                a = binmap[:ny - dy, max(-dx, 0):nx - max(dx, 0)]
                b = binmap[dy:, max(dx, 0):nx + min(dx, 0)]
                same = (a == b) & (a > 0)
                if not (np.any(r) and same.any()):
                    continue
                sa = s[:, :ny - dy, max(-dx, 0):nx - max(dx, 0)][:, same]
                sb = s[:, dy:, max(dx, 0):nx + min(dx, 0)][:, same]
                w = ((1.0 if dy == dx == 0 else 2.0) * r)[:, None] * sa * sb   # (nb, m)
                flat = (a[same][None, :] - 1 + n_bin * np.arange(nb)[:, None]).ravel()
                vs += np.bincount(flat, weights=w.ravel(),
                                  minlength=n_bin * nb).reshape(nb, n_bin).T
        npix = np.bincount(np.asarray(binmap).ravel(), minlength=n_bin + 1)[1:]
        return vs + (npix[:, None] * self.sky[None, :]) ** 2

    def compact_factor(self, n):
        """Mean over a disc of ``n`` pixels of ``sum_{q in disc} rho(p - q)`` (n_band,):
        the own-noise variance of a compact bin is about that times its pixels' sum."""
        if self.rho is None or self.rho.shape[1] == 1:
            return np.ones_like(self.sky)
        if self._table is None:
            from scipy.signal import fftconvolve

            size, fac = [], []
            for r in np.arange(0.5, 40.0, 0.25):
                ri = int(np.ceil(r))
                dy, dx = np.mgrid[-ri:ri + 1, -ri:ri + 1]
                disc = (dy**2 + dx**2 <= r * r).astype(float)
                conv = fftconvolve(np.broadcast_to(disc, (self.rho.shape[0],) + disc.shape),
                                   self.rho, mode="same", axes=(1, 2))
                size.append(disc.sum())
                fac.append((conv * disc).sum(axis=(1, 2)) / disc.sum())
            self._table = (np.array(size), np.array(fac))
        size, fac = self._table
        return np.array([np.interp(n, size, f) for f in fac.T])

    def kernel_args(self):
        """The model as :mod:`sedmap.binning_kernels` takes it: ``rho`` (n_band,
        2L+1, 2L+1; ones (n_band, 1, 1) for independent pixels), ``sky`` (n_band,),
        and the :meth:`compact_factor` table, pixel counts (m,) and factors (m, n_band)."""
        nb = self.sky.size
        if self.rho is None or self.rho.shape[1] == 1:
            rho = np.ones((nb, 1, 1)) if self.rho is None else self.rho
            return (np.ascontiguousarray(rho, dtype=float), self.sky.astype(float),
                    np.ones(1), np.ones((1, nb)))
        self.compact_factor(1)   # builds the table
        size, fac = self._table
        return (np.ascontiguousarray(self.rho), self.sky.astype(float),
                np.ascontiguousarray(size, dtype=float), np.ascontiguousarray(fac, dtype=float))



def voronoi_partition(x, y, signal, noise, target_sn, pixelsize=None, covariance_alpha=0.0,
                      seed=1, sn_func=None):
    """Voronoi bin number (0-based) of each point, from vorbin.

    Parameters
    ----------
    x, y : ndarray (n,)
        Point coordinates (pixels, arcsec, ...).
    signal, noise : ndarray (n,)
    target_sn : float
    pixelsize : float, optional
        Spacing of the points (vorbin computes it if None).
    covariance_alpha : float
        Correction for correlated noise: the noise of a bin of N points is
        multiplied by 1 + alpha log10(N) (Garcia-Benito et al. 2015; 1.07 for
        CALIFA). 0 means independent points (vorbin's own S/N).
    seed : int
        vorbin's seed for its random tie-breaking.
    sn_func : callable, optional
        ``sn_func(index, signal, noise)``, the S/N of the points ``index``
        (vorbin's hook); overrides ``covariance_alpha``.
    """
    import warnings

    from vorbin.voronoi_2d_binning import voronoi_2d_binning

    def alpha_sn(index, sig, noi):
        sn = np.sum(sig[index]) / np.sqrt(np.sum(noi[index] ** 2))
        return sn / (1.0 + covariance_alpha * np.log10(index.size))

    if sn_func is None and covariance_alpha:
        sn_func = alpha_sn

    sig, noi = np.asarray(signal, float), np.asarray(noise, float)
    if np.all(sig / noi >= target_sn):  # vorbin refuses; every point is a bin of its own
        return np.arange(sig.size, dtype=np.int64)
    total = np.sum(sig) / np.sqrt(np.sum(noi**2))
    if total < target_sn:
        raise InputError(f"all the pixels together reach S/N {total:.1f}, below the target "
                         f"{target_sn:g}", path="binning.sn_threshold",
                         fix="lower binning.sn_threshold")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bin_num, *_ = voronoi_2d_binning(
            np.asarray(x, float), np.asarray(y, float), np.asarray(signal, float),
            np.asarray(noise, float), target_sn, pixelsize=pixelsize, plot=False, quiet=True,
            seed=seed, sn_func=sn_func)
    return np.asarray(bin_num, dtype=np.int64)


def bin_voronoi(flux, var, region, band, target_sn, covariance_alpha=0.0, seed=1,
                noise_corr=None, sky_err=None, min_npix=0, max_npix=None,
                leftover_min_npix=0):
    """Voronoi binning (Cappellari & Copin 2003, vorbin) of a cube on one band's S/N,
    with the size limits and leftover rule of the module docstring.

    vorbin sees a bin's S/N as at most ``target_sn * n / min_npix`` for a bin
    of n pixels, so that its accretion and weighted tessellation make bins of
    at least ``min_npix`` pixels; cells larger than ``max_npix`` pixels (vorbin
    grows them as large as the target needs) or below 0.8 of the target
    (vorbin's own test for a failed bin) go to :func:`bin_leftovers`, as do
    all the pixels when together they miss the target. Cells the galaxy region
    cuts in pieces are split; pieces under ``min_npix`` pixels join a neighbour.

    Parameters
    ----------
    flux, var : ndarray (n_band, ny, nx)
    region : ndarray (ny, nx) of bool
    band : int
        Band (or, for a spectral cube, a line-free window collapsed into one
        "band") whose S/N drives the binning.
    target_sn : float
    covariance_alpha, seed
        See :func:`voronoi_partition`.
    noise_corr, sky_err : optional
        The flux cube's noise correlation (:class:`NoiseModel`): the S/N of a
        bin then counts every pixel covariance exactly (``covariance_alpha``
        is the empirical alternative when they are unknown).
    min_npix, max_npix
        Fewest / most pixels of a bin, as in :func:`bin_sed_similarity`.

    Returns
    -------
    binmap : ndarray (ny, nx) of int32
    flag : ndarray (n_bin,) of int32
    """
    valid = _valid_pixels(flux, var, region)
    yy, xx = np.nonzero(valid)
    if yy.size < 2:
        raise InputError("fewer than two valid pixels to bin", path="fluxmap.fits",
                         fix="check the galaxy region and the variance images")
    nb = flux.shape[0]
    lo, _ = _size_limits(min_npix, max_npix)
    noise = NoiseModel(noise_corr, sky_err, n_band=nb)
    sig, noi = flux[band][valid], np.sqrt(var[band][valid])
    if noise.correlated:
        one = _band_noise(noise, band)
        own = one.own_sigma(var[band][valid][None])[0][:, None]

        def sn_true(index, sig, _noi):
            return np.sum(sig[index]) / np.sqrt(one.sum_variance(yy[index], xx[index],
                                                                 own[index])[0])
    else:
        def sn_true(index, sig, noi):
            sn = np.sum(sig[index]) / np.sqrt(np.sum(noi[index] ** 2))
            return sn / (1.0 + covariance_alpha * np.log10(np.size(index)))

    def sn_floor(index, sig, noi):   # a bin under min_npix pixels never looks complete
        return min(sn_true(index, sig, noi), target_sn * np.size(index) / lo)

    binmap = np.zeros(valid.shape, np.int32)
    alone = np.all(sig / noi >= target_sn)
    if alone and lo <= 1:   # vorbin refuses; every pixel is a bin of its own
        binmap[yy, xx] = np.arange(1, yy.size + 1)
    elif not alone and sn_true(np.arange(yy.size), sig, noi) >= target_sn:
        num = voronoi_partition(xx, yy, sig, noi, target_sn, pixelsize=1.0, seed=seed,
                                sn_func=sn_floor if lo > 1 else sn_true)
        binmap[yy, xx] = num + 1
        binmap = _split_disconnected(binmap)
        # cells too large, or far short of the target (vorbin's own test for a
        # failed bin, 0.8 of it), are leftovers
        _, _, snr = sum_bins(binmap, flux[band:band + 1], var[band:band + 1],
                             _band_noise(noise, band))
        drop = np.concatenate([[False], ~(snr[:, 0] >= 0.8 * target_sn)])
        if max_npix is not None:
            drop |= np.bincount(binmap.ravel()) > max_npix
        drop[0] = False
        binmap[drop[binmap]] = 0
    # else: all pixels are leftovers (together below the target, or each above it
    # but single pixels are under min_npix)
    return bin_leftovers(binmap, valid, flux, var, np.full(nb, float(target_sn)),
                         np.arange(nb) == band, noise, order_band=band, min_npix=min_npix,
                         leftover_min_npix=leftover_min_npix,
                         max_npix=max_npix)


def _band_noise(noise, band):
    """The noise model of one band of ``noise``."""
    return NoiseModel(None if noise.rho is None else noise.rho[band:band + 1],
                      noise.sky[band:band + 1])


def _split_disconnected(binmap):
    """Renumber bins 1..N, splitting any bin that is not one 8-connected piece.

    (A Voronoi cell is convex, so its pixels are 8-connected unless the
    galaxy region cuts it in two.)
    """
    out = np.zeros_like(binmap)
    n = 0
    for k, sl in enumerate(ndimage.find_objects(binmap), start=1):
        if sl is None:
            continue
        lab, m = ndimage.label(binmap[sl] == k, structure=_EIGHT)
        for j in range(1, m + 1):
            n += 1
            out[sl][lab == j] = n
    return out


def sum_bins(binmap, flux, var, noise=None):
    """Summed flux, variance and S/N per bin.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
    flux, var : ndarray (n_band, ny, nx)
    noise : NoiseModel, optional
        Correlated pixel noise: the variance of a bin's sum then adds every
        pixel pair's covariance ``s_p s_q rho(p - q)`` and the shared sky
        term ``(N sky)^2`` (:class:`NoiseModel`). Default: independent pixels.

    Returns
    -------
    flux_sum, var_sum, snr : ndarray (n_bin, n_band)
    """
    n_bin = int(binmap.max())
    idx = binmap.ravel()
    sel = idx > 0
    nb = flux.shape[0]
    fs = np.zeros((n_bin, nb))
    vs = np.zeros((n_bin, nb))
    for b in range(nb):  # a handful of bands; bincount is vectorised over pixels
        fs[:, b] = np.bincount(idx[sel] - 1, weights=flux[b].ravel()[sel], minlength=n_bin)
        vs[:, b] = np.bincount(idx[sel] - 1, weights=var[b].ravel()[sel], minlength=n_bin)
    if noise is not None and noise.correlated:
        vs = noise.bin_variances(binmap, var)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = fs / np.sqrt(vs)
    return fs, vs, snr


def bin_spectra(binmap, spec, spec_var, spec_mask, noise_corr=None):
    """Summed spectrum and variance of each bin, from a spectral cube on the same grid.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
    spec, spec_var : ndarray (n_wave, ny, nx)
        Spectra and variances (the photometry's flux units); NaN marks a bad
        wavelength pixel of a spaxel.
    spec_mask : ndarray (ny, nx) of bool
        True where the pixel has a spectrum.
    noise_corr : ndarray (2R+1, 2R+1), optional
        Correlation of two pixels' spectral noise by their offset
        (``SpecPhotoCube.noise_corr``). Each bin's variance is then multiplied
        by the factor the covariances add to the sum of its pixel variances,
        ``V(S) / sum_p var_p`` (:class:`NoiseModel`), computed once per bin on
        the pixels' median variance over wavelength (the correlation changes
        little across a cube's range). None: independent pixels.

    Returns
    -------
    bin_spec, bin_var : ndarray (n_bin, n_wave)
        NaN for a bin with any pixel outside the spectral coverage (its
        spectrum would not match its photometry) and, elsewhere, at the
        wavelengths where any of its pixels is bad.
    """
    from scipy import sparse

    n_bin = int(binmap.max())
    nw = spec.shape[0]
    idx = np.asarray(binmap).ravel()
    sel = np.flatnonzero(idx > 0)
    onehot = sparse.csr_matrix((np.ones(sel.size), (idx[sel] - 1, np.arange(sel.size))),
                               shape=(n_bin, sel.size))
    s = np.asarray(spec, dtype=float).reshape(nw, -1)[:, sel]
    v = np.asarray(spec_var, dtype=float).reshape(nw, -1)[:, sel]
    bad = ~(np.isfinite(s) & np.isfinite(v))
    out = np.asarray(onehot @ np.where(bad, 0.0, s).T)
    var = np.asarray(onehot @ np.where(bad, 0.0, v).T)
    nbad = np.asarray(onehot @ bad.T.astype(float))
    uncovered = np.asarray(onehot @ (~np.asarray(spec_mask).ravel()[sel]).astype(float)) > 0
    drop = (nbad > 0) | uncovered[:, None]
    if noise_corr is not None and np.size(noise_corr) > 1:
        var = var * spectral_covariance_factor(binmap, spec_var, noise_corr)[:, None]
    return np.where(drop, np.nan, out), np.where(drop, np.nan, var)


def spectral_covariance_factor(binmap, spec_var, noise_corr):
    """Per bin, the variance of its summed spectrum over the sum of its pixels' variances
    (>= 1 for positively correlated noise), on the median variance image."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # spaxels without a spectrum
        vbar = np.nanmedian(np.asarray(spec_var, float), axis=0)
    vbar = np.where(np.isfinite(vbar) & (vbar > 0), vbar, 0.0)[None]
    n_bin = int(binmap.max())
    corr = NoiseModel(np.asarray(noise_corr, float)[None]).bin_variances(binmap, vbar)[:, 0]
    idx = np.asarray(binmap).ravel()
    plain = np.bincount(idx, weights=vbar.ravel(), minlength=n_bin + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(plain > 0, corr / plain, 1.0)


def window_signal(wave, spec, spec_var, spec_mask, window, z=0.0):
    """S/N input for Voronoi binning of a spectral cube: the mean spectrum over a
    line-free wavelength window, per spaxel (as in vorbin's MUSE example).

    Parameters
    ----------
    wave : ndarray (n_wave,)
        Observed-frame wavelength, Angstrom.
    spec, spec_var : ndarray (n_wave, ny, nx)
        Spectra and variances; NaN marks a bad wavelength pixel.
    spec_mask : ndarray (ny, nx) of bool
        True where the pixel has a spectrum.
    window : (float, float)
        Rest-frame wavelength range, Angstrom; pick one free of emission lines
        (e.g. 5300-5700).
    z : float
        Redshift: the window in the observed frame is ``window * (1 + z)``.

    Returns
    -------
    signal, var : ndarray (ny, nx)
        Mean flux density over the window and its variance (spectral pixels
        taken as independent).
    good : ndarray (ny, nx) of bool
        Pixels with a spectrum and no bad pixel in the window.

    Raises
    ------
    InputError
        The window holds fewer than 3 wavelength pixels of the cube.
    """
    lo, hi = np.asarray(window, float) * (1 + z)
    sel = (wave >= lo) & (wave <= hi)
    if sel.sum() < 3:
        raise InputError(f"the window {list(window)} AA (rest) holds {int(sel.sum())} of the "
                         f"cube's wavelength pixels ({wave[0]:.0f}-{wave[-1]:.0f} AA observed)",
                         path="binning.voronoi_window",
                         fix="choose a line-free window inside the cube's range")
    s = np.asarray(spec, float)[sel]
    v = np.asarray(spec_var, float)[sel]
    good = np.asarray(spec_mask, bool) & np.all(np.isfinite(s) & np.isfinite(v), axis=0)
    n = sel.sum()
    signal = np.where(good, np.nan_to_num(s).mean(axis=0), 0.0)
    var = np.where(good, np.nan_to_num(v).sum(axis=0) / n**2, np.inf)
    return signal, var, good


def make_bin_map(cube, *, spectra=None, method="sed_similarity", sn_threshold=10.0,
                 ref_band=None, d_min=1.0, max_area=25.0, redc_chi2_limit=4.0, del_r=2.0,
                 max_radius=30.0, voronoi_band=None, voronoi_window=None,
                 voronoi_covariance_alpha=0.0, config_hash=None):
    """Bin a flux cube: the binning stage's policy (the ``binning`` section's keys as
    arguments) from flux cube to :class:`sedmap.io.BinMap`.

    The bins are at least ``d_min`` PSF FWHMs across and at most ``max_area`` PSF
    areas (a leftover bin one PSF area at least, whatever ``d_min``: a pixel or two
    of sky at the region's edge is no bin a fit can say anything about). ``method``
    is ``sed_similarity`` (:func:`bin_sed_similarity`: S/N ``sn_threshold`` per
    band, ``ref_band`` the seed band by name, ``redc_chi2_limit``, ``del_r``,
    ``max_radius``) or ``voronoi`` (:func:`bin_voronoi` on ``voronoi_band``, or with
    ``voronoi_window`` (rest-frame Angstrom) on the mean of ``spectra`` over that
    line-free window). The bins' fluxes and variances follow the cube's noise
    correlation (:func:`sum_bins`); a bin whose SED is not finite with positive
    variances is flagged ``FLAG_BAD_SED``. With ``spectra`` (a
    :class:`sedmap.io.SpecPhoto` on the cube's grid) each bin's spectrum is summed
    too (:func:`bin_spectra`).

    Returns
    -------
    sedmap.io.BinMap
    """
    names = list(cube.filters.name)
    flux = cube.flux.astype(float)
    var = cube.flux_err.astype(float) ** 2
    region = cube.region.astype(bool)
    noise = {"noise_corr": cube.noise_corr, "sky_err": cube.sky_err}
    psf_px = psf_area_pixels(cube.psf_fwhm, cube.pixsize)
    size = {"min_npix": float(d_min) ** 2 * psf_px, "max_npix": float(max_area) * psf_px,
            "leftover_min_npix": psf_px}

    def band_index(name, key):
        if name is None:
            return None
        if name not in names:
            raise InputError(f"band '{name}' is not in the flux cube", path=f"binning.{key}",
                             fix=f"use one of {names}")
        return names.index(name)

    ref = band_index(ref_band, "ref_band")
    if method == "voronoi" and voronoi_window is not None:
        if spectra is None:
            raise InputError("Voronoi binning on a spectral window needs the IFS spectra",
                             path="binning.voronoi_window", fix="set ifs.enabled: true")
        # the S/N of the spectra's mean over a line-free window (vorbin's MUSE example);
        # pixels without a clean spectrum there stay unbinned
        sig, svar, good = window_signal(spectra.wave, spectra.spec,
                                        spectra.spec_err.astype(float) ** 2, spectra.spec_mask,
                                        voronoi_window, z=cube.z)
        rho = None if spectra.noise_corr is None else spectra.noise_corr[None]
        binmap, flag = bin_voronoi(sig[None], svar[None], region & good, 0,
                                   float(np.max(sn_threshold)),
                                   covariance_alpha=voronoi_covariance_alpha, noise_corr=rho,
                                   **size)
    elif method == "voronoi":
        band = band_index(voronoi_band, "voronoi_band")
        band = band if band is not None else (ref if ref is not None
                                             else default_reference_band(flux, var, region))
        binmap, flag = bin_voronoi(flux, var, region, band, float(np.max(sn_threshold)),
                                   covariance_alpha=voronoi_covariance_alpha, **noise, **size)
    else:
        binmap, flag = bin_sed_similarity(
            flux, var, region, sn_threshold=sn_threshold, ref_band=ref,
            redc_chi2_limit=redc_chi2_limit, del_r=del_r,
            d_min=d_min * cube.psf_fwhm / cube.pixsize, max_radius=max_radius, **noise, **size)
    fs, vs, snr = sum_bins(binmap, flux, var, NoiseModel(n_band=len(names), **noise))
    bad = ~np.all(np.isfinite(fs) & np.isfinite(vs) & (vs > 0), axis=1)
    flag = np.where(bad, flag | FLAG_BAD_SED, flag).astype(np.int32)
    vs = np.where(np.isfinite(vs) & (vs > 0), vs, 1.0)  # flagged bins: placeholder, skipped
    extra = {}
    if spectra is not None:
        bs, bv = bin_spectra(binmap, spectra.spec, spectra.spec_err.astype(float) ** 2,
                             spectra.spec_mask, noise_corr=spectra.noise_corr)
        extra = {"wave": spectra.wave, "bin_spec": bs, "bin_spec_var": bv}
    bm = BinMap(galaxy=cube.galaxy, binmap=binmap, wcs=cube.wcs, filters=cube.filters,
                flux=np.nan_to_num(fs), flux_var=vs, snr=np.nan_to_num(snr), flag=flag,
                fscale=cube.fscale, config_hash=config_hash or "none", **extra)
    npix = bm.npix
    log.info("%d bins (%d flagged, %d of them LOW_SNR); %.1f-%.1f PSF areas (median %.1f, "
             "PSF area %.1f pixels); %.1f%% of the galaxy region in bins of more than 50 PSF "
             "areas", bm.n_bin, int(np.count_nonzero(flag)),
             int(np.count_nonzero(flag & FLAG_LOW_SNR)), npix.min() / psf_px,
             npix.max() / psf_px, np.median(npix) / psf_px, psf_px,
             100 * large_bin_fraction(binmap, region, psf_px, 50.0))
    alone = int(np.count_nonzero(region & (binmap == 0)))
    if alone:
        log.info("%d pixels of the galaxy region left unbinned: pieces of it under the "
                 "smallest bin (binning.d_min; one PSF area for leftover pixels) that "
                 "touch no bin, or invalid", alone)
    return bm
