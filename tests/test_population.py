"""Population (empirical-Bayes) prior: the prior's centre estimated from all bins."""

import json

import numpy as np
import pytest
from scipy import stats

from sedmap.errors import InputError
from sedmap.fit.population import moved_priors, population_centres, reweight
from sedmap.fit.priors import Prior


def synthetic_bins(mu_true, form="student_t", n_bin=300, like_sigma=0.5, n_grid=20000, seed=0):
    """A 'grid' drawn from Student-t(0, 0.3, nu=2) (the draw density) and bins whose
    true values come from the prior's form (width 0.3) centred on mu_true, each
    measured with a Gaussian error like_sigma larger than that width (one bin
    alone is dominated by the prior). The weights are those of the prior centred
    on 0: likelihood x prior / draw density."""
    rng = np.random.default_rng(seed)
    grid = stats.t.rvs(2.0, loc=0.0, scale=0.3, size=n_grid, random_state=rng)
    grid = grid[np.abs(grid) < 3.0]
    dist = (stats.t(2.0, scale=0.3) if form == "student_t" else stats.norm(scale=0.3))
    truth = np.clip(mu_true + dist.rvs(size=n_bin, random_state=rng), -3, 3)
    obs = truth + rng.normal(0, like_sigma, n_bin)
    importance = dist.pdf(grid) / stats.t.pdf(grid, 2.0, scale=0.3)
    samples, weights = [], []
    for y in obs:
        w = np.exp(-0.5 * ((grid - y) / like_sigma) ** 2) * importance
        samples.append(grid[:, None])
        weights.append(w / w.sum())
    return samples, weights, truth


def test_population_centre_is_recovered_where_one_bin_follows_the_prior():
    prior = [Prior("r", -3.0, 3.0, "student_t", mu=0.0, sigma=0.3, nu=2.0)]
    samples, weights, truth = synthetic_bins(0.4)
    # one bin: its posterior mean moves less than halfway from the prior's centre
    means = np.array([np.sum(w * s[:, 0]) for s, w in zip(samples, weights)])
    assert np.median(means) < 0.25
    centres, n_iter = population_centres(samples, weights, prior, max_shift=2.0)
    assert abs(centres[0] - 0.4) < 0.06, centres
    assert n_iter < 200
    # the reweighted posteriors are centred on the truths
    post = np.array([np.sum(reweight(s, w, prior, centres) * s[:, 0])
                     for s, w in zip(samples, weights)])
    assert abs(np.median(post - truth)) < 0.05 < abs(np.median(means - truth))


def test_population_centre_stays_when_the_bins_agree_with_the_prior():
    prior = [Prior("r", -3.0, 3.0, "gaussian", mu=0.0, sigma=0.3)]
    samples, weights, _ = synthetic_bins(0.0, "gaussian", seed=1)
    centres, _ = population_centres(samples, weights, prior)
    assert abs(centres[0]) < 0.1  # 3 sigma of the estimate from 300 bins


def test_only_gaussian_and_student_t_priors_move():
    pri = [Prior("a", -1.0, 1.0), Prior("b", -3.0, 3.0, "gaussian", mu=0.0, sigma=0.3)]
    rng = np.random.default_rng(1)
    s = [np.column_stack([rng.uniform(-1, 1, 500), rng.normal(0.5, 0.1, 500)])]
    w = [np.full(500, 1 / 500)]
    centres, _ = population_centres(s, w, pri)
    # the centre would go to 0.5; it stops at one prior width (max_shift)
    assert np.isnan(centres[0]) and centres[1] == pytest.approx(0.3)
    assert population_centres(s, w, pri, max_shift=3.0)[0][1] > 0.4
    moved = moved_priors(pri, centres)
    assert list(moved) == ["b"] and moved["b"]["form"] == "gaussian"
    assert moved["b"]["sigma"] == 0.3 and moved["b"]["min"] == -3.0
    # unmoved centres leave the weights as they were
    np.testing.assert_allclose(reweight(s[0], w[0], pri, [np.nan, 0.0]), w[0])
    json.dumps(moved)  # serialisable as written to population_prior.json


def test_population_prior_needs_bins():
    with pytest.raises(InputError, match="population_prior"):
        population_centres([], [], [Prior("r", -1, 1, "gaussian", mu=0.0, sigma=0.3)])
