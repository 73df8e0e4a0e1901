"""Maps stage and accuracy report."""

import numpy as np
import pytest
from astropy.wcs import WCS

from sedmap.accuracy import bin_truth, compare, redshift_truth
from sedmap.io import FitResult, read_map_set, write_map_set
from sedmap.maps import make_map_set


def result(k, logm, sfr, flag=0):
    pct = {"log_mstar": np.array([logm - 0.1, logm, logm + 0.1]),
           "log_sfr": np.array([sfr - 0.2, sfr, sfr + 0.2]),
           "av": np.array([0.2, 0.3, 0.4])}
    return FitResult(bin_id=k, method="rdsps", param_names=["a"], samples=np.zeros((2, 1)),
                     percentiles=pct, flag=flag)


@pytest.fixture
def setup():
    binmap = np.zeros((6, 6), np.int32)
    binmap[1:3, 1:5] = 1
    binmap[3:5, 1:5] = 2
    rng = np.random.default_rng(0)
    flux = rng.uniform(1, 2, (2, 6, 6))
    err = 0.05 * flux
    res = [result(1, 9.0, -1.0), result(2, 8.5, -1.5)]
    return binmap, flux, err, res


def test_pixel_maps_conserve_the_bin_totals(setup, tmp_path):
    from sedmap.images.grid import target_grid

    binmap, flux, err, res = setup
    ms = make_map_set("g", target_grid(10.0, 0.0, 1.5, 9.0)[0], binmap, res, flux, err,
                      ["sdss_z", "galex_nuv"])
    pix = ms.maps["LOG_MSTAR_PIX_P50"].data
    for k, logm in ((1, 9.0), (2, 8.5)):
        assert np.log10(np.sum(10 ** pix[binmap == k].astype(float))) == pytest.approx(logm,
                                                                                       abs=1e-5)
    # bin-space map repeats the bin value; pixel errors include the bin's error
    assert np.all(ms.maps["LOG_MSTAR_P50"].data[binmap == 2] == 8.5)
    width = ms.maps["LOG_MSTAR_PIX_P84"].data - ms.maps["LOG_MSTAR_PIX_P16"].data
    assert np.all(width[binmap > 0] > 0.2)
    assert np.isnan(pix[0, 0])
    assert ms.maps["LOG_MSTAR_PIX_P50"].space == "PIXEL"
    path = write_map_set(ms, tmp_path / "maps.fits")
    back = read_map_set(path)
    np.testing.assert_array_equal(back.maps["LOG_SFR_P50"].data, ms.maps["LOG_SFR_P50"].data)


def test_flagged_bins_are_nan(setup):
    binmap, flux, err, res = setup
    res[1] = result(2, 8.5, -1.5, flag=2)
    ms = make_map_set("g", WCS(naxis=2), binmap, res, flux, err, ["sdss_z", "galex_nuv"])
    assert np.all(np.isnan(ms.maps["LOG_MSTAR_P50"].data[binmap == 2]))
    assert np.all(ms.maps["FIT_FLAG"].data[binmap == 2] == 2)


def test_bin_truth_and_compare(setup):
    binmap, _, _, res = setup
    logm = np.full(binmap.shape, np.log10(1e9 / 8))  # 8 pixels per bin -> 1e9 per bin
    truth = bin_truth(binmap, {"LOG_MASS": logm, "LOG_SFR": logm - 10.0,
                               "AV": np.full(binmap.shape, 0.3)})
    np.testing.assert_allclose(truth["LOG_MASS"], [9.0, 9.0])
    rep = compare(truth, {1: res[0], 2: res[1]})
    assert rep["log_mass"]["bias"] == pytest.approx(-0.25)
    assert rep["log_mass"]["coverage68"] == pytest.approx(0.5)
    assert rep["av"]["scatter"] == pytest.approx(0.0, abs=1e-12)


