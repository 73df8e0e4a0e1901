"""Population (empirical-Bayes) prior: the prior's centre and width estimated from all bins."""

import json

import numpy as np
import pytest
from scipy import stats

from sedmap.errors import InputError
from sedmap.fit.population import log_density, moved_priors, population_estimate, reweight
from sedmap.priors import Prior


def synthetic_bins(mu_true, form="student_t", n_bin=300, like_sigma=0.5, n_grid=20000, seed=0,
                   width=0.3):
    """A 'grid' drawn from Student-t(0, 0.3, nu=2) (the draw density) and bins whose
    true values come from the prior's form (of ``width``) centred on mu_true, each
    measured with a Gaussian error like_sigma larger than that width (one bin
    alone is dominated by the prior). The weights are those of the prior centred
    on 0: likelihood x prior / draw density."""
    rng = np.random.default_rng(seed)
    grid = stats.t.rvs(2.0, loc=0.0, scale=0.3, size=n_grid, random_state=rng)
    grid = grid[np.abs(grid) < 3.0]
    truth_dist = (stats.t(2.0, scale=width) if form == "student_t" else stats.norm(scale=width))
    truth = np.clip(mu_true + truth_dist.rvs(size=n_bin, random_state=rng), -3, 3)
    dist = (stats.t(2.0, scale=0.3) if form == "student_t" else stats.norm(scale=0.3))
    obs = truth + rng.normal(0, like_sigma, n_bin)
    importance = dist.pdf(grid) / stats.t.pdf(grid, 2.0, scale=0.3)
    samples, weights = [], []
    for y in obs:
        w = np.exp(-0.5 * ((grid - y) / like_sigma) ** 2) * importance
        samples.append(grid[:, None])
        weights.append(w / w.sum())
    return samples, weights, truth, obs


def test_population_centre_is_recovered_where_one_bin_follows_the_prior():
    prior = [Prior("r", -3.0, 3.0, "student_t", mu=0.0, sigma=0.3, nu=2.0)]
    samples, weights, truth, _ = synthetic_bins(0.4, n_grid=5000)
    # one bin: its posterior mean moves less than halfway from the prior's centre
    means = np.array([np.sum(w * s[:, 0]) for s, w in zip(samples, weights)])
    assert np.median(means) < 0.25
    centres, sigmas, n_iter, _ = population_estimate(samples, weights, prior, max_shift=2.0)
    assert abs(centres[0] - 0.4) < 0.06, centres
    assert sigmas[0] == 0.3  # widths stay unless asked for
    assert n_iter < 200
    # the reweighted posteriors are centred on the truths
    post = np.array([np.sum(reweight(s, w, prior, centres) * s[:, 0])
                     for s, w in zip(samples, weights)])
    assert abs(np.median(post - truth)) < 0.05 < abs(np.median(means - truth))


def test_population_centre_stays_when_the_bins_agree_with_the_prior():
    prior = [Prior("r", -3.0, 3.0, "gaussian", mu=0.0, sigma=0.3)]
    samples, weights, _, _ = synthetic_bins(0.0, "gaussian", seed=1)
    centres, _, _, _ = population_estimate(samples, weights, prior)
    assert abs(centres[0]) < 0.1  # 3 sigma of the estimate from 300 bins


def test_only_gaussian_and_student_t_priors_move():
    pri = [Prior("a", -1.0, 1.0), Prior("b", -3.0, 3.0, "gaussian", mu=0.0, sigma=0.3)]
    rng = np.random.default_rng(1)
    s = [np.column_stack([rng.uniform(-1, 1, 500), rng.normal(0.5, 0.1, 500)])]
    w = [np.full(500, 1 / 500)]
    centres, _, _, _ = population_estimate(s, w, pri)
    # the centre would go to 0.5; it stops at one prior width (max_shift)
    assert np.isnan(centres[0]) and centres[1] == pytest.approx(0.3)
    assert population_estimate(s, w, pri, max_shift=3.0)[0][1] > 0.4
    moved = moved_priors(pri, centres)
    assert list(moved) == ["b"] and moved["b"]["form"] == "gaussian"
    assert moved["b"]["sigma"] == 0.3 and moved["b"]["min"] == -3.0
    # unmoved centres leave the weights as they were
    np.testing.assert_allclose(reweight(s[0], w[0], pri, [np.nan, 0.0]), w[0])
    json.dumps(moved)  # serialisable as written to population_prior.json


def test_population_prior_needs_bins():
    with pytest.raises(InputError, match="population_prior"):
        population_estimate([], [], [Prior("r", -1, 1, "gaussian", mu=0.0, sigma=0.3)])


