"""Group pixels by star-formation history under the earth mover's distance.

The method of Chen, Hu & Wang (2021): a k-means-like iteration in which the
distance between two star-formation histories (SFHs) is the 1-D Wasserstein
(earth mover's) distance between their normalised shapes over lookback time.

1. Random initial labels 0..k-1 for the unmasked pixels (seeded RNG).
2. Each group's mean SFH is the mass-weighted average of its pixels'
   normalised SFHs.
3. Every pixel moves to the group at the smallest distance.
4. Repeat until the labels stop changing, or ``max_iter`` reassignments.

Groups with one pixel or fewer are dropped (see :func:`group_sfhs`).

Initial labels: step 1 as published (``init="random"``) draws each pixel's
label uniformly, so every initial group mean is close to the global mean
SFH; the first reassignment then splits the pixels mostly along one
direction (old vs young), and groups empty and are dropped. On the planted
maps of ``tests/test_sfh_groups.py`` (4 maps x 10 seeds each) it recovered
the planted groups (adjusted Rand index >= 0.95) in 18/40 runs for 3
groups, 3/40 for 4 and 0/40 for 5, usually ending with fewer groups. The
default here is therefore ``init="kmeans++"`` (k-means++ seeding under the
same distance gives the initial labels): 40/40, 37/40 and 38/40 with one
run, 40/40 each with ``n_init=3``. The iteration itself is unchanged, and
``init="random"`` reproduces the published procedure exactly.

Everything is vectorised (numpy, and ``scipy.spatial.distance.cdist`` for
the distance matrix): a pass over a 100x100 map with 50 time bins and 4
groups takes a few milliseconds, where the published Python loop over
``scipy.stats.wasserstein_distance`` takes over a second (see
``benchmarks/bench_sfh_groups.py``).

Distance
--------
An SFH sampled on lookback-time bins with edges ``e_0 < ... < e_n`` (Gyr) is
treated as a discrete distribution of the *mass formed*: a point mass at each
bin centre ``c_j = (e_j + e_{j+1}) / 2`` with weight ``p_j = SFR_j * dt_j /
sum_l(SFR_l * dt_l)`` (unit sum; only the shape matters). On equal-width bins
this is the same as normalising the SFR values to unit sum. The distance
between two such distributions ``p`` and ``q`` with cumulative sums ``P`` and
``Q`` is::

    EMD(p, q) = sum_{j=0}^{n-2} (c_{j+1} - c_j) * |P_j - Q_j|      [Gyr]

which is exactly ``scipy.stats.wasserstein_distance(c, c, p, q)`` (the
integral of ``|CDF_p - CDF_q|`` between consecutive centres), on equal and on
uneven bins.

Typical use (the workflow's ``sfh_groups`` rule does the same through
:func:`sedmap.stages.run_sfh_groups`)::

    from pathlib import Path

    import numpy as np

    from sedmap.io import read_bin_map, read_fit_result, write_sfh_groups
    from sedmap.sfhgroups import make_sfh_groups, plot_sfh_groups

    gdir = Path("results/NGC0000")
    binmap = read_bin_map(gdir / "binmap.fits")
    fits = {r.bin_id: r for r in map(read_fit_result, gdir.glob("rdsps/bin_*.h5"))}
    results = [fits.get(b) for b in range(1, binmap.n_bin + 1)]  # results[k - 1]: bin k
    edges_gyr = np.geomspace(0.01, 13.0, 21)  # lookback-time bin edges, Gyr
    edges_gyr[0] = 0.0
    groups = make_sfh_groups(binmap, results, edges_gyr, range(2, 7))  # k chosen in 2..6
    write_sfh_groups(groups, gdir / "sfh_groups.fits")
    plot_sfh_groups(groups, gdir / "sfh_groups.png")

The SFH form is the one the fit results record (``FitResult.sfh``).
"""

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial.distance import cdist

from .errors import InputError
from .io.figure import save_figure
from .io.sfhgroups import SFHGroups, validate_sfh_groups
from .sps.sfh import common_sfh

#: :func:`emd_matrix` takes the pixels in chunks of at most this many
#: (pixel, time) elements (2**22 float64 = 32 MiB).
MAX_ELEMENTS = 2**22

#: Ways to draw the initial labels, see :func:`group_sfhs`.
INITS = ("kmeans++", "random")


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------