def test_the_report_judges_a_free_redshift_and_leaves_a_held_one_out(setup):
    """Fits of a free redshift are compared with the mock's one z; fits that held it
    (no ``redshift`` percentiles, or all at one value) give no redshift entry."""
    binmap, _, _, res = setup
    truth = redshift_truth(2, 1.5)
    np.testing.assert_array_equal(truth["Z"], [1.5, 1.5])
    assert "redshift" not in compare(truth, {1: res[0], 2: res[1]})
    res[0].percentiles["redshift"] = np.array([1.44, 1.48, 1.52])
    res[1].percentiles["redshift"] = np.array([1.51, 1.53, 1.55])
    rep = compare(truth, {1: res[0]})
    assert rep["redshift"]["bias"] == pytest.approx(-0.02)
    assert rep["redshift"]["coverage68"] == 1.0
    res[0].percentiles["redshift"] = np.array([1.5, 1.5, 1.5])
    assert "redshift" not in compare(truth, {1: res[0]})


def test_bin_sfh_band_integrates_to_the_mass_formed(tmp_path):
    """The SFH plot's SFR(lookback) of each posterior sample integrates to that
    sample's mass formed, and the weighted band brackets the median."""
    from scipy.integrate import trapezoid

    from sedmap.plots import bin_sfh_samples, plot_bin_sfh
    from sedmap.sps import sfh

    rng = np.random.default_rng(3)
    n = 50
    names = ["log_age", *sfh.CONTINUITY_PARAMS, "log_mass_formed"]
    samples = np.column_stack([np.full(n, 1.0), rng.normal(0, 0.3, (n, 5)),
                               rng.normal(9.0, 0.1, n)])
    res = FitResult(bin_id=1, method="rdsps", param_names=names, samples=samples,
                    weights=rng.uniform(0, 1, n), percentiles={},
                    sfh={"name": "continuity", "young_gyr": [0.1]})
    look = np.concatenate([np.linspace(0, 0.1, 2001), np.geomspace(0.1, 10.0, 20001)[1:]])
    rate, w = bin_sfh_samples(res, look)
    mass = trapezoid(rate, look * 1e9, axis=1)
    assert np.all(np.diff(w) <= 0)    # the heaviest samples first
    np.testing.assert_allclose(mass, 10 ** samples[np.argsort(-res.weights, kind="stable"), -1],
                               rtol=2e-3)
    out = plot_bin_sfh(res, tmp_path / "sfh.png")
    assert out.stat().st_size > 1000


def test_bin_truth_weights_the_age_by_the_mass_formed():
    """Two pixels, one old (kept 55% of the mass it formed) and one young (90%):
    the bin's true age is the formed-mass-weighted one, as the fits define it;
    logZ stays weighted by the surviving mass; without LOG_MASS_FORMED the
    surviving mass weights the age too."""
    binmap = np.array([[1, 1]])
    surv = np.array([0.55, 0.9])
    mstar = np.array([1e9, 1e9])
    maps = {"LOG_MASS": np.log10(mstar)[None], "LOG_SFR": np.array([[-2.0, -1.0]]),
            "AGE_MW": np.array([[8.0, 1.0]]), "LOGZ": np.array([[0.1, -0.3]]),
            "AV": np.array([[0.2, 0.6]]), "LOG_MASS_FORMED": np.log10(mstar / surv)[None]}
    t = bin_truth(binmap, maps)
    mf = mstar / surv
    assert t["AGE_MW"][0] == pytest.approx((8.0 * mf[0] + 1.0 * mf[1]) / mf.sum())
    assert t["AGE_MW"][0] > 4.5 + 0.5    # the old pixel formed more
    assert t["LOGZ"][0] == pytest.approx(-0.1)
    assert t["LOG_SFR"][0] == pytest.approx(np.log10(0.01 + 0.1))
    del maps["LOG_MASS_FORMED"]
    assert bin_truth(binmap, maps)["AGE_MW"][0] == pytest.approx(4.5)