def test_population_width_is_recovered_and_calibrates_the_intervals():
    """1000 bins from a population 4x narrower than the prior, each measured with
    an error as large as the prior's width: under the configured prior their
    68% intervals cover 81% of the truths; the estimated population width is
    the exact (Gaussian) maximum-likelihood one, var(y) - error^2, and under it
    the intervals cover about 68%. Without normalising the prior on the shared
    grid, the grid's clumps put the width at 0.14."""
    prior = [Prior("r", -3.0, 3.0, "gaussian", mu=0.0, sigma=0.3)]
    samples, weights, truth, obs = synthetic_bins(0.1, "gaussian", n_bin=1000, like_sigma=0.3,
                                                  width=0.075, n_grid=2000, seed=3)
    grid = samples[0]
    glw = stats.norm.logpdf(grid[:, 0], 0, 0.3) - stats.t.logpdf(grid[:, 0], 2.0, scale=0.3)
    centres, sigmas, _, _ = population_estimate(samples, weights, prior, grid=grid,
                                             grid_log_weight=glw, widths=True, min_width=0.1)
    exact = np.sqrt(np.var(obs) - 0.3**2)
    assert abs(exact - 0.075) < 0.01
    assert sigmas[0] == pytest.approx(exact, abs=0.005), (sigmas, exact)
    assert centres[0] == pytest.approx(np.mean(obs), abs=0.01)

    def coverage(ws):
        hit = []
        for s, w, t in zip(samples, ws, truth):
            o = np.argsort(s[:, 0])
            lo, hi = np.interp([0.16, 0.84], np.cumsum(w[o]), s[o, 0])
            hit.append(lo <= t <= hi)
        return np.mean(hit)

    assert coverage(weights) > 0.78
    new = [reweight(s, w, prior, centres, sigmas) for s, w in zip(samples, weights)]
    assert 0.62 < coverage(new) < 0.74
    # the widths shrink no further than min_width of the configured ones
    _, floor, _, _ = population_estimate(samples[:100], weights[:100], prior, grid=grid,
                                      grid_log_weight=glw, widths=True, min_width=0.8)
    assert floor[0] == pytest.approx(0.24)
    assert moved_priors(prior, centres, sigmas)["r"]["sigma"] == pytest.approx(sigmas[0])


def test_log_density_is_normalised_on_its_range_with_its_gradient():
    mu, sig = np.array([0.9, 0.1]), np.array([0.2, 0.3])
    nu, lo, hi = np.array([np.inf, 2.0]), np.array([0.7, -1.0]), np.array([1.1, 3.0])
    for j in range(2):
        x = np.linspace(lo[j], hi[j], 40001)
        t = np.column_stack([x if i == j else np.full_like(x, mu[i]) for i in range(2)])
        other = log_density(t[:1], mu, sig, nu, lo, hi)[0] - log_density(
            t[:1, [j]], mu[[j]], sig[[j]], nu[[j]], lo[[j]], hi[[j]])[0]
        dens = np.exp(log_density(t, mu, sig, nu, lo, hi)[0] - other)
        assert np.trapezoid(dens, x) == pytest.approx(1.0, rel=1e-6)
    rng = np.random.default_rng(0)
    t = np.column_stack([rng.uniform(0.7, 1.1, 50), rng.uniform(-1.0, 3.0, 50)])
    lp, dmu, dls = log_density(t, mu, sig, nu, lo, hi, grad=True)
    for i in range(2):
        e = np.eye(2)[i] * 1e-6
        np.testing.assert_allclose((log_density(t, mu + e, sig, nu, lo, hi)[0] - lp) / 1e-6,
                                   dmu[:, i], atol=1e-4)
        np.testing.assert_allclose(
            (log_density(t, mu, sig * np.exp(e), nu, lo, hi)[0] - lp) / 1e-6, dls[:, i],
            atol=1e-4)