def _check_edges(time_edges_gyr, where="time_edges_gyr"):
    edges = np.asarray(time_edges_gyr, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not (
            np.all(np.isfinite(edges)) and edges[0] >= 0 and np.all(np.diff(edges) > 0)):
        raise InputError(f"{where} must be at least two finite, non-negative, strictly "
                         f"increasing lookback times (Gyr), got {np.ravel(edges)[:6].tolist()}"
                         f"{'...' if edges.size > 6 else ''}.", where,
                         "give the lookback-time bin edges in Gyr, in increasing order.")
    return edges


def _check_cube(cube, mask, pixel_mass):
    cube = np.asarray(cube, dtype=float)
    if cube.ndim != 3:
        raise InputError(f"the SFH cube must be 3-D (n_time, ny, nx), got shape {cube.shape}.",
                         "cube", "pass the cube returned by sfh_cube().")
    shape = cube.shape[1:]
    mask = np.zeros(shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise InputError(f"mask has shape {mask.shape}, the cube's pixels are {shape}.",
                         "mask", "pass the mask returned with the cube by sfh_cube().")
    if pixel_mass is None:
        pixel_mass = np.ones(shape)
    pixel_mass = np.asarray(pixel_mass, dtype=float)
    if pixel_mass.shape != shape:
        raise InputError(f"pixel_mass has shape {pixel_mass.shape}, the cube's pixels are "
                         f"{shape}.", "pixel_mass",
                         "pass the pixel masses returned with the cube by sfh_cube().")
    return cube, mask, pixel_mass


# ---------------------------------------------------------------------------
# per-pixel SFH cube
# ---------------------------------------------------------------------------

def _p50(res, names, bin_id, mass_key):
    missing = [n for n in names if n not in res.percentiles]
    if missing:
        raise InputError(f"the fit result of bin {bin_id} has no percentiles for {missing}.",
                         f"bin_{bin_id}.h5",
                         f"fit with an SFH of this form, and record {mass_key!r} (log Msun "
                         "formed) among the derived quantities.")
    return [float(np.asarray(res.percentiles[n], dtype=float)[1]) for n in names]


def _masked_smooth(cube, has, sigma):
    """Gaussian smoothing of each time slice that keeps every pixel's mass on valid pixels.

    Each valid pixel's SFR is spread over the valid pixels with Gaussian
    weights renormalised to unit sum over them, so the total of every slice
    is conserved exactly (to rounding): ``out = has * G(x / G(has))`` with
    ``G`` the zero-padded (hence symmetric) Gaussian filter.
    """
    kw = {"sigma": (0.0, sigma, sigma), "mode": "constant", "cval": 0.0}
    norm = gaussian_filter(has.astype(float)[None], **kw)[0]
    x = np.where(has, cube, 0.0) / np.where(has, norm, 1.0)
    out = gaussian_filter(x, **kw)
    return np.where(has, out, np.nan)


def sfh_cube(binmap, results, time_edges_gyr, mass_key="log_mass_formed",
             smooth_sigma_pix=0.0, min_mass=0.0, pixel_weights=None):
    """Per-pixel star-formation histories on a common lookback-time grid.

    Each bin's SFH is its posterior-median SFH: the p50 of ``log_age`` and the
    form's parameters (the SFH the results record, ``FitResult.sfh``; see
    :mod:`sedmap.sps.sfh`) and of ``mass_key``, with the SFR averaged exactly
    over each time bin (the integral of :meth:`sedmap.sps.sfh.SFH.sfr` over the
    bin, divided by its width). It is
    shared among the bin's pixels in proportion to ``pixel_weights``.

    Parameters
    ----------
    binmap : BinMap or ndarray (ny, nx) int
        Bin ids, 0 = not binned, 1..N.
    results : sequence of FitResult or None
        ``results[k - 1]`` is the fit of bin ``k``; None (no fit) or a
        non-zero ``flag`` leaves the bin's pixels without an SFH.
    time_edges_gyr : array (n_time + 1,)
        Lookback-time bin edges, Gyr, >= 0, strictly increasing.
    mass_key : str
        The percentile entry holding the log10 of the mass formed (Msun).
    smooth_sigma_pix : float
        Gaussian sigma in pixels (e.g. the PSF's) to smooth each time slice
        with; 0 = none. The smoothing moves SFR only between pixels that have
        an SFH and conserves the total of every slice.
    min_mass : float
        Pixels that formed less than this (Msun, within the time grid) are
        masked; their SFH is kept in the cube.
    pixel_weights : ndarray (ny, nx), optional
        Finite, >= 0 weights (e.g. a flux map) for sharing each bin's SFH
        among its pixels; default equal shares. A bin whose weights sum to 0
        falls back to equal shares.

    Returns
    -------
    cube : ndarray (n_time, ny, nx)
        SFR averaged over each time bin, Msun/yr; NaN where there is no SFH.
    mask : ndarray (ny, nx) bool
        True for pixels without an SFH (not binned, no or flagged fit, NaN
        parameters, nothing formed within the time grid) or with
        ``pixel_mass < min_mass``.
    pixel_mass : ndarray (ny, nx)
        Mass formed within the time grid, Msun (``sum_j cube_j * dt_j``);
        NaN where there is no SFH.
    """
    bmap = np.asarray(getattr(binmap, "binmap", binmap))
    if bmap.ndim != 2 or not np.issubdtype(bmap.dtype, np.integer):
        raise InputError(f"the bin map must be a 2-D integer image, got {bmap.ndim}-D "
                         f"{bmap.dtype}.", "binmap", "pass BinMap.binmap (0 = not binned).")
    edges = _check_edges(time_edges_gyr)
    dt_yr = np.diff(edges) * 1e9
    results = list(results)
    n_bin = len(results)
    if bmap.size and (bmap.min() < 0 or bmap.max() > n_bin):
        raise InputError(f"the bin map holds ids from {bmap.min()} to {bmap.max()}, but there "
                         f"are {n_bin} fit results (ids must be 0..{n_bin}).", "results",
                         "pass one fit result (or None) per bin, results[k - 1] for bin k.")
    if pixel_weights is None:
        w = np.ones(bmap.shape)
    else:
        w = np.asarray(pixel_weights, dtype=float)
        if w.shape != bmap.shape:
            raise InputError(f"pixel_weights has shape {w.shape}, the bin map {bmap.shape}.",
                             "pixel_weights", "give one weight per pixel of the bin map.")
        bad = (bmap > 0) & ~(np.isfinite(w) & (w >= 0))
        if bad.any():
            raise InputError(f"{int(bad.sum())} binned pixels have a NaN, infinite or negative "
                             "weight.", "pixel_weights",
                             "give finite weights >= 0 (e.g. a flux map clipped at 0).")
        w = np.where(bmap > 0, w, 0.0)
    if not (np.isfinite(smooth_sigma_pix) and smooth_sigma_pix >= 0):
        raise InputError(f"smooth_sigma_pix = {smooth_sigma_pix} is not >= 0.",
                         "smooth_sigma_pix", "give the PSF sigma in pixels, or 0.")

    sfh = common_sfh([r.sfh for r in results if r is not None and int(r.flag) == 0]
                     or [r.sfh for r in results if r is not None], "results")
    names = ("log_age",) + sfh.params + (mass_key,)
    pars = np.full((n_bin, len(names)), np.nan)
    for k, res in enumerate(results):
        if res is not None and int(res.flag) == 0:
            pars[k] = _p50(res, names, k + 1, mass_key)
    good = np.all(np.isfinite(pars), axis=1)
    sfr_bins = np.full((n_bin + 1, edges.size - 1), np.nan)  # row 0: not binned
    if good.any():
        p = {n: pars[good, i] for i, n in enumerate(names[:-1])}
        with np.errstate(invalid="ignore", over="ignore"):
            frac = sfh.bin_mass_fractions(p, edges * 1e9)  # (n_good, n_time)
            sfr_bins[1:][good] = frac * 10 ** pars[good, -1][:, None] / dt_yr
    ok_bin = np.all(np.isfinite(sfr_bins), axis=1)

    # mass shares of the pixels within their bin
    ids = bmap.ravel()
    wsum = np.bincount(ids, weights=w.ravel(), minlength=n_bin + 1)
    npix = np.bincount(ids, minlength=n_bin + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(wsum[ids] > 0, w.ravel() / wsum[ids], 1.0 / npix[ids])
    has = ((ids > 0) & ok_bin[ids]).reshape(bmap.shape)
    cube = (sfr_bins[ids] * share[:, None]).T.reshape((-1,) + bmap.shape)
    cube = np.where(has, cube, np.nan)
    if smooth_sigma_pix > 0 and has.any():
        cube = _masked_smooth(cube, has, float(smooth_sigma_pix))
    pixel_mass = np.where(has, np.einsum("j,jyx->yx", dt_yr, np.where(has, cube, 0.0)), np.nan)
    with np.errstate(invalid="ignore"):
        mask = ~has | ~(pixel_mass > 0) | (pixel_mass < min_mass)
    return cube, mask, pixel_mass


# ---------------------------------------------------------------------------
# earth mover's distance
# ---------------------------------------------------------------------------

def emd_spacing(time_edges_gyr=None, n_time=None):
    """Distances between consecutive bin centres, the weights of :func:`emd_matrix`.

    Parameters
    ----------
    time_edges_gyr : array (n_time + 1,), optional
        Lookback-time bin edges, Gyr. None: ``n_time`` bins of unit width.

    Returns
    -------
    ndarray (n_time - 1,)
        ``c[j+1] - c[j]``, Gyr (or bins).
    """
    if time_edges_gyr is None:
        return np.ones(int(n_time) - 1)
    edges = _check_edges(time_edges_gyr)
    return np.diff(0.5 * (edges[1:] + edges[:-1]))


def sfh_cdf(sfh, time_edges_gyr=None, axis=-1):
    """Cumulative mass fractions of SFHs, the input of :func:`emd_matrix`.

    Parameters
    ----------
    sfh : ndarray (..., n_time)
        SFR in each lookback-time bin (any unit), >= 0 (along ``axis``).
    time_edges_gyr : array (n_time + 1,), optional
        Bin edges, Gyr; None = equal bins.

    Returns
    -------
    cdf : ndarray (..., n_time - 1)
        ``P_j = sum_{l<=j} p_l`` for ``j < n_time - 1`` (the last, 1, is
        dropped), with ``p_l = SFR_l dt_l / sum(SFR dt)``. NaN where the SFH
        sums to 0.
    spacing : ndarray (n_time - 1,)
        Distances between consecutive bin centres (:func:`emd_spacing`).
    """
    sfh = np.moveaxis(np.asarray(sfh, dtype=float), axis, -1)
    n_time = sfh.shape[-1]
    widths = np.ones(n_time) if time_edges_gyr is None else np.diff(
        _check_edges(time_edges_gyr))
    if widths.size != n_time:
        raise InputError(f"{widths.size + 1} time edges for {n_time} time bins.",
                         "time_edges_gyr", "give n_time + 1 edges.")
    mass = sfh * widths
    with np.errstate(invalid="ignore", divide="ignore"):
        p = mass / mass.sum(axis=-1, keepdims=True)
    return np.cumsum(p[..., :-1], axis=-1), emd_spacing(time_edges_gyr, n_time)


def emd_matrix(cdf_pix, cdf_groups, spacing, max_elements=MAX_ELEMENTS):
    """Earth mover's distance between every pixel's and every group's SFH.

    ``D[i, g] = sum_j spacing[j] * |cdf_pix[i, j] - cdf_groups[g, j]|``, which
    is ``scipy.stats.wasserstein_distance(c, c, p_i, q_g)`` for distributions
    on bin centres ``c`` (see the module docstring and :func:`sfh_cdf`).

    Parameters
    ----------
    cdf_pix : ndarray (n_pix, n_time - 1)
    cdf_groups : ndarray (n_group, n_time - 1)
        Cumulative mass fractions from :func:`sfh_cdf`.
    spacing : ndarray (n_time - 1,)
        Distances between consecutive bin centres, Gyr.
    max_elements : int
        Pixels go in chunks of at most ``max_elements / (n_time - 1)`` rows,
        so a full IFU field never needs a second pixel-sized array. Each
        chunk is one call of ``scipy.spatial.distance.cdist(..., "cityblock",
        w=spacing)`` (compiled, no (pixel, group, time) temporary), which is
        the weighted sum above.

    Returns
    -------
    ndarray (n_pix, n_group)
        Distances, in the unit of ``spacing`` (Gyr).
    """
    a = np.asarray(cdf_pix, dtype=float)
    b = np.asarray(cdf_groups, dtype=float)
    s = np.asarray(spacing, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != s.size or b.shape[1] != s.size:
        raise InputError(f"shapes {a.shape}, {b.shape}, {s.shape} do not match (n_pix, m), "
                         "(n_group, m), (m,).", "emd_matrix", "pass the output of sfh_cdf().")
    n, k = a.shape[0], b.shape[0]
    out = np.empty((n, k))
    if n == 0 or k == 0:
        return out
    if s.size == 0:
        out[:] = 0.0
        return out
    chunk = max(1, int(max_elements) // s.size)
    for i in range(0, n, chunk):
        out[i:i + chunk] = cdist(a[i:i + chunk], b, "cityblock", w=s)
    return out


# ---------------------------------------------------------------------------
# grouping
# ---------------------------------------------------------------------------

def _group_means(cdf, mass, labels, active, weighted=None):
    """Mass-weighted mean CDF of each active group (K, m); mass of each (K,).

    ``weighted`` is ``cdf * mass[:, None]`` if already at hand. The sums use
    einsum rather than BLAS: a threaded BLAS call on these thin matrices can
    stall for tenths of a second on a busy machine.
    """
    if weighted is None:
        weighted = cdf * mass[:, None]
    onehot = (labels[:, None] == active[None, :]).astype(float)
    gmass = np.einsum("i,ik->k", mass, onehot)
    return np.einsum("ik,ij->kj", onehot, weighted) / gmass[:, None], gmass


def _kmeanspp_labels(cdf, k, spacing, rng):
    """k-means++ seeding under the EMD: labels of the nearest of k seed pixels.

    The first seed is a uniformly drawn pixel; each next one is drawn with
    probability proportional to the squared EMD to the nearest seed so far
    (uniformly if every distance is 0).
    """
    n = cdf.shape[0]
    seeds = [int(rng.integers(n))]
    d = emd_matrix(cdf, cdf[seeds], spacing)[:, 0]
    for _ in range(1, k):
        w = d**2
        total = w.sum()
        pick = int(rng.choice(n, p=w / total)) if total > 0 else int(rng.integers(n))
        seeds.append(pick)
        d = np.minimum(d, emd_matrix(cdf, cdf[[pick]], spacing)[:, 0])
    return np.argmin(emd_matrix(cdf, cdf[seeds], spacing), axis=1)


def _iterate(cdf, mass, labels, k, spacing, max_iter):
    """The iteration on valid pixels; returns (labels, n_iter) with original ids."""
    n_iter = 0
    weighted = cdf * mass[:, None]
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (returned)
        active = np.flatnonzero(np.bincount(labels, minlength=k) > 1)
        if active.size == 0:
            raise InputError(f"every group fell to one pixel or fewer ({labels.size} valid "
                             f"pixels, k = {k}).", "k", "ask for fewer groups.")
        means, _ = _group_means(cdf, mass, labels, active, weighted)
        new = active[np.argmin(emd_matrix(cdf, means, spacing), axis=1)]
        changed = not np.array_equal(new, labels)
        labels = new
        if not changed:
            break
    # only after max_iter: drop groups left with <= 1 pixel, move their pixels
    while True:
        counts = np.bincount(labels, minlength=k)
        small = np.flatnonzero((counts > 0) & (counts <= 1))
        if small.size == 0:
            break
        active = np.flatnonzero(counts > 1)
        if active.size == 0:
            raise InputError(f"every group fell to one pixel or fewer ({labels.size} valid "
                             f"pixels, k = {k}).", "k", "ask for fewer groups.")
        moved = np.isin(labels, small)
        means, _ = _group_means(cdf, mass, labels, active)
        labels[moved] = active[np.argmin(emd_matrix(cdf[moved], means, spacing), axis=1)]
    return labels, n_iter


def _prepare(cube, mask, pixel_mass, time_edges_gyr):
    cube, mask, pixel_mass = _check_cube(cube, mask, pixel_mass)
    n_time = cube.shape[0]
    if n_time < 2:
        raise InputError(f"the SFH cube has {n_time} time bin; the distance needs at least 2.",
                         "cube", "sample the SFHs on two or more lookback-time bins.")
    widths = np.ones(n_time) if time_edges_gyr is None else np.diff(
        _check_edges(time_edges_gyr))
    if widths.size != n_time:
        raise InputError(f"{widths.size + 1} time edges for a cube of {n_time} time bins.",
                         "time_edges_gyr", "give n_time + 1 edges.")
    # pixels taking part: unmasked, finite SFH and mass, something formed, mass > 0
    cand = ~mask & np.isfinite(pixel_mass)
    x = np.ascontiguousarray(cube[:, cand].T)  # (n_cand, n_time), pixel-major
    m = pixel_mass[cand]
    finite = np.isfinite(x).all(axis=1)
    neg = finite & (x < 0).any(axis=1)
    if neg.any():
        raise InputError(f"{int(neg.sum())} unmasked pixels have a negative SFR in some time "
                         "bin; an SFH must be >= 0 everywhere.", "cube",
                         "clip small negative values to 0, or mask those pixels.")
    neg = finite & (m < 0)
    if neg.any():
        raise InputError(f"{int(neg.sum())} unmasked pixels have a negative pixel_mass.",
                         "pixel_mass", "give masses formed >= 0 Msun, or mask those pixels.")
    x *= widths  # mass formed per bin (arbitrary unit)
    with np.errstate(invalid="ignore"):
        total = x.sum(axis=1)
        ok = finite & (total > 0) & (m > 0)
    valid = np.zeros(mask.shape, bool)
    valid[cand] = ok
    if not valid.any():
        raise InputError(f"all {valid.size} pixels are masked, NaN or without mass: nothing to "
                         "group.", "mask", "check the bin map, the fit flags and min_mass.")
    p = x[ok] if not ok.all() else x
    p /= total[ok][:, None]  # unit-sum mass fractions
    cdf = np.cumsum(p[:, :-1], axis=1)
    return valid, m[ok], p, cdf, emd_spacing(time_edges_gyr, n_time), widths


def _distances_to_groups(cdf, mass, labels, spacing):
    """EMD of each pixel to its own group's mean (a) and the nearest other's (b)."""
    active = np.unique(labels)
    means, _ = _group_means(cdf, mass, labels, active)
    d = emd_matrix(cdf, means, spacing)
    own = np.searchsorted(active, labels)
    rows = np.arange(labels.size)
    a = d[rows, own].copy()
    d[rows, own] = np.inf
    return a, d.min(axis=1)


def _fit(cdf, mass, spacing, k, seed, max_iter, init, n_init, init_labels=None, scores=False):
    """Best of ``n_init`` runs on the valid pixels: (labels 0..K'-1, n_iter, a, b).

    ``a`` and ``b`` (see :func:`_distances_to_groups`) are None for a single
    run unless ``scores``.
    """
    n_valid = cdf.shape[0]
    if not 1 <= k <= n_valid:
        raise InputError(f"k = {k} groups asked for, but there are {n_valid} valid pixels.",
                         "k", f"ask for 1 <= k <= {n_valid} groups (usually far fewer).")
    if max_iter < 1:
        raise InputError(f"max_iter = {max_iter} < 1.", "max_iter", "give max_iter >= 1.")
    if n_init < 1:
        raise InputError(f"n_init = {n_init} < 1.", "n_init", "give n_init >= 1.")
    if init not in INITS:
        raise InputError(f"unknown init {init!r}.", "init", f"use one of {INITS}.")
    best = None
    n_run = 1 if init_labels is not None else n_init
    for s in range(n_run):
        if init_labels is not None:
            labels = init_labels.copy()
        elif init == "random":
            labels = np.random.default_rng(seed + s).integers(0, k, n_valid)
        else:
            labels = _kmeanspp_labels(cdf, k, spacing, np.random.default_rng(seed + s))
        labels, n_iter = _iterate(cdf, mass, labels, k, spacing, max_iter)
        ids = np.flatnonzero(np.bincount(labels, minlength=k))
        labels = np.searchsorted(ids, labels)  # renumber 0..K'-1
        if n_run == 1 and not scores:
            return labels, n_iter, None, None
        a, b = _distances_to_groups(cdf, mass, labels, spacing)
        if best is None or a.sum() < best[2].sum():
            best = (labels, n_iter, a, b)
    return best


def group_sfhs(cube, mask, pixel_mass, k, seed=0, max_iter=100, init_labels=None,
               time_edges_gyr=None, init="kmeans++", n_init=1):
    """Group pixels by SFH shape with a k-means-like iteration under the EMD.

    The algorithm of Chen, Hu & Wang (2021), vectorised:

    1. initial labels 0..k-1 for the valid pixels (row-major pixel order):
       from ``init_labels`` if given; else with ``init="random"`` (the
       published step) ``numpy.random.default_rng(seed).integers(0, k,
       n_valid)``; else (``init="kmeans++"``, default) the nearest of k seed
       pixels drawn by k-means++ under the EMD with
       ``numpy.random.default_rng(seed)`` (see the module docstring for why);
    2. at the start of each pass, groups with one pixel or fewer are dropped
       (for good: a dropped group never comes back); each remaining group's
       mean is the mass-weighted (``pixel_mass``) average of its pixels'
       normalised SFHs;
    3. every valid pixel moves to the group at the smallest EMD (see the
       module docstring); on equal distances the lowest group id wins;
    4. repeat until a pass changes no label, or ``max_iter`` passes.

    If ``max_iter`` is reached with a group of one pixel, that group is
    dropped and its pixel moved to the nearest remaining group. At the end,
    the surviving groups are renumbered 0..K'-1 in the order of their
    original ids (K' <= k). With ``n_init > 1`` (and no ``init_labels``) the
    whole procedure runs with seeds ``seed, seed + 1, ...`` and the run with
    the smallest total EMD of the pixels to their own group mean is kept
    (the first on a tie).

    Pixels left out (label -1): ``mask`` True; any NaN or infinite SFR or
    ``pixel_mass`` (the rule for NaN: the pixel has no SFH); an SFH that
    sums to 0 or a ``pixel_mass`` of 0 (no shape, no weight). A negative SFR
    or mass on any other pixel raises InputError.

    Parameters
    ----------
    cube : ndarray (n_time, ny, nx)
        SFR per lookback-time bin (Msun/yr, or any unit: only shapes matter).
    mask : ndarray (ny, nx) bool or None
        True = leave the pixel out.
    pixel_mass : ndarray (ny, nx) or None
        Weights of the pixels in the group means, Msun (e.g. the mass formed
        from :func:`sfh_cube`); None = equal weights.
    k : int
        Number of groups to start from, 1 <= k <= number of valid pixels.
    seed : int
        Seed of the initial labels.
    max_iter : int
        Most reassignment passes.
    init_labels : ndarray (ny, nx) int, optional
        Initial labels 0..k-1 on the valid pixels (other pixels ignored);
        overrides ``seed``, ``init`` and ``n_init``.
    time_edges_gyr : array (n_time + 1,), optional
        Lookback-time bin edges, Gyr; None = equal bins of unit width (the
        distance is then in bins).
    init : {"kmeans++", "random"}
        How to draw the initial labels (step 1).
    n_init : int
        Number of runs from different seeds; the best is kept.

    Returns
    -------
    labels : ndarray (ny, nx) int
        Group 0..K'-1, -1 for pixels left out.
    mean_sfh : ndarray (K', n_time)
        Mass-weighted mean of the group's normalised SFHs: ``SFR_j / M``
        with ``M = sum_j SFR_j dt_j``, so each row integrates to 1 over the
        time grid (Gyr^-1 with edges in Gyr; per bin without).
    group_mass : ndarray (K',)
        Sum of ``pixel_mass`` over each group (Msun).
    n_iter : int
        Reassignment passes done in the kept run (the last one changed
        nothing if ``n_iter < max_iter``).
    """
    valid, mass, p, cdf, spacing, widths = _prepare(cube, mask, pixel_mass, time_edges_gyr)
    k = int(k)
    given = None
    if init_labels is not None:
        given = np.asarray(init_labels)
        if given.shape != valid.shape or not np.issubdtype(given.dtype, np.integer):
            raise InputError(f"init_labels must be an integer map of shape {valid.shape}, got "
                             f"{given.dtype} {given.shape}.", "init_labels",
                             "give one label 0..k-1 per pixel.")
        given = given[valid].astype(np.int64)
        if given.min() < 0 or given.max() >= k:
            raise InputError(f"init_labels on valid pixels run from {given.min()} to "
                             f"{given.max()}, outside 0..{k - 1}.", "init_labels",
                             f"label every valid pixel 0..{k - 1}.")
    labels, n_iter, _, _ = _fit(cdf, mass, spacing, k, seed, int(max_iter), init, int(n_init),
                                given)
    out = np.full(valid.shape, -1, dtype=np.int64)
    out[valid] = labels
    mean_p, group_mass = _group_means(p, mass, labels, np.arange(labels.max() + 1))
    mean_sfh = mean_p / widths
    return out, mean_sfh, group_mass, n_iter


def within_group_emd(cube, mask, pixel_mass, labels, time_edges_gyr=None):
    """Per-pixel EMD to its own group's mean and to the nearest other group's mean.

    Group means as in :func:`group_sfhs` (mass-weighted). Only pixels that
    :func:`group_sfhs` would use and that have a label >= 0 count.

    Returns
    -------
    a, b : ndarray (n_labelled,)
        Distances in Gyr (bins without edges), in row-major pixel order;
        ``b`` is inf when there is a single group.
    """
    valid, mass, _, cdf, spacing, _ = _prepare(cube, mask, pixel_mass, time_edges_gyr)
    lab = np.asarray(labels)[valid]
    sel = lab >= 0
    return _distances_to_groups(cdf[sel], mass[sel], lab[sel], spacing)


def _silhouette(a, b):
    den = np.maximum(a, b)
    with np.errstate(invalid="ignore"):
        s = np.where(den > 0, (b - a) / np.where(den > 0, den, 1.0), 0.0)
    return float(np.mean(s))


def choose_k(cube, mask, pixel_mass, k_range, seed=0, max_iter=100, n_init=3,
             time_edges_gyr=None, init="kmeans++"):
    """Choose the number of groups by the largest mean EMD silhouette.

    For each ``k`` in ``k_range``, :func:`group_sfhs` runs with ``n_init``
    seeds (best run kept, as there). The score of its grouping is the mean
    over the grouped pixels of the centroid ("simplified") silhouette under
    the EMD, ``s_i = (b_i - a_i) / max(a_i, b_i)``, with ``a_i`` the distance
    to the pixel's own group mean and ``b_i`` to the nearest other group mean
    (``s_i = 0`` when both are 0). It is large when the groups are tight and
    far apart; it drops when a real group is split (its pixels lie between
    two close means) or two real groups are merged (large ``a``). A grouping
    left with a single group scores -1. Ties go to the smaller ``k``.

    Parameters
    ----------
    cube, mask, pixel_mass : ndarray
        The SFH cube, its mask and the pixels' masses, as :func:`group_sfhs` takes them.
    k_range : iterable of int
        Candidates, each >= 2.
    seed, max_iter, n_init, time_edges_gyr, init
        As in :func:`group_sfhs`.

    Returns
    -------
    k : int
        The best candidate (a requested k; its grouping may have dropped
        groups, see :func:`group_sfhs`).
    scores : dict
        ``{k: mean silhouette}`` for every candidate.
    """
    ks = sorted({int(k) for k in k_range})
    if not ks or ks[0] < 2:
        raise InputError(f"k_range = {ks} must hold values >= 2 (a silhouette needs two "
                         "groups).", "k_range", "e.g. range(2, 8).")
    _, mass, _, cdf, spacing, _ = _prepare(cube, mask, pixel_mass, time_edges_gyr)
    scores = {}
    for k in ks:
        labels, _, a, b = _fit(cdf, mass, spacing, k, seed, int(max_iter), init, int(n_init),
                               scores=True)
        scores[k] = _silhouette(a, b) if labels.max() >= 1 else -1.0
    k_best = max(ks, key=lambda k: (scores[k], -k))
    return k_best, scores


# ---------------------------------------------------------------------------
# product and plot
# ---------------------------------------------------------------------------

def make_sfh_groups(binmap, results, time_edges_gyr, k, *, galaxy=None, wcs=None,
                    seed=0, max_iter=100, mass_key="log_mass_formed", smooth_sigma_pix=0.0,
                    min_mass=0.0, pixel_weights=None, n_init=3, init="kmeans++",
                    config_hash=None):
    """From bin map and fit results to an :class:`sedmap.io.SFHGroups` product.

    :func:`sfh_cube` (see it for ``binmap``, ``results``, ``time_edges_gyr`` in
    Gyr, ``mass_key``, ``smooth_sigma_pix``, ``min_mass`` in Msun,
    ``pixel_weights``), then :func:`group_sfhs` with
    ``k`` groups (``seed``, ``max_iter``, ``init``, ``n_init`` as there), or,
    when ``k`` is an iterable of candidates, with the k :func:`choose_k`
    picks. ``galaxy``, ``wcs`` and ``config_hash`` default to the BinMap's
    when ``binmap`` is one.

    The product holds: ``group_map`` int16, -1 = masked; ``mass`` = the mass
    formed within the time grid by each group's pixels (Msun); ``mean_sfh`` =
    the mean over the group's pixels of their SFR in each time bin (Msun/yr;
    the group's total SFH is ``mean_sfh * n_pix``), as ``docs/products.md``
    defines it; ``time_edges`` (Gyr).
    """
    edges = _check_edges(time_edges_gyr)
    cube, mask, pixel_mass = sfh_cube(binmap, results, edges, mass_key=mass_key,
                                      smooth_sigma_pix=smooth_sigma_pix, min_mass=min_mass,
                                      pixel_weights=pixel_weights)
    if np.ndim(k) == 0:
        k = int(k)
    else:
        k, _ = choose_k(cube, mask, pixel_mass, k, seed=seed, max_iter=max_iter,
                        n_init=n_init, time_edges_gyr=edges, init=init)
    labels, _, group_mass, _ = group_sfhs(cube, mask, pixel_mass, k, seed=seed,
                                          max_iter=max_iter, time_edges_gyr=edges, init=init,
                                          n_init=n_init)
    if wcs is None:
        wcs = getattr(binmap, "wcs", None)
    if wcs is None:
        raise InputError("no WCS for the group map: binmap is a plain array.", "wcs",
                         "pass the BinMap itself, or wcs=BinMap.wcs.")
    sel = labels >= 0
    n_group = group_mass.size
    counts = np.bincount(labels[sel], minlength=n_group)
    total = np.stack([np.bincount(labels[sel], weights=cube[j][sel], minlength=n_group)
                      for j in range(cube.shape[0])], axis=1)
    g = SFHGroups(
        galaxy=str(galaxy if galaxy is not None else getattr(binmap, "galaxy", "")),
        group_map=labels.astype(np.int16),
        wcs=wcs,
        mass=group_mass, mean_sfh=total / counts[:, None], time_edges=edges,
        config_hash=str(config_hash if config_hash is not None
                        else getattr(binmap, "config_hash", "none")),
    )
    validate_sfh_groups(g, "sfh_groups")
    return g


def plot_sfh_groups(groups, path):
    """PNG of the group map and each group's mean SFH (Msun/yr vs lookback Gyr).

    Written atomically (:func:`sedmap.io.figure.save_figure`); returns ``path``. Uses
    a bare ``matplotlib.figure.Figure`` (Agg canvas), so it neither needs nor
    changes the pyplot backend.
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    gmap = np.asarray(groups.group_map)
    n = groups.n_group
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    colours = [cmap(i % cmap.N) for i in range(n)]
    fig = Figure(figsize=(9, 4))
    ax1, ax2 = fig.subplots(1, 2)
    img = np.where(gmap >= 0, gmap, np.nan).astype(float)
    ax1.imshow(img, origin="lower", cmap=ListedColormap(colours), vmin=-0.5,
               vmax=n - 0.5, interpolation="nearest")
    ax1.set_title(f"{groups.galaxy} SFH groups ({n})", fontsize=9)
    ax1.set_xticks([])
    ax1.set_yticks([])
    edges = np.asarray(groups.time_edges, dtype=float)
    npix = groups.n_pix
    for g in range(n):
        ax2.stairs(groups.mean_sfh[g], edges, color=colours[g], lw=1.5,
                   label=f"{g}: {npix[g]} pix, log M_formed = "
                         f"{np.log10(max(groups.mass[g], 1e-30)):.2f}")
    if edges[0] > 0:
        ax2.set_xscale("log")
    ax2.set_xlabel("lookback time (Gyr)")
    ax2.set_ylabel("mean SFR per pixel (Msun/yr)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
