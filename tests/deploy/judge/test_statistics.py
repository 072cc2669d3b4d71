"""The judge's statistics against scipy, brute force and published worked examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from keel.deploy.judge import sample_ratio_check
from keel.deploy.judge.paired import paired_test
from keel.deploy.judge.proportions import newcombe, two_proportion_p, wilson
from keel.deploy.judge.ranks import (
    hodges_lehmann,
    kth_difference,
    mann_whitney,
    shift_interval_rank,
    trim_outliers,
)

values = st.lists(st.integers(-20, 20).map(float), min_size=1, max_size=25)


@settings(max_examples=40)
@given(values, values, st.data())
def test_kth_difference_matches_brute_force(xs: list[float], ys: list[float], data) -> None:
    x, y = np.sort(np.array(xs)), np.array(ys)
    everything = np.sort(np.subtract.outer(y, x).ravel())
    k = data.draw(st.integers(1, everything.size))
    assert kth_difference(x, y, k) == everything[k - 1]


def test_kth_difference_on_large_samples_with_heavy_ties() -> None:
    rng = np.random.default_rng(4)
    x = np.sort(rng.integers(0, 4, 800).astype(float))
    y = rng.integers(0, 5, 800).astype(float)
    everything = np.sort(np.subtract.outer(y, x).ravel())
    for k in (1, 1000, everything.size // 3, everything.size // 2, everything.size):
        assert kth_difference(x, y, k) == everything[k - 1]


def test_hodges_lehmann_by_hand() -> None:
    # differences y - x: -1 0 1 1 2 3 3 4 5 -> median 2
    assert hodges_lehmann(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == 2.0
    rng = np.random.default_rng(1)
    x, y = rng.lognormal(0, 1, 301), rng.lognormal(0.2, 1, 200)
    assert hodges_lehmann(np.sort(x), y) == pytest.approx(np.median(np.subtract.outer(y, x)))


def test_interval_rank_matches_the_table_for_ten_and_ten() -> None:
    # Mann-Whitney critical value for m = n = 10 at alpha 0.05 (two-sided) is 23, so the
    # interval runs from the 24th to the 77th ordered difference.
    sd = (10 * 10 * 21 / 12) ** 0.5
    assert shift_interval_rank(10, 10, sd, 0.95) == 24


def test_shift_interval_covers_a_known_shift() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(150):
        x = rng.lognormal(6.5, 0.5, 60)
        y = rng.lognormal(6.5, 0.5, 50) + 40.0  # a pure location shift of +40
        test = mann_whitney(x, y, 0.9)
        covered += test.low <= 40.0 <= test.high
    assert 0.83 <= covered / 150 <= 0.97  # nominal 90 %


def test_mann_whitney_p_value_is_scipys() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, 80), rng.normal(0.5, 1, 90)
    expected = stats.mannwhitneyu(y, x, method="asymptotic").pvalue
    assert mann_whitney(x, y, 0.98).p_value == pytest.approx(expected)


def test_trim_outliers_drops_only_extremes() -> None:
    data = np.concatenate([np.linspace(100, 200, 200), [10_000.0]])
    trimmed = trim_outliers(data)
    assert 10_000.0 not in trimmed
    assert trimmed.size == 200


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 10, 0.0, 0.2775),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombes_table(successes: int, n: int, low: float, high: float) -> None:
    got = wilson(successes, n, 0.95)
    assert got == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize(
    ("a", "m", "b", "n", "low", "high"),
    [(56, 70, 48, 80, 0.0524, 0.3339), (9, 10, 3, 10, 0.1705, 0.8090)],
)
def test_newcombe_matches_the_published_examples(a, m, b, n, low, high) -> None:
    diff, got_low, got_high = newcombe(a, m, b, n, 0.95)
    assert diff == pytest.approx(a / m - b / n)
    assert (got_low, got_high) == pytest.approx((low, high), abs=1e-4)


def test_two_proportion_p_is_the_chi_square_test() -> None:
    table = [[60, 940], [35, 965]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert two_proportion_p(60, 1000, 35, 1000) == pytest.approx(expected)
    assert two_proportion_p(3, 40, 0, 40) == pytest.approx(
        stats.fisher_exact([[3, 37], [0, 40]]).pvalue
    )


def test_paired_test_is_wilcoxon_with_a_t_interval() -> None:
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(-0.05, 0.2, 150), 2)
    result = paired_test(d, 0.95)
    assert result.p_value == pytest.approx(
        stats.wilcoxon(d, zero_method="pratt", method="approx").pvalue
    )
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (result.low, result.high) == pytest.approx((ci.low, ci.high))


def test_sample_ratio_mismatch_by_hand() -> None:
    fine = sample_ratio_check({"a": 5000, "b": 5200}, {"a": 50, "b": 50})
    assert fine.chi2 == pytest.approx(2 * 100**2 / 5100)
    assert fine.p_value == pytest.approx(0.0477, abs=1e-3)
    assert not fine.flagged
    broken = sample_ratio_check({"a": 5000, "b": 5400}, {"a": 0.5, "b": 0.5})
    assert broken.chi2 == pytest.approx(2 * 200**2 / 5200)
    assert broken.flagged
    weighted = sample_ratio_check({"a": 900, "b": 100}, {"a": 90, "b": 10})
    assert weighted.chi2 == pytest.approx(0.0)