def test_pixel_maps_stay_finite_where_the_split_band_is_not_positive(setup):
    """Pixels with zero or negative flux in the split band (sky noise, a masked star)
    keep a finite share, within a few dex of the bin's mean pixel, and the bin's total
    stays exact; the floored pixels are flagged."""
    binmap, flux, err, res = setup
    flux = flux.copy()
    flux[0, 1, 1], flux[0, 1, 2], flux[0, 3, 3] = -0.5, 0.0, 1e-9  # band sdss_z
    ms = make_map_set("g", WCS(naxis=2), binmap, res, flux, err, ["sdss_z", "galex_nuv"],
                      split={"log_mstar": "sdss_z", "log_sfr": "galex_nuv"})
    inside = binmap > 0
    for suf in ("P16", "P50", "P84"):
        img = ms.maps[f"LOG_MSTAR_PIX_{suf}"].data
        assert np.all(np.isfinite(img[inside])), suf
        assert np.all(np.isnan(img[~inside]))
    p50 = ms.maps["LOG_MSTAR_PIX_P50"].data.astype(float)
    for k, logm in ((1, 9.0), (2, 8.5)):
        assert np.log10(np.sum(10 ** p50[binmap == k])) == pytest.approx(logm, abs=1e-5)
        mean = logm - np.log10(np.count_nonzero(binmap == k))
        assert np.all(np.abs(p50[binmap == k] - mean) < 2.0)
    floor = ms.maps["LOG_MSTAR_PIX_FLOOR"].data
    assert floor[1, 1] == floor[1, 2] == floor[3, 3] == 1
    assert np.nansum(floor) == 3
    width = (ms.maps["LOG_MSTAR_PIX_P84"].data - ms.maps["LOG_MSTAR_PIX_P16"].data)[inside]
    assert np.all(width < 10.0)


def test_constraint_maps_and_summary(setup, tmp_path):
    """NAME_CONSTRAINT = 1 - posterior/prior 68% width; the summary counts the fitted
    pixels whose bin reaches maps.constraint_min."""
    binmap, flux, err, res = setup
    res[0].prior_width = {"log_mstar": 1.0, "av": 0.2}  # mass: 0.2 of 1.0; av: as wide
    res[1].prior_width = {"log_mstar": 0.25, "av": 2.0}  # mass 0.2 of 0.25; av 0.2 of 2
    from sedmap.images.grid import target_grid

    ms = make_map_set("g", target_grid(10.0, 0.0, 1.5, 9.0)[0], binmap, res, flux, err,
                      ["sdss_z", "galex_nuv"], constraint_min=0.5)
    c = ms.maps["LOG_MSTAR_CONSTRAINT"].data
    assert c[binmap == 1] == pytest.approx(0.8) and c[binmap == 2] == pytest.approx(0.2)
    assert ms.maps["AV_CONSTRAINT"].data[binmap == 1] == pytest.approx(0.0, abs=1e-6)
    assert ms.maps["AV_CONSTRAINT"].data[binmap == 2] == pytest.approx(0.9)
    assert np.all(np.isnan(c[binmap == 0]))
    assert np.all(np.isnan(ms.maps["FIT_FLAG"].data[binmap == 0]))
    assert ms.summary["log_mstar"]["fraction"] == pytest.approx(0.5)  # 8 of 16 pixels
    assert ms.summary["log_mstar"]["bin_fraction"] == pytest.approx(0.5)  # 1 of 2 bins
    assert ms.summary["log_mstar"]["median"] == pytest.approx(0.5)
    assert ms.summary["av"]["fraction"] == pytest.approx(0.5)
    res[0].prior_width = {"log_mstar": 1.0}
    binmap = binmap.copy()
    binmap[1:3, 1:2] = 0    # bin 1: 6 pixels, bin 2: 8
    ms2 = make_map_set("g", WCS(naxis=2), binmap, res, flux, err, ["sdss_z", "galex_nuv"])
    assert ms2.summary["log_mstar"]["fraction"] == pytest.approx(6 / 14)
    # a posterior resting on ~1 grid model: its width measures nothing, the bin is not
    # counted as constrained (NaN), whatever its interval says
    res[1].prior_width = {"log_mstar": 1.0}
    res[1].weights, res[1].samples = np.array([1.0, 1e-6]), np.zeros((2, 1))
    assert res[1].effective_sample_size < 1.01
    ms3 = make_map_set("g", WCS(naxis=2), binmap, res, flux, err, ["sdss_z", "galex_nuv"])
    assert np.all(np.isnan(ms3.maps["LOG_MSTAR_CONSTRAINT"].data[binmap == 2]))
    assert ms3.maps["LOG_MSTAR_P50"].data[binmap == 2] == pytest.approx(8.5)
    assert ms3.summary["log_mstar"]["fraction"] == pytest.approx(6 / 14)
    back = read_map_set(write_map_set(ms, tmp_path / "maps.fits"))
    assert back.constraint_min == 0.5 and list(back.summary) == list(ms.summary)
    for name, value in ms.summary.items():
        assert back.summary[name] == pytest.approx(value, nan_ok=True)
    np.testing.assert_array_equal(back.maps["LOG_MSTAR_CONSTRAINT"].data, c)


