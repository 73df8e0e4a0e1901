"""SFH grouping under the earth mover's distance (sedmap.sfhgroups).

The references here are deliberately plain: Python loops over pixels and
groups calling ``scipy.stats.wasserstein_distance``, as the published notebook
does, and the adjusted Rand index from the contingency table.
"""

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy.stats import wasserstein_distance

from sedmap.errors import InputError
from sedmap.io import FitResult, read_sfh_groups, write_sfh_groups
from sedmap.sfhgroups import (
    choose_k,
    emd_matrix,
    group_sfhs,
    make_sfh_groups,
    plot_sfh_groups,
    sfh_cdf,
    sfh_cube,
    within_group_emd,
)
from sedmap.sps.sfh import get_sfh

EQUAL = np.linspace(0.0, 13.5, 31)
UNEVEN = np.concatenate([[0.0], np.geomspace(0.01, 13.5, 30)])


def centres(edges):
    return 0.5 * (edges[1:] + edges[:-1])


def mass_weights(sfh, edges):
    """The distribution the distance compares: mass formed per bin, unit sum."""
    m = sfh * np.diff(edges)
    return m / m.sum()


# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------

def adjusted_rand_index(a, b):
    """ARI of two labelings (1-D int arrays), from the contingency table."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    n = len(a)
    index = pairs(table)
    sa, sb = pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = sa * sb / (n * (n - 1) / 2)
    return (index - expected) / (0.5 * (sa + sb) - expected)


def loop_reference(cube, mask, pixel_mass, k, init_labels, edges, max_iter=100):
    """The published algorithm, one pixel and one group at a time."""
    n_time, ny, nx = cube.shape
    c = centres(edges)
    widths = np.diff(edges)
    pixels, p, m, labels = [], {}, {}, {}
    for y in range(ny):
        for x in range(nx):
            s = cube[:, y, x]
            if mask[y, x] or not np.all(np.isfinite(s)) or not np.isfinite(pixel_mass[y, x]):
                continue
            if pixel_mass[y, x] <= 0 or np.sum(s * widths) <= 0:
                continue
            pixels.append((y, x))
            p[y, x] = s * widths / np.sum(s * widths)
            m[y, x] = pixel_mass[y, x]
            labels[y, x] = int(init_labels[y, x])
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (returned)
        counts = {}
        for yx in pixels:
            counts[labels[yx]] = counts.get(labels[yx], 0) + 1
        active = [g for g in range(k) if counts.get(g, 0) > 1]
        means = {}
        for g in active:
            num, den = np.zeros(n_time), 0.0
            for yx in pixels:
                if labels[yx] == g:
                    num += m[yx] * p[yx]
                    den += m[yx]
            means[g] = num / den
        new = {}
        for yx in pixels:
            best, best_d = None, np.inf
            for g in active:
                d = wasserstein_distance(c, c, p[yx], means[g])
                if d < best_d:
                    best, best_d = g, d
            new[yx] = best
        changed = new != labels
        labels = new
        if not changed:
            break
    ids = sorted(set(labels.values()))
    out = np.full((ny, nx), -1)
    mean_sfh, group_mass = [], []
    for new_id, g in enumerate(ids):
        num, den = np.zeros(n_time), 0.0
        for yx in pixels:
            if labels[yx] == g:
                out[yx] = new_id
                num += m[yx] * p[yx] / widths
                den += m[yx]
        mean_sfh.append(num / den)
        group_mass.append(den)
    return out, np.array(mean_sfh), np.array(group_mass), n_iter


# ---------------------------------------------------------------------------
# synthetic maps
# ---------------------------------------------------------------------------

def planted_shapes(edges):
    c = centres(edges)
    return np.array([
        np.exp(-0.5 * ((c - 10.0) / 1.5) ** 2),   # early burst
        np.ones_like(c),                           # constant
        np.exp(-c / 1.5),                          # late rising (towards now)
        np.exp(-0.5 * ((c - 4.0) / 1.0) ** 2),     # intermediate burst
        np.exp(-0.5 * ((c - 7.0) / 0.7) ** 2),     # short old burst
    ])


def planted_cube(n_group, edges=UNEVEN, size=40, noise=0.25, seed=0):
    """Voronoi patches of distinct SFH shapes, lognormal noise per bin, random masses."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, size, (n_group, 2))
    yy, xx = np.mgrid[:size, :size]
    truth = np.argmin((yy[..., None] - points[:, 0]) ** 2 + (xx[..., None] - points[:, 1]) ** 2,
                      axis=-1)
    shapes = planted_shapes(edges)[:n_group]
    cube = shapes[truth].transpose(2, 0, 1) * rng.lognormal(0, noise,
                                                            (edges.size - 1,) + truth.shape)
    mass = rng.lognormal(np.log(1e6), 0.5, truth.shape)
    cube *= mass / np.tensordot(np.diff(edges) * 1e9, cube, axes=(0, 0))
    mask = np.zeros(truth.shape, bool)
    mask[:4, :4] = True
    cube[:, -1, -1] = np.nan
    return cube, mask, mass, truth


