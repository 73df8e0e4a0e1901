"""Binning: contiguity, S/N, flux bookkeeping, SED similarity, vorbin reference."""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from sedmap.binning import (
    _FOUR,
    FLAG_LOW_SNR,
    _chi2_red,
    bin_leftovers,
    bin_sed_similarity,
    bin_voronoi,
    default_reference_band,
    sum_bins,
    voronoi_partition,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def mock_cube(n=80, nb=6, seed=0, noise=0.7):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n]
    r = np.hypot(x - n / 2, y - n / 2)
    prof = np.exp(-r / (n / 8))
    # two SED shapes: blue inside x < n/2, red outside
    blue = np.linspace(1.5, 0.5, nb)[:, None, None]
    red = np.linspace(0.5, 1.5, nb)[:, None, None]
    shape = np.where(x[None] < n / 2, blue, red)
    truth = 60 * prof * shape
    var = np.full(truth.shape, noise**2)
    flux = truth + rng.normal(size=truth.shape) * noise
    return flux, var, r < n / 2.5, x


def contiguous(binmap, connectivity=1):
    st = ndimage.generate_binary_structure(2, connectivity)
    for k in range(1, binmap.max() + 1):
        if ndimage.label(binmap == k, structure=st)[1] != 1:
            return False
    return True


def test_sed_binning_bins_are_contiguous_and_reach_sn():
    flux, var, region, _ = mock_cube()
    binmap, flag = bin_sed_similarity(flux, var, region, sn_threshold=15.0, d_min=2)
    assert binmap.max() > 20
    assert np.all(binmap[region] > 0) and np.all(binmap[~region] == 0)
    assert contiguous(binmap)
    _, _, snr = sum_bins(binmap, flux, var)
    good = flag == 0
    assert good.mean() > 0.9
    assert np.all(snr[good] >= 15.0)
    assert np.all((flag & FLAG_LOW_SNR)[~(snr >= 15).all(axis=1)] == FLAG_LOW_SNR)


def test_sed_binning_does_not_mix_sed_shapes():
    flux, var, region, x = mock_cube(noise=0.3)
    binmap, _ = bin_sed_similarity(flux, var, region, sn_threshold=20.0, redc_chi2_limit=4.0)
    mixed = 0
    for k in range(1, binmap.max() + 1):
        xs = x[binmap == k]
        mixed += np.any(xs < 40) and np.any(xs >= 40)
    assert mixed <= 0.05 * binmap.max()  # only leftovers merged across the border