def test_prior_widths_measure_what_the_data_add():
    """On a toy grid where the mass-to-light ratio in band 0 is a function of one
    parameter: at fixed band-0 flux the mass prior spans that parameter's range, and a
    parameter with no effect on the photometry keeps its full prior width."""
    from sedmap.fit.constraint import bin_prior_widths, constraint, prior_widths

    rng = np.random.default_rng(1)
    n = 20000
    params = np.column_stack([rng.uniform(0, 1, n), rng.uniform(0, 1, n)])
    derived = {"surviving_mass": np.full(n, 0.6), "sfr_100myr": np.full(n, 1e-10),
               "mass_weighted_age": 1 + params[:, 0], "dust_mass": np.full(n, np.nan)}
    phot = np.column_stack([10 ** (-params[:, 0]), np.ones(n)])  # M/L_0 = 10^p0
    inten, ext = prior_widths(params, ["p0", "p1"], derived, phot)
    assert inten["p1"] == pytest.approx(0.68, abs=0.02)
    assert inten["age_mw"] == pytest.approx(0.68, abs=0.02)
    assert ext["log_mstar"][0] == pytest.approx(0.68, abs=0.02)  # log M - log F_0 = p0 + c
    assert ext["log_mstar"][1] == pytest.approx(0.0, abs=1e-9)   # band 1 fixes the mass
    assert "log_mdust" not in ext
    w = bin_prior_widths(inten, ext, np.array([10.0, 1.0]), np.array([1.0, 1.0]))
    assert w["log_mstar"] == pytest.approx(ext["log_mstar"][0])  # band 0: the higher S/N
    c = constraint({"log_mstar": np.array([9.0, 9.1, 9.2]), "p1": np.array([0.2, 0.5, 0.8])},
                   w)
    assert c["log_mstar"] == pytest.approx(1 - 0.2 / w["log_mstar"])
    assert c["p1"] == pytest.approx(1 - 0.6 / inten["p1"])


def test_ess_and_autocorrelation_maps(setup):
    """ESS per bin (RDSPS: Kish's from the weights; MCMC: samples / max tau) and the
    MCMC bins' longest autocorrelation time."""
    binmap, flux, err, res = setup
    res[0].weights = np.array([0.5, 0.5])       # Kish: 2
    res[1].method, res[1].samples = "mcmc", np.zeros((600, 1))
    res[1].autocorr_time = np.array([20.0, np.nan, 30.0])
    ms = make_map_set("g", WCS(naxis=2), binmap, res, flux, err, ["sdss_z", "galex_nuv"])
    assert np.all(ms.maps["ESS"].data[binmap == 1] == 2.0)
    assert np.all(ms.maps["ESS"].data[binmap == 2] == 20.0)      # 600 / 30
    tau = ms.maps["MCMC_TAU_MAX"].data
    assert np.all(tau[binmap == 2] == 30.0) and np.all(np.isnan(tau[binmap != 2]))
    assert "MCMC_N_TAU" not in ms.maps  # a result without chain diagnostics
    res[1].n_tau, res[1].converged, res[1].ess = 38.0, 0, 1280.0
    ms = make_map_set("g", WCS(naxis=2), binmap, res, flux, err, ["sdss_z", "galex_nuv"])
    assert np.all(ms.maps["ESS"].data[binmap == 2] == 1280.0)   # the chain's, stored
    for key, value in (("MCMC_N_TAU", 38.0), ("MCMC_CONVERGED", 0.0)):
        m = ms.maps[key].data
        assert np.all(m[binmap == 2] == value) and np.all(np.isnan(m[binmap != 2]))