# ---------------------------------------------------------------------------
# distance
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("edges", [EQUAL, UNEVEN], ids=["equal", "uneven"])
def test_emd_matrix_matches_scipy(edges):
    rng = np.random.default_rng(3)
    n_time = edges.size - 1
    a = rng.random((25, n_time)) ** 3
    b = rng.random((6, n_time)) ** 3
    a[:5, rng.integers(0, n_time, 10)] = 0.0  # empty bins
    cdf_a, spacing = sfh_cdf(a, edges)
    cdf_b, _ = sfh_cdf(b, edges)
    d = emd_matrix(cdf_a, cdf_b, spacing)
    c = centres(edges)
    ref = np.array([[wasserstein_distance(c, c, mass_weights(x, edges), mass_weights(y, edges))
                     for y in b] for x in a])
    assert d.shape == (25, 6)
    np.testing.assert_allclose(d, ref, rtol=0, atol=1e-10)
    assert ref.max() > 0.5  # not trivially small
    # chunked evaluation is the same
    np.testing.assert_array_equal(emd_matrix(cdf_a, cdf_b, spacing, max_elements=50), d)


def test_emd_on_equal_bins_is_the_sfr_shape_distance():
    """On equal bins, mass per bin and SFR values give the same normalised distribution."""
    rng = np.random.default_rng(4)
    a, b = rng.random((2, EQUAL.size - 1))
    cdf, spacing = sfh_cdf(np.stack([a, b]), EQUAL)
    c = centres(EQUAL)
    assert emd_matrix(cdf[:1], cdf[1:], spacing)[0, 0] == pytest.approx(
        wasserstein_distance(c, c, a, b), abs=1e-12)


# ---------------------------------------------------------------------------
# grouping
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("edges", [EQUAL, UNEVEN], ids=["equal", "uneven"])
def test_same_as_loop_reference(edges):
    cube, mask, mass, _ = planted_cube(4, edges=edges, size=14, noise=0.8, seed=5)
    rng = np.random.default_rng(11)
    init = rng.integers(0, 5, mask.shape)
    init[7, 7] = 5  # group 5 has one pixel: dropped on the first pass
    labels, mean_sfh, group_mass, n_iter = group_sfhs(cube, mask, mass, 6, init_labels=init,
                                                      time_edges_gyr=edges)
    ref = loop_reference(cube, mask, mass, 6, init, edges)
    assert n_iter == ref[3] and n_iter < 100
    np.testing.assert_array_equal(labels, ref[0])
    np.testing.assert_allclose(mean_sfh, ref[1], rtol=1e-10)
    np.testing.assert_allclose(group_mass, ref[2], rtol=1e-12)
    assert labels.max() + 1 == len(group_mass) <= 5
    assert labels[mask].tolist() == [-1] * mask.sum() and labels[-1, -1] == -1


def test_random_init_is_the_published_step():
    """init='random': labels drawn with default_rng(seed).integers(0, k, n_valid)."""
    cube, mask, mass, _ = planted_cube(3, size=12, noise=0.5, seed=2)
    valid = ~mask & np.all(np.isfinite(cube), axis=0)
    init = np.zeros(mask.shape, int)
    init[valid] = np.random.default_rng(7).integers(0, 3, valid.sum())
    got = group_sfhs(cube, mask, mass, 3, seed=7, init="random", time_edges_gyr=UNEVEN)
    ref = loop_reference(cube, mask, mass, 3, init, UNEVEN)
    np.testing.assert_array_equal(got[0], ref[0])


