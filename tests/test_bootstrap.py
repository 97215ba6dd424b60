"""Group bootstrap: point estimates, known differences, coverage of a null difference."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_retrieval.bootstrap import bootstrap_ci, paired_bootstrap


def test_estimate_is_the_macro_mean_over_strata() -> None:
    values = np.array([1.0, 0.0, 0.5, np.nan, 1.0])
    strata = np.array(["de", "de", "en", "en", "zh"])
    ci = bootstrap_ci(values, groups=np.arange(5), strata=strata, resamples=200, seed=1)
    assert ci.estimate == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert ci.low <= ci.estimate <= ci.high
    assert ci.groups == 5 and ci.resamples == 200


def test_constant_values_give_a_zero_width_interval() -> None:
    ci = bootstrap_ci(np.full(50, 0.7), groups=np.arange(50) // 5, resamples=100)
    assert (ci.low, ci.estimate, ci.high) == pytest.approx((0.7, 0.7, 0.7))


def test_known_difference_is_found() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(300), 3)            # 300 parallel groups x 3 languages
    strata = np.tile(np.arange(3), 300)
    a = rng.uniform(0, 1, groups.size)
    b = np.clip(a + 0.1 + rng.normal(0, 0.05, groups.size), -1, 2)
    diff = paired_bootstrap(a, b, groups, strata, resamples=1000, seed=3)
    assert diff.difference == pytest.approx(0.1, abs=0.01)
    assert diff.low > 0.09 and diff.high < 0.11
    assert diff.p_value == pytest.approx(1 / 1001)
    assert diff.b - diff.a == pytest.approx(diff.difference)


def test_no_difference_ci_covers_zero_about_95_percent_of_seeds() -> None:
    covered = 0
    seeds = range(200)
    for seed in seeds:
        rng = np.random.default_rng(10_000 + seed)
        groups = np.repeat(np.arange(60), 2)
        shared = rng.uniform(0, 1, 60).repeat(2)     # queries of a group are correlated
        a = shared + rng.normal(0, 0.2, groups.size)
        b = shared + rng.normal(0, 0.2, groups.size)  # same distribution: true difference 0
        diff = paired_bootstrap(a, b, groups, resamples=300, seed=seed)
        covered += diff.low <= 0 <= diff.high
    assert 0.90 <= covered / len(seeds) <= 0.99


def test_same_seed_same_interval_and_shape_errors() -> None:
    values, groups = np.linspace(0, 1, 40), np.arange(40) // 4
    assert bootstrap_ci(values, groups, seed=5) == bootstrap_ci(values, groups, seed=5)
    with pytest.raises(ValueError, match="one entry per query"):
        bootstrap_ci(values, groups[:-1])
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap(values, values[:-1], groups)