def test_binned_fluxes_keep_negative_pixels():
    flux, var, region, _ = mock_cube(noise=5.0)  # outskirts have many negative pixels
    assert (flux[:, region] < 0).sum() > 100
    binmap, _ = bin_sed_similarity(flux, var, region, sn_threshold=5.0)
    fs, vs, _ = sum_bins(binmap, flux, var)
    np.testing.assert_allclose(fs.sum(axis=0), flux[:, binmap > 0].sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(vs.sum(axis=0), var[:, binmap > 0].sum(axis=1), rtol=1e-12)


def _plain_sed_binning(flux, var, region, thr, limit=4.0, del_r=2.0, d_min=2.0,
                       max_radius=30.0, max_failures=100):
    """Reference: every step redone on the whole image, every seed grown to max_radius."""
    nb, ny, nx = flux.shape
    valid = region & np.all(np.isfinite(flux) & (var > 0), axis=0)
    thr = np.full(nb, thr)
    req = np.ones(nb, bool)
    yy, xx = np.mgrid[:ny, :nx]
    binmap = np.zeros((ny, nx), np.int32)
    order = np.argsort(np.where(valid, -flux[0], np.inf), axis=None, kind="stable")
    fails = 0
    for seed in order[: valid.sum()]:
        y0, x0 = divmod(int(seed), nx)
        if binmap[y0, x0]:
            continue
        d2 = (yy - y0) ** 2 + (xx - x0) ** 2
        window = (abs(yy - y0) <= np.ceil(max_radius)) & (abs(xx - x0) <= np.ceil(max_radius))
        cand = valid & (binmap == 0) & window
        take = np.zeros((ny, nx), bool)
        take[cand] = _chi2_red(flux[:, cand].T, var[:, cand].T, flux[:, y0, x0],
                               var[:, y0, x0]) <= limit
        take[y0, x0] = True
        r = max(d_min / 2.0, 0.5)
        while True:
            lab, _ = ndimage.label(take & (d2 <= r * r), structure=_FOUR)
            members = lab == lab[y0, x0]
            sn = flux[:, members].sum(axis=1) / np.sqrt(var[:, members].sum(axis=1))
            if np.all(sn >= thr) or r >= max_radius:
                break
            r += del_r
        if np.all(sn >= thr):
            binmap[members] = binmap.max() + 1
            fails = 0
        else:
            fails += 1
            if fails >= max_failures:
                break
    return bin_leftovers(binmap, valid, flux, var, thr, req)


@pytest.mark.parametrize("noise, sn, kw", [
    (5.0, 5.0, {}),                                  # many failed seeds, negative fluxes
    (1.0, 12.0, {"d_min": 5.0, "del_r": 1.5, "max_radius": 9.0, "max_failures": 5}),
    (0.5, 20.0, {"limit": 1.0, "d_min": 1.0}),
])
def test_sed_binning_matches_plain_growth(noise, sn, kw):
    """The windowed growth, with its early stop of bins that cannot grow, changes no bin."""
    flux, var, region, _ = mock_cube(n=40, noise=noise, seed=3)
    var[0] *= 0.5   # band 0 has the highest S/N: the default reference band
    ref, ref_flag = _plain_sed_binning(flux, var, region, sn, **kw)
    kw = {("redc_chi2_limit" if k == "limit" else k): v for k, v in kw.items()}
    binmap, flag = bin_sed_similarity(flux, var, region, sn_threshold=sn, **kw)
    np.testing.assert_array_equal(binmap, ref)
    np.testing.assert_array_equal(flag, ref_flag)


def test_default_reference_band_is_highest_sn():
    flux, var, region, _ = mock_cube()
    var[2] *= 0.01
    assert default_reference_band(flux, var, region) == 2


def test_voronoi_bins_contiguous_and_near_target():
    flux, var, region, _ = mock_cube(n=50)
    binmap, _ = bin_voronoi(flux, var, region, band=0, target_sn=30.0)
    assert contiguous(binmap, connectivity=2)
    _, _, snr = sum_bins(binmap, flux, var)
    multi = np.bincount(binmap.ravel())[1:] > 1
    assert np.median(snr[multi, 0]) == pytest.approx(30.0, rel=0.3)


@pytest.mark.skipif(not (REAL / "reference" / "vorbin_sauron_ngc2273").is_dir(),
                    reason="../shared/realdata absent")
def test_voronoi_reproduces_vorbin_reference():
    ref_dir = REAL / "reference" / "vorbin_sauron_ngc2273"
    x, y, signal, noise = np.loadtxt(ref_dir / "voronoi_2d_binning_example_input.txt").T
    ref = np.loadtxt(ref_dir / "voronoi_2d_binning_example_output.txt")
    np.testing.assert_allclose(ref[:, :2], np.column_stack([x, y]), atol=1e-5)
    ours = voronoi_partition(x, y, signal, noise, 50.0)
    np.testing.assert_array_equal(ours, ref[:, 2].astype(int))  # vorbin's published output


def test_covariance_correction_makes_bigger_bins():
    flux, var, region, _ = mock_cube(n=40)
    plain, _ = bin_voronoi(flux, var, region, band=0, target_sn=40.0)
    corr, _ = bin_voronoi(flux, var, region, band=0, target_sn=40.0, covariance_alpha=1.07)
    assert corr.max() < 0.8 * plain.max()


# ------------------------------------------------------- correlated pixel noise


def correlated_noise(shape, sigma_pix, nreal, rng, kernel_sigma=1.5):
    """Noise realisations convolved with a Gaussian kernel, the variance map of
    one realisation and the exact correlation coefficient rho."""
    from scipy.signal import fftconvolve

    h = int(4 * kernel_sigma) + 1
    yy, xx = np.mgrid[-h:h + 1, -h:h + 1]
    k = np.exp(-0.5 * (xx**2 + yy**2) / kernel_sigma**2)
    k /= k.sum()
    pad = np.pad(sigma_pix, h, mode="edge")
    white = rng.normal(size=(nreal,) + pad.shape) * pad
    real = fftconvolve(white, k[None], mode="same", axes=(1, 2))[:, h:-h, h:-h]
    var = fftconvolve(pad**2, k**2, mode="same")[h:-h, h:-h]
    kk = fftconvolve(k, k[::-1, ::-1])
    return real, var, kk / kk.max()


def test_correlated_sum_variance_matches_monte_carlo():
    """Bin sums of correlated noise: sum_bins with the noise model gives the
    Monte Carlo variance; the plain sum of pixel variances is many times smaller;
    a shared sky error adds (N sky)^2."""
    from sedmap.binning import NoiseModel

    rng = np.random.default_rng(5)
    ny = nx = 40
    sigma = 1.0 + 0.5 * np.linspace(0, 1, nx)[None, :] * np.ones((ny, 1))
    real, var, rho = correlated_noise((ny, nx), sigma, 2000, rng)
    binmap = np.zeros((ny, nx), int)
    binmap[5:15, 5:15] = 1       # a 10 x 10 block
    binmap[25:28, 10:30] = 2     # a thin strip
    binmap[33, 33] = 3           # one pixel
    empirical = np.array([real[:, binmap == k].sum(axis=1).var() for k in (1, 2, 3)])
    flux = np.ones((1, ny, nx))
    _, v_corr, _ = sum_bins(binmap, flux, var[None], NoiseModel(rho[None]))
    _, v_plain, _ = sum_bins(binmap, flux, var[None])
    np.testing.assert_allclose(v_corr[:, 0], empirical, rtol=0.1)
    assert v_plain[0, 0] < 0.1 * empirical[0]
    assert v_corr[2, 0] == pytest.approx(v_plain[2, 0])   # one pixel: its own variance
    for k in (1, 2):   # one bin at a time (the growth's check) = all bins at once
        ys, xs = np.nonzero(binmap == k)
        one = NoiseModel(rho[None]).sum_variance(ys, xs, np.sqrt(var[ys, xs])[:, None])
        assert one[0] == pytest.approx(v_corr[k - 1, 0], rel=1e-9)
    sky = 0.3
    _, v_sky, _ = sum_bins(binmap, flux, var[None] + sky**2, NoiseModel(rho[None], [sky]))
    npix = np.bincount(binmap.ravel())[1:]
    np.testing.assert_allclose(v_sky[:, 0], v_corr[:, 0] + (npix * sky) ** 2, rtol=1e-9)


def test_sed_binning_with_correlated_noise_reaches_true_sn():
    """With the noise correlation the bins grow until their *true* S/N (every
    covariance counted) reaches the threshold, so they are larger than bins
    that believe the pixels independent, which miss the threshold."""
    from sedmap.binning import NoiseModel

    flux, var, region, _ = mock_cube(n=60, noise=0.3)
    rng = np.random.default_rng(1)
    _, _, rho = correlated_noise((5, 5), np.ones((5, 5)), 1, rng)
    rho = np.broadcast_to(rho, (flux.shape[0],) + rho.shape).copy()
    noise = NoiseModel(rho)
    naive, _ = bin_sed_similarity(flux, var, region, sn_threshold=20.0)
    binmap, flag = bin_sed_similarity(flux, var, region, sn_threshold=20.0, noise_corr=rho)
    assert contiguous(binmap)
    assert binmap.max() < 0.7 * naive.max()
    _, _, snr = sum_bins(binmap, flux, var, noise)
    good = flag == 0
    assert good.mean() > 0.8
    assert np.all(snr[good] >= 20.0)
    _, _, snr_naive = sum_bins(naive, flux, var, noise)
    multi = np.bincount(naive.ravel())[1:] > 1
    short = ~(snr_naive >= 20.0).all(axis=1)
    assert short[multi].mean() > 0.3    # independent pixels: many multi-pixel bins fall short
    vb, _ = bin_voronoi(flux, var, region, band=0, target_sn=30.0, noise_corr=rho)
    _, _, vsnr = sum_bins(vb, flux, var, noise)
    multi = np.bincount(vb.ravel())[1:] > 1
    assert np.median(vsnr[multi, 0]) == pytest.approx(30.0, rel=0.3)


# ------------------------------------------- PSF floor, size cap, leftover pixels


def sky_limited_cube(n=60, sky=0.3, seed=0):
    """mock_cube plus a shared sky-level error: the faint outskirts cannot reach
    S/N 10 at any size (the S/N of a sum tends to its mean flux / sky)."""
    flux, var, region, x = mock_cube(n=n, noise=0.5, seed=seed)
    sky = np.full(flux.shape[0], sky)
    return flux, var + sky[:, None, None] ** 2, region, sky


def bin_both(method, flux, var, region, sky, **kw):
    if method == "sed":
        return bin_sed_similarity(flux, var, region, sn_threshold=10.0, sky_err=sky, **kw)
    return bin_voronoi(flux, var, region, 0, 10.0, sky_err=sky, **kw)


def bin_sn(binmap, k, flux, var, sky):
    """S/N per band of bin k, every covariance (here the shared sky) counted."""
    ys, xs = np.nonzero(binmap == k)
    return _sn_of(ys, xs, flux, var, sky)


def _sn_of(ys, xs, flux, var, sky):
    from sedmap.binning import NoiseModel

    noise = NoiseModel(sky_err=sky, n_band=flux.shape[0])
    v = noise.sum_variance(ys, xs, noise.own_sigma(var[:, ys, xs]).T)
    return flux[:, ys, xs].sum(axis=1) / np.sqrt(v)


def progress(sn, thr=10.0):
    return np.minimum(sn / thr, 1.0).mean()


@pytest.mark.parametrize("method", ["sed", "voronoi"])
def test_every_pixel_binned_in_contiguous_bins_between_floor_and_cap(method):
    """Floor 12 px, cap 150 px: every region pixel is in a bin, every bin is one
    piece of at least 12 pixels and, but for pieces under 12 pixels that
    joined it, at most 150; the leftover outskirts are several bins flagged
    LOW_SNR, exactly those that miss S/N 10 (one bin before this rule)."""
    flux, var, region, sky = sky_limited_cube()
    binmap, flag = bin_both(method, flux, var, region, sky, min_npix=12, max_npix=150)
    assert np.all(binmap[region] > 0) and np.all(binmap[~region] == 0)
    assert contiguous(binmap, connectivity=1 if method == "sed" else 2)
    npix = np.bincount(binmap.ravel())[1:]
    assert npix.min() >= 12
    assert npix.max() <= 150 + 11
    low = (flag & FLAG_LOW_SNR) > 0
    assert low.sum() >= 3
    snr = np.array([bin_sn(binmap, k, flux, var, sky) for k in range(1, binmap.max() + 1)])
    band = slice(None) if method == "sed" else slice(0, 1)
    np.testing.assert_array_equal(low, ~np.all(snr[:, band] >= 10.0, axis=1))


@pytest.mark.parametrize("method", ["sed", "voronoi"])
def test_psf_floor_and_old_behaviour_without_it(method):
    """The floor is one PSF area (psf_area_pixels): no bin is smaller; without it
    (d_min 0) the bright centre is binned in bins of a few pixels."""
    from sedmap.binning import psf_area_pixels

    flux, var, region, sky = sky_limited_cube(sky=0.05)
    area = psf_area_pixels(4.0, 1.0)     # FWHM 4 pixels: 12.6 pixels
    with_floor, _ = bin_both(method, flux, var, region, sky, min_npix=area, max_npix=25 * area)
    without, _ = bin_both(method, flux, var, region, sky, min_npix=0, max_npix=25 * area)
    assert np.bincount(with_floor.ravel())[1:].min() >= area
    assert np.bincount(without.ravel())[1:].min() < 4
    assert without.max() > 1.5 * with_floor.max()


@pytest.mark.parametrize("method", ["sed", "voronoi"])
def test_leftover_bins_cover_a_psf_area_even_without_a_floor(method):
    """With d_min 0 the complete bins may be single pixels, but a leftover bin
    covers one PSF area at least: the region's faint edge is not cut into bins of
    a pixel or two of sky; a separate speck of the region smaller than that, which
    touches no bin, stays unbinned."""
    flux, var, region, sky = sky_limited_cube()
    area = 12.6
    ny, nx = region.shape
    region = region.copy()
    speck = (1, 1)                       # one pixel far from the galaxy
    region[speck] = True
    base, bflag = bin_both(method, flux, var, region, sky, min_npix=0, max_npix=25 * area)
    binmap, flag = bin_both(method, flux, var, region, sky, min_npix=0, max_npix=25 * area,
                            leftover_min_npix=area)
    npix = np.bincount(binmap.ravel())[1:]
    low = (flag & FLAG_LOW_SNR) > 0
    assert low.any() and npix[low].min() >= area
    assert npix[~low].min() < 4                        # complete bins: no floor
    assert np.bincount(base.ravel())[1:][(bflag & FLAG_LOW_SNR) > 0].min() < area
    assert base[speck] > 0 and binmap[speck] == 0      # the speck: a bin before, now none
    assert np.all(binmap[region & (np.arange(nx)[None, :] > 3)] > 0)


def test_complete_bins_with_d_min_0_are_the_plain_growth():
    """d_min 0 keeps the old growth: without a floor or cap the complete bins are
    those of the plain piXedfit-like growth (test_sed_binning_matches_plain_growth
    covers the leftovers too); with the floor they differ."""
    flux, var, region, _ = mock_cube(n=40, noise=1.0, seed=3)
    var[0] *= 0.5
    ref, _ = _plain_sed_binning(flux, var, region, 12.0, d_min=0.0)
    new, _ = bin_sed_similarity(flux, var, region, sn_threshold=12.0, d_min=0.0, min_npix=0)
    np.testing.assert_array_equal(new, ref)
    floor, _ = bin_sed_similarity(flux, var, region, sn_threshold=12.0, d_min=0.0, min_npix=9)
    assert not np.array_equal(floor, ref)


@pytest.mark.parametrize("method", ["sed", "voronoi"])
def test_flagged_bins_reach_the_best_sn_they_can(method):
    """A LOW_SNR bin cannot do better by joining a neighbour within the cap: the
    pair would still miss S/N 10 and, the neighbour also short, would not come
    closer to it (mean over bands of min(S/N / 10, 1)) than either alone."""
    flux, var, region, sky = sky_limited_cube(seed=2)
    cap = 150
    binmap, flag = bin_both(method, flux, var, region, sky, min_npix=12, max_npix=cap)
    bands = slice(None) if method == "sed" else slice(0, 1)
    low = set((np.flatnonzero(flag & FLAG_LOW_SNR) + 1).tolist())
    assert low
    npix = np.bincount(binmap.ravel())
    checked = 0
    for k in sorted(low):
        ring = ndimage.binary_dilation(binmap == k, structure=_FOUR) & (binmap != k)
        for j in np.unique(binmap[ring & (binmap > 0)]).tolist():
            if npix[k] + npix[j] > cap:
                continue
            ys, xs = np.nonzero((binmap == k) | (binmap == j))
            sn = _sn_of(ys, xs, flux, var, sky)[bands]
            assert not np.all(sn >= 10.0)
            if j in low:
                alone = max(progress(bin_sn(binmap, k, flux, var, sky)[bands]),
                            progress(bin_sn(binmap, j, flux, var, sky)[bands]))
                assert progress(sn) <= alone + 1e-12
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("method", ["sed", "voronoi"])
def test_binning_is_deterministic(method):
    flux, var, region, sky = sky_limited_cube(seed=4)
    a = bin_both(method, flux, var, region, sky, min_npix=12, max_npix=150)
    b = bin_both(method, flux, var, region, sky, min_npix=12, max_npix=150)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()


def test_leftover_rule_on_a_map_with_no_complete_bin():
    """bin_leftovers alone (nothing complete): all pixels binned by accretion, each
    bin of 12-150 pixels, those short of S/N 10 flagged, and no two neighbouring
    short bins that would together do better within the cap (as above)."""
    from sedmap.binning import NoiseModel

    flux, var, region, sky = sky_limited_cube(seed=5)
    nb = flux.shape[0]
    binmap, flag = bin_leftovers(np.zeros(region.shape, np.int32), region, flux, var,
                                 np.full(nb, 10.0), np.ones(nb, bool),
                                 NoiseModel(sky_err=sky, n_band=nb), min_npix=12, max_npix=150)
    assert np.all(binmap[region] > 0)
    assert contiguous(binmap)
    npix = np.bincount(binmap.ravel())[1:]
    assert npix.min() >= 12 and npix.max() <= 162
    snr = np.array([bin_sn(binmap, k, flux, var, sky) for k in range(1, binmap.max() + 1)])
    np.testing.assert_array_equal(flag > 0, ~np.all(snr >= 10.0, axis=1))
    assert 0 < (flag > 0).sum() < flag.size


def test_size_limits_that_contradict_are_an_input_error():
    from sedmap.errors import InputError

    flux, var, region, _ = mock_cube(n=30)
    with pytest.raises(InputError, match="max_area"):
        bin_sed_similarity(flux, var, region, min_npix=20, max_npix=10)


def test_large_bin_fraction():
    from sedmap.binning import large_bin_fraction

    binmap = np.zeros((10, 10), int)
    binmap[:, :6] = 1          # 60 pixels
    binmap[:, 6:] = 2          # 40 pixels
    region = np.ones((10, 10), bool)
    assert large_bin_fraction(binmap, region, 1.0, 50.0) == pytest.approx(0.6)
    assert large_bin_fraction(binmap, region, 1.0, 60.0) == 0.0
