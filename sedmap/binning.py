"""Spatial binning of a flux cube: Voronoi (vorbin) or SED-shape similarity.

Both return a bin map (0 = not binned, bins numbered 1..N, every bin one
4-connected piece) and are wrapped by :func:`bin_flux_cube`, which sums the
fluxes and variances of each bin into a ``sedmap.io.BinMap``.

SED-shape-similarity binning (Abdurro'uf & Akiyama 2017; piXedfit's
``pixel_binning``), with piXedfit's faults fixed:

* a bin starts at the brightest unbinned pixel of the reference band and
  grows in annuli of ``del_r`` pixels, taking only pixels whose SED matches
  the seed's shape (reduced chi-square with the best scaling below
  ``redc_chi2_limit``) and that connect to the bin (so bins are contiguous);
* it stops when the bin reaches ``sn_threshold`` in every required band, and
  never before its diameter reaches ``d_min``;
* negative fluxes are clipped to 0 only inside the chi-square test, never in
  the binned fluxes;
* seeding stops after ``max_failures`` consecutive failed seeds (the seeds
  only get fainter); leftover pixels (those no complete bin could take) form
  4-connected
  pieces; a piece is merged into the neighbouring bin it shares the longest
  border with, and a piece with no binned neighbour becomes its own bin,
  flagged ``FLAG_LOW_SNR`` if it misses the thresholds;
* the default reference band is the band with the highest S/N summed over
  the galaxy region;
* the noise of PSF-matched, reprojected images is correlated between nearby
  pixels: with the flux cube's ``noise_corr`` (``grid.noise_correlation``)
  the variance of a bin's sum includes every pixel pair's covariance, and
  the shared sky-level error (``sky_err``) adds coherently; piXedfit sums the
  pixel variances only, which overstates the S/N of large bins several times;
* work is done in a window around the growing bin, never on full-image arrays;
  a bin none of whose bordering pixels passes the SED test cannot grow, so if
  it misses the thresholds it is abandoned at once (the same outcome as
  growing it on to ``max_radius``).
"""

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from .errors import InputError

FLAG_LOW_SNR = 1   #: the bin misses the S/N threshold in a required band
FLAG_BAD_SED = 2   #: the bin's SED is all NaN or has a zero/NaN variance

_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = ndimage.generate_binary_structure(2, 2)


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