def two_shape_cube(n_a=6, n_b=6):
    """One row: n_a early-burst pixels, n_b late-rising pixels, unit masses."""
    s = planted_shapes(EQUAL)
    cube = np.concatenate([np.repeat(s[0][:, None], n_a, 1), np.repeat(s[2][:, None], n_b, 1)],
                          axis=1)[:, None, :]
    return cube, np.zeros(cube.shape[1:], bool), np.ones(cube.shape[1:])


def test_ties_go_to_the_lowest_group():
    """Groups 0 and 2 start with identical members, hence identical means: their pixels
    tie and go to group 0; group 2 empties and is dropped; the late group is renumbered
    after group 0 (were ties to go to the highest id, the labels would come out swapped)."""
    cube, mask, mass = two_shape_cube()
    init = np.array([[0, 0, 0, 2, 2, 2, 1, 1, 1, 1, 1, 1]])
    labels, _, group_mass, n_iter = group_sfhs(cube, mask, mass, 3, init_labels=init,
                                               time_edges_gyr=EQUAL)
    assert labels.tolist() == [[0] * 6 + [1] * 6] and n_iter == 2
    assert group_mass.tolist() == [6.0, 6.0]


@pytest.mark.parametrize("max_iter", [1, 100])
def test_one_pixel_group_is_dropped(max_iter):
    """A group left with one pixel is dropped; its pixel joins the nearest group.

    Group 2 starts as {heavy outlier, one early-burst pixel}; its mean is
    nearly the outlier's SFH, so after one pass only the outlier is left in
    it. With max_iter=1 the final clean-up drops it, otherwise the next pass.
    """
    cube, mask, mass = two_shape_cube()
    c = centres(EQUAL)
    cube[:, 0, 11] = np.exp(-c / 0.7)  # outlier: even later rising than the late group
    mass[0, 11] = 1e6
    init = np.array([[2, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2]])
    labels, _, group_mass, n_iter = group_sfhs(cube, mask, mass, 3, init_labels=init,
                                               max_iter=max_iter, time_edges_gyr=EQUAL)
    assert group_mass.size == 2
    assert labels.tolist() == [[0] * 6 + [1] * 6]
    if max_iter == 1:
        assert n_iter == 1
    else:
        ref = loop_reference(cube, mask, mass, 3, init, EQUAL)
        np.testing.assert_array_equal(labels, ref[0])


@pytest.mark.parametrize("n_group", [3, 4, 5])
def test_recovers_planted_groups(n_group):
    cube, mask, mass, truth = planted_cube(n_group, seed=n_group)
    labels, mean_sfh, group_mass, _ = group_sfhs(cube, mask, mass, n_group, n_init=3,
                                                 time_edges_gyr=UNEVEN)
    sel = labels >= 0
    assert sel.sum() == truth.size - 16 - 1
    assert adjusted_rand_index(labels[sel], truth[sel]) >= 0.95
    # mean SFHs integrate to 1 over the grid (normalised), masses add up
    np.testing.assert_allclose(mean_sfh @ np.diff(UNEVEN), 1.0, rtol=1e-12)
    np.testing.assert_allclose(group_mass.sum(), mass[sel].sum(), rtol=1e-12)


@pytest.mark.parametrize("n_group", [3, 4, 5])
def test_choose_k_picks_planted_k(n_group):
    cube, mask, mass, _ = planted_cube(n_group, seed=10 + n_group)
    k, scores = choose_k(cube, mask, mass, range(2, 8), time_edges_gyr=UNEVEN)
    assert k == n_group, scores
    assert set(scores) == set(range(2, 8))


def test_within_group_emd_is_smaller_than_to_other_groups():
    cube, mask, mass, _ = planted_cube(4, seed=1)
    labels = group_sfhs(cube, mask, mass, 4, n_init=3, time_edges_gyr=UNEVEN)[0]
    a, b = within_group_emd(cube, mask, mass, labels, UNEVEN)
    assert a.size == (labels >= 0).sum()
    assert np.all(a <= b)  # converged: every pixel is at its nearest group mean


# ---------------------------------------------------------------------------
# per-pixel SFH cube
# ---------------------------------------------------------------------------

EDGES = np.array([0.0, 0.1, 0.3, 1.0, 2.0, 4.0, 6.0])