def test_population_covariance_is_recovered_and_narrows_calibrated_intervals():
    """Two parameters that move together across the bins (correlation 0.8, as
    a galaxy's age and metallicity follow radius), each bin measured with an
    error as large as the population's width. Estimated with ``covariance``,
    the population covariance is the exact (Gaussian) maximum-likelihood one,
    cov(y) - errors^2; the intervals stay calibrated (68%) but are narrower
    than with the widths alone, which cannot use the correlation (by as much as
    the Gaussian theory says)."""
    from sedmap.priors import Correlation

    rng = np.random.default_rng(4)
    mu_t, sig_t, rho, err, n_bin = np.array([0.1, -0.1]), 0.15, 0.8, 0.15, 400
    truth = rng.multivariate_normal(mu_t, sig_t**2 * np.array([[1.0, rho], [rho, 1.0]]), n_bin)
    obs = truth + rng.normal(0, err, truth.shape)
    grid = rng.normal(0, 0.3, (3000, 2))  # drawn from the priors: importance weights 1
    prior = [Prior(n, -3.0, 3.0, "gaussian", mu=0.0, sigma=0.3) for n in ("a", "b")]
    samples, weights = [], []
    for y in obs:  # each bin keeps its models within 4 sigma, like RDSPS's chi^2 cut
        chi2 = np.sum(((grid - y) / err) ** 2, axis=1)
        keep = chi2 < 16.0
        samples.append(grid[keep])
        weights.append(np.exp(-0.5 * chi2[keep]) / np.exp(-0.5 * chi2[keep]).sum())
    fits = {cov: population_estimate(samples, weights, prior, grid=grid, widths=True,
                                     min_width=0.1, covariance=cov) for cov in (False, True)}
    centres, sigmas, _, corr = fits[True]
    assert fits[False][3] is None and corr["names"] == ["a", "b"]
    pop = np.cov(obs.T) - err**2 * np.eye(2)  # the exact ML population covariance
    exact_rho = pop[0, 1] / np.sqrt(pop[0, 0] * pop[1, 1])
    assert abs(exact_rho - rho) < 0.1
    assert corr["matrix"][0, 1] == pytest.approx(exact_rho, abs=0.04), (corr, exact_rho)
    np.testing.assert_allclose(sigmas, np.sqrt(np.diag(pop)), atol=0.02)
    np.testing.assert_allclose(centres, obs.mean(axis=0), atol=0.02)

    def intervals(cen, sig, matrix):
        moved = [Prior(p.name, p.lo, p.hi, "gaussian", mu=c, sigma=s)
                 for p, c, s in zip(prior, cen, sig)]
        hit, half = [], []
        for s, w, t in zip(samples, weights, truth):
            lp = sum(p.logpdf(s[:, i]) - prior[i].logpdf(s[:, i]) for i, p in enumerate(moved))
            if matrix is not None:
                lp = lp + Correlation(moved, ["a", "b"], matrix).log_correction(s)
            wn = w * np.exp(lp - lp.max())
            o = np.argsort(s[:, 0])
            lo, hi = np.interp([0.16, 0.84], np.cumsum(wn[o]) / wn.sum(), s[o, 0])
            hit.append(lo <= t[0] <= hi)
            half.append(0.5 * (hi - lo))
        return np.mean(hit), np.mean(half)

    cov_ind, half_ind = intervals(fits[False][0], fits[False][1], None)
    cov_mvn, half_mvn = intervals(centres, sigmas, corr["matrix"])
    assert 0.6 < cov_ind < 0.76 and 0.6 < cov_mvn < 0.76, (cov_ind, cov_mvn)
    # Gaussian theory: marginal posterior widths 0.106 (independent priors) and
    # 0.095 (the correlated prior), a ratio of 0.90
    assert 0.85 < half_mvn / half_ind < 0.93, (half_mvn, half_ind)


def test_population_covariance_gradient_is_exact():
    from sedmap.fit.population import _Density

    rng = np.random.default_rng(0)
    dens = _Density(np.array([np.inf, np.inf, 3.0, np.inf]), [0, 1, 3])
    t, lw = rng.normal(size=(300, 4)), rng.normal(size=300)
    x = np.concatenate([0.3 * rng.normal(size=8), rng.normal(size=dens.n_corr)])
    _, g = dens.log_mean(t, lw, x)
    h = 1e-6
    num = [(dens.log_mean(t, lw, x + e)[0] - dens.log_mean(t, lw, x - e)[0]) / (2 * h)
           for e in h * np.eye(len(x))]
    np.testing.assert_allclose(g, num, atol=1e-7)


def test_correlated_priors_density_and_draws():
    from sedmap.priors import Correlation, correlation_from

    pri = [Prior("a", -1.0, 1.0, "gaussian", mu=0.1, sigma=0.3), Prior("u", 0.0, 1.0),
           Prior("b", -2.0, 0.8, "gaussian", mu=-0.2, sigma=0.5)]
    m = [[1.0, -0.7], [-0.7, 1.0]]
    corr = correlation_from(pri, {"a": {}, "correlation": {"names": ["a", "b"], "matrix": m}})
    x = np.random.default_rng(1).uniform(-1, 0.8, (50, 3))
    cov = np.outer([0.3, 0.5], [0.3, 0.5]) * np.array(m)
    ref = stats.multivariate_normal([0.1, -0.2], cov).logpdf(x[:, [0, 2]])
    mine = corr.log_correction(x) + pri[0].logpdf(x[:, 0]) + pri[2].logpdf(x[:, 2])
    np.testing.assert_allclose(mine - ref, (mine - ref)[0], atol=1e-10)  # up to a constant
    d = corr.sample(np.random.default_rng(2), 20000)
    assert np.all((d[:, 0] >= -1) & (d[:, 0] <= 1) & (d[:, 1] >= -2) & (d[:, 1] <= 0.8))
    assert np.corrcoef(d.T)[0, 1] == pytest.approx(-0.7, abs=0.03)  # little truncation
    ref = stats.multivariate_normal([0.1, -0.2], cov).rvs(40000, random_state=3)
    ref = ref[(np.abs(ref[:, 0]) <= 1) & (ref[:, 1] >= -2) & (ref[:, 1] <= 0.8)]
    np.testing.assert_allclose(d.mean(axis=0), ref.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(d.std(axis=0), ref.std(axis=0), rtol=0.03)
    assert correlation_from(pri, {"a": {}}) is None
    with pytest.raises(InputError, match="must be Gaussian"):
        Correlation(pri, ["a", "u"], m)
    with pytest.raises(InputError, match="positive definite"):
        Correlation(pri, ["a", "b"], [[1.0, 1.2], [1.2, 1.0]])