def bin_sed_similarity(flux, var, region, sn_threshold=10.0, ref_band=None,
                       redc_chi2_limit=4.0, del_r=2.0, d_min=2.0, max_radius=30.0,
                       required_bands=None, max_failures=100, noise_corr=None, sky_err=None,
                       progress=False):
    """SED-shape-similarity binning.

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
        Minimum bin diameter, pixels.
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
    thr = np.broadcast_to(np.asarray(sn_threshold, dtype=float), (nb,)).copy()
    req = np.zeros(nb, bool)
    req[list(range(nb)) if required_bands is None else list(required_bands)] = True
    # pixel-major copies (n_pix, nb): one pixel's SED is contiguous, gathers are cheap
    noise = NoiseModel(noise_corr, sky_err, n_band=nb)
    cube = _PixelCube(flux, var, noise)
    geom = _Annuli(del_r, d_min, max_radius)

    binmap = np.zeros((ny, nx), np.int32)
    free = valid.copy()
    binmap_f, free_f = binmap.reshape(-1), free.reshape(-1)  # flat views
    order = np.argsort(np.where(valid, -flux[ref_band], np.inf), axis=None, kind="stable")
    order = order[: int(valid.sum())]
    n_bin = 0
    fails = 0
    bar = tqdm(total=order.size, desc="SED binning", unit="px", disable=not progress)
    for seed in order.tolist():
        if not free_f[seed]:
            continue
        y0, x0 = divmod(seed, nx)
        members, ok = _grow(cube, geom, free, y0, x0, thr, req, redc_chi2_limit)
        if ok:
            n_bin += 1
            binmap_f[members] = n_bin
            free_f[members] = False
            bar.update(members.size)
            fails = 0
        else:
            fails += 1
            if fails >= max_failures:  # seeds only get fainter: the rest is leftover
                break
    bar.close()
    return _absorb_leftovers(binmap, valid, flux, var, thr, req, noise)


class _PixelCube:
    """Fluxes and variances as (n_pix, nb) arrays, plus the clipped fluxes of the chi2 test."""

    def __init__(self, flux, var, noise=None):
        nb = flux.shape[0]
        self.nx = flux.shape[2]
        self.noise = noise if noise is not None else NoiseModel(n_band=nb)
        self.f = np.ascontiguousarray(np.moveaxis(flux, 0, -1)).reshape(-1, nb)
        self.v = np.ascontiguousarray(np.moveaxis(var, 0, -1)).reshape(-1, nb)
        self.s = self.noise.own_sigma(self.v.T).T    # own (non-sky) noise per pixel
        self.fc = np.clip(self.f, 0.0, None)   # negative fluxes clipped for the shape test only
        self.fc_sum = self.fc.sum(axis=1)


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


class _Annuli:
    """Growth geometry shared by all seeds, in a window centred on the seed.

    The window is the square of half-side ``ceil(max_radius)`` pixels around the
    seed (at window pixel ``(c, c)``), plus a one-pixel margin that no disc
    reaches (it holds the outer neighbours in the test for a finished bin).

    Attributes: ``radii`` (pixels), growth radii r_0 = max(d_min / 2, 0.5),
    r_0 + del_r, ... up to the first >= max_radius; ``disc[k]`` (w, w) bool,
    pixels within ``radii[k]``; ``box[k]``, slices bounding disc k plus one
    pixel, and ``disc_box[k]``, disc k cut to that box; ``new_y[k]``, ``new_x[k]``, the window pixels whose SED test is due
    at step k: those within ``radii[k] + 1`` (out to the first disc that holds
    them all, or the last disc) not tested at an earlier step; ``star[k]``,
    disc k is at most the seed and its 4-neighbours (every taken pixel in it
    touches the seed).
    """

    def __init__(self, del_r, d_min, max_radius):
        rm = int(np.ceil(max_radius))
        self.c = c = rm + 1
        self.w = w = 2 * c + 1
        dy, dx = np.mgrid[:w, :w] - c
        d2 = (dy**2 + dx**2).astype(float)
        d2[(np.abs(dy) > rm) | (np.abs(dx) > rm)] = np.inf   # outside the window proper
        self.radii = []
        r = max(d_min / 2.0, 0.5)
        while True:  # the same float steps as the growth loop always took
            self.radii.append(r)
            if r >= max_radius:
                break
            r += del_r
        self.disc, self.box, self.star, self.new_y, self.new_x = [], [], [], [], []
        for r in self.radii:
            ri = int(np.ceil(r))
            self.disc.append(d2 <= r * r)
            self.box.append((slice(max(c - ri - 1, 0), c + ri + 2),
                             slice(max(c - ri - 1, 0), c + ri + 2)))
            self.star.append(r < np.sqrt(2.0))
        self.disc_box = [d[b] for d, b in zip(self.disc, self.box)]
        last = len(self.radii) - 1
        tested = np.zeros((w, w), bool)
        tested[c, c] = True   # the seed is taken before any step
        for rk in self.radii:
            j = next((j for j in range(last + 1) if self.radii[j] >= rk + 1.0), last)
            iy, ix = np.nonzero(self.disc[j] & ~tested)
            tested |= self.disc[j]
            self.new_y.append(iy)
            self.new_x.append(ix)


def _grow(cube, geom, free, y0, x0, thr, req, limit):
    """Grow one bin from seed (y0, x0); return (flat indices of members, success).

    At step k the bin is the 4-connected piece, holding the seed, of the taken
    pixels within ``geom.radii[k]``; it succeeds at the first step where it
    meets the thresholds. Each pixel's SED test depends on the seed only and is
    done once, in batches of whole annuli (those out to ``radii[k] + 1``, so
    that the pixels bordering the bin are known). If no pixel bordering the
    bin is taken, no later step can add a pixel: the bin stays as it is and,
    if it misses the thresholds now, it fails now (the outcome is the same as
    growing on to ``max_radius``). On failure the members returned are the
    bin at the step where it stopped.
    """
    ny, nx = free.shape
    c, w = geom.c, geom.w
    ya, xa = y0 - c, x0 - c   # image coordinates of window pixel (0, 0)
    fw = np.zeros((w, w), bool)   # free pixels in the window (False off the image)
    y1, y2, x1, x2 = max(ya, 0), min(ya + w, ny), max(xa, 0), min(xa + w, nx)
    fw[y1 - ya:y2 - ya, x1 - xa:x2 - xa] = free[y1:y2, x1:x2]
    take = np.zeros((w, w), bool)
    take[c, c] = True
    seed = y0 * nx + x0
    fs, fs_sum, vs = cube.fc[seed], cube.fc_sum[seed], cube.v[seed]
    for k in range(len(geom.radii)):
        iy, ix = geom.new_y[k], geom.new_x[k]
        if iy.size:
            sel = fw[iy, ix]
            iy, ix = iy[sel], ix[sel]
            if iy.size:
                pix = (iy + ya) * nx + (ix + xa)
                take[iy, ix] = _chi2_red_clipped(cube.fc[pix], cube.fc_sum[pix], cube.v[pix],
                                                 fs, fs_sum, vs) <= limit
        by, bx = geom.box[k]
        disc = geom.disc_box[k]
        sub = take[by, bx] & disc
        if geom.star[k] or np.array_equal(sub, disc):  # one piece, no labelling
            comp = sub
        else:
            lab, _ = ndimage.label(sub, structure=_FOUR)
            comp = lab == lab[c - by.start, c - bx.start]
        my, mx = np.nonzero(comp)
        members = (my + (by.start + ya)) * nx + (mx + (bx.start + xa))
        fsum = cube.f[members].sum(axis=0)
        noise = cube.noise
        if noise.correlated:   # a quick estimate first; the exact sum only when it passes
            v = ((cube.s[members] ** 2).sum(axis=0) * noise.compact_factor(members.size)
                 + (members.size * noise.sky) ** 2)
        else:
            v = cube.v[members].sum(axis=0)
        sn = fsum / np.sqrt(v)
        # (radii[k] >= d_min / 2 at every step: the growth starts there)
        if (sn[req] >= thr[req]).all():
            if not noise.correlated:
                return members, True
            v = noise.sum_variance(members // nx, members % nx, cube.s[members])
            if (fsum[req] / np.sqrt(v[req]) >= thr[req]).all():
                return members, True
        if k == len(geom.radii) - 1:
            return members, False
        # 4-neighbours of the bin outside it; those within the disc are not taken
        ring = np.zeros_like(comp)
        ring[1:] |= comp[:-1]
        ring[:-1] |= comp[1:]
        ring[:, 1:] |= comp[:, :-1]
        ring[:, :-1] |= comp[:, 1:]
        if not (ring & take[by, bx]).any():   # nothing can join: same bin at max_radius
            return members, False


def _absorb_leftovers(binmap, valid, flux, var, thr, req, noise=None):
    """Merge leftover pieces into the neighbour with the longest shared border."""
    left = valid & (binmap == 0)
    lab, _ = ndimage.label(left, structure=_FOUR)
    n_bin = int(binmap.max())
    new_bins = []
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        # window one pixel larger than the piece, to see its neighbours
        ys = slice(max(sl[0].start - 1, 0), sl[0].stop + 1)
        xs = slice(max(sl[1].start - 1, 0), sl[1].stop + 1)
        piece = lab[ys, xs] == k
        ring = ndimage.binary_dilation(piece, structure=_FOUR) & ~piece
        neigh = binmap[ys, xs][ring]
        neigh = neigh[neigh > 0]
        if neigh.size:
            binmap[ys, xs][piece] = np.bincount(neigh).argmax()
        else:
            n_bin += 1
            binmap[ys, xs][piece] = n_bin
            new_bins.append(n_bin)
    flag = np.zeros(n_bin, np.int32)
    _, _, snr = sum_bins(binmap, flux, var, noise)
    low = ~np.all(snr[:, req] >= thr[req], axis=1)
    flag[low] |= FLAG_LOW_SNR
    return binmap, flag


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
                noise_corr=None, sky_err=None):
    """Voronoi binning (Cappellari & Copin 2003, vorbin) of a cube on one band's S/N.

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
    noise = NoiseModel(noise_corr, sky_err, n_band=flux.shape[0])
    sn_func = None
    if noise.correlated:
        one = NoiseModel(None if noise.rho is None else noise.rho[band:band + 1],
                         noise.sky[band:band + 1])
        own = one.own_sigma(var[band][valid][None])[0][:, None]

        def sn_func(index, sig, _noi):
            return np.sum(sig[index]) / np.sqrt(one.sum_variance(yy[index], xx[index],
                                                                 own[index])[0])

    num = voronoi_partition(xx, yy, flux[band][valid], np.sqrt(var[band][valid]), target_sn,
                            pixelsize=1.0, covariance_alpha=covariance_alpha, seed=seed,
                            sn_func=sn_func)
    binmap = np.zeros(valid.shape, np.int32)
    binmap[yy, xx] = num + 1
    binmap = _split_disconnected(binmap)
    _, _, snr = sum_bins(binmap, flux, var, noise)
    flag = np.where(snr[:, band] < target_sn, FLAG_LOW_SNR, 0).astype(np.int32)
    return binmap, flag


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


def bin_spectra(binmap, spec, spec_var, spec_mask):
    """Summed spectrum and variance of each bin, from a spectral cube on the same grid.

    Parameters
    ----------
    binmap : ndarray (ny, nx) of int
    spec, spec_var : ndarray (n_wave, ny, nx)
        Spectra and variances (the photometry's flux units); NaN marks a bad
        wavelength pixel of a spaxel.
    spec_mask : ndarray (ny, nx) of bool
        True where the pixel has a spectrum.

    Returns
    -------
    bin_spec, bin_var : ndarray (n_bin, n_wave)
        NaN for a bin with any pixel outside the spectral coverage (its
        spectrum would not match its photometry) and, elsewhere, at the
        wavelengths where any of its pixels is bad. Spaxel covariances are
        not counted.
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
    return np.where(drop, np.nan, out), np.where(drop, np.nan, var)


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