def fit(bin_id, log_age, log_tau, log_mass, flag=0):
    pct = {"log_age": [log_age - 0.1, log_age, log_age + 0.1],
           "log_tau": [log_tau - 0.2, log_tau, log_tau + 0.2],
           "log_mass_formed": [log_mass - 0.1, log_mass, log_mass + 0.1]}
    return FitResult(bin_id=bin_id, method="rdsps", param_names=list(pct),
                     samples=np.zeros((1, 3)), percentiles=pct, flag=flag,
                     sfh={"name": "delayed_tau"})


def small_map():
    bmap = np.zeros((6, 8), dtype=np.int32)
    bmap[1:3, 1:4] = 1
    bmap[1:5, 4:7] = 2
    bmap[3:6, 0:3] = 3
    bmap[5, 3:8] = 4
    bmap[0, 7] = 5
    results = [fit(1, 1.0, 0.3, 8.0), fit(2, 0.5, -0.5, 7.5), fit(3, 0.9, 0.8, 8.3),
               fit(4, 0.2, 0.0, 7.0), fit(5, 0.6, 0.0, 7.0)]
    return bmap, results


def mass_in_grid(res, edges):
    """Independent: trapezoid integral of sfr() over the grid's time range, Msun."""
    p = {k: np.array([v[1]]) for k, v in res.percentiles.items()}
    t = np.linspace(edges[0], edges[-1], 400001)
    rate = get_sfh("delayed_tau").sfr(p, t)[0] * 10 ** p["log_mass_formed"][0]  # Msun/yr
    return np.trapezoid(rate, t * 1e9)


def test_sfh_cube_conserves_mass():
    bmap, results = small_map()
    cube, mask, pixel_mass = sfh_cube(bmap, results, EDGES)
    assert cube.shape == (EDGES.size - 1,) + bmap.shape
    dt = np.diff(EDGES) * 1e9
    expected = np.array([mass_in_grid(r, EDGES) for r in results])
    # bins 1 and 3 are older than the grid: part of their mass lies outside it
    assert expected[0] < 0.9 * 1e8
    total = np.nansum(cube * dt[:, None, None])
    np.testing.assert_allclose(total, expected.sum(), rtol=1e-6)
    for k in range(1, 6):
        np.testing.assert_allclose(pixel_mass[bmap == k].sum(), expected[k - 1], rtol=1e-6)
        # equal shares: every pixel of a bin has the same SFH
        pix = cube[:, bmap == k]
        np.testing.assert_allclose(pix, np.broadcast_to(pix[:, :1], pix.shape), rtol=1e-12)
    assert np.all(np.isnan(cube[:, bmap == 0])) and np.all(mask[bmap == 0])
    assert not mask[bmap > 0].any()
    np.testing.assert_allclose(np.nansum(pixel_mass), total, rtol=1e-12)


def test_sfh_cube_smoothing_conserves_total_and_weights_share():
    bmap, results = small_map()
    dt = np.diff(EDGES) * 1e9
    cube, _, _ = sfh_cube(bmap, results, EDGES)
    smooth, smask, smass = sfh_cube(bmap, results, EDGES, smooth_sigma_pix=1.5)
    np.testing.assert_array_equal(smask, bmap == 0)
    np.testing.assert_allclose(np.nansum(smass), np.nansum(cube * dt[:, None, None]), rtol=1e-12)
    np.testing.assert_allclose(np.nansum(smooth * dt[:, None, None], axis=(1, 2)),
                               np.nansum(cube * dt[:, None, None], axis=(1, 2)), rtol=1e-12)
    assert np.all(np.isnan(smooth[:, bmap == 0]))  # nothing leaks onto unbinned pixels
    assert not np.allclose(smooth[:, bmap > 0], cube[:, bmap > 0])
    weights = np.arange(bmap.size, dtype=float).reshape(bmap.shape) + 1.0
    _, _, wmass = sfh_cube(bmap, results, EDGES, pixel_weights=weights)
    _, _, emass = sfh_cube(bmap, results, EDGES)
    for k in range(1, 6):
        sel = bmap == k
        np.testing.assert_allclose(wmass[sel], emass[sel].sum() * weights[sel] / weights[sel].sum(),
                                   rtol=1e-12)


def test_sfh_cube_masks():
    bmap, results = small_map()
    results[1] = fit(2, 0.5, -0.5, 7.5, flag=4)     # flagged fit
    results[2] = None                                # no fit
    results[3].percentiles["log_tau"] = [np.nan] * 3  # NaN parameter
    cube, mask, pixel_mass = sfh_cube(bmap, results, EDGES, min_mass=1e6)
    assert np.all(np.isnan(pixel_mass[mask])) and np.all(pixel_mass[~mask] >= 1e6)
    for k in (2, 3, 4):
        assert np.all(mask[bmap == k]) and np.all(np.isnan(cube[:, bmap == k]))
    assert not mask[bmap == 1].any()
    # bin 5: one pixel, 10^7 Msun formed within the grid (age 4 Gyr): kept
    assert not mask[bmap == 5].any()
    _, mask2, _ = sfh_cube(bmap, results, EDGES, min_mass=1e9)
    assert np.all(mask2[bmap == 1])  # too little mass, but the SFH stays in the cube
    with pytest.raises(InputError, match="no percentiles for \\['nope'\\]"):
        sfh_cube(bmap, results, EDGES, mass_key="nope")
    with pytest.raises(InputError, match="fit results"):
        sfh_cube(bmap, results[:3], EDGES)
    with pytest.raises(InputError, match="negative"):
        sfh_cube(bmap, results, EDGES, pixel_weights=-np.ones(bmap.shape))


def test_make_sfh_groups_product_round_trip_and_plot(tmp_path):
    bmap, results = small_map()
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [4.0, 3.0]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    g = make_sfh_groups(bmap, results, EDGES, k=2, galaxy="TEST", wcs=wcs)
    cube, mask, pixel_mass = sfh_cube(bmap, results, EDGES)
    assert g.group_map.dtype == np.int16
    np.testing.assert_array_equal(g.group_map == -1, mask)
    np.testing.assert_allclose(g.mass.sum(), np.nansum(pixel_mass), rtol=1e-12)
    for j in range(g.n_group):  # mean over the group's pixels of their SFR, Msun/yr
        np.testing.assert_allclose(g.mean_sfh[j], cube[:, g.group_map == j].mean(axis=1),
                                   rtol=1e-12)
    back = read_sfh_groups(write_sfh_groups(g, tmp_path / "sfh_groups.fits"))
    np.testing.assert_array_equal(back.group_map, g.group_map)
    np.testing.assert_allclose(back.mean_sfh, g.mean_sfh)
    png = plot_sfh_groups(g, tmp_path / "sfh_groups.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_bad_inputs():
    cube, mask, mass, _ = planted_cube(3, size=10, seed=1)
    with pytest.raises(InputError, match="all 100 pixels are masked"):
        group_sfhs(cube, np.ones_like(mask), mass, 2)
    n_valid = (~mask).sum() - 1  # one NaN pixel
    with pytest.raises(InputError, match=f"{n_valid} valid pixels"):
        group_sfhs(cube, mask, mass, n_valid + 1)
    bad = cube.copy()
    bad[3, 5, 5] = -1e-3
    bad[0, 6, 6] = -1.0
    with pytest.raises(InputError, match="2 unmasked pixels have a negative SFR"):
        group_sfhs(bad, mask, mass, 2)
    bad_mask = mask.copy()
    bad_mask[5, 5] = bad_mask[6, 6] = True  # negative values on masked pixels are ignored
    assert group_sfhs(bad, bad_mask, mass, 2)[0][5, 5] == -1
    with pytest.raises(InputError, match="negative pixel_mass"):
        group_sfhs(cube, mask, -mass, 2)
    with pytest.raises(InputError, match="outside 0..1"):
        group_sfhs(cube, mask, mass, 2, init_labels=np.full(mask.shape, 2))
    with pytest.raises(InputError, match=">= 2"):
        choose_k(cube, mask, mass, [1, 2, 3])
    with pytest.raises(InputError, match="unknown init"):
        group_sfhs(cube, mask, mass, 2, init="nope")
    with pytest.raises(InputError, match="every group fell"):
        two = np.ones(mask.shape, bool)
        two[5, 5:7] = False
        group_sfhs(cube, two, mass, 2, init_labels=np.arange(mask.size).reshape(mask.shape) % 2)


def test_nan_pixels_are_masked():
    cube, mask, mass, _ = planted_cube(3, size=10, seed=1)
    cube[4, 5, 2] = np.nan
    mass = mass.copy()
    mass[3, 6] = np.nan
    labels = group_sfhs(cube, mask, mass, 3)[0]
    assert labels[5, 2] == labels[3, 6] == labels[-1, -1] == -1
    assert (labels >= 0).sum() == (~mask).sum() - 3
