"""Eval statistics against reference results and by simulation (seeded, a few hundred reps)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from keel.evals import stats as s

# --- reference results ------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 10), (7, 10), (10, 10), (1, 3), (481, 1000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    expected = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = s.wilson(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_hand_computed() -> None:
    # 8 of 10, z = 1.959964: centre (0.8 + 0.19208) / 1.38415, half-width 0.24116 / 1.38415
    low, high = s.wilson(8, 10)
    assert low == pytest.approx(0.4901624, abs=1e-6)
    assert high == pytest.approx(0.9433178, abs=1e-6)


def test_bca_matches_scipy_on_the_same_resamples() -> None:
    data = np.random.default_rng(3).exponential(size=30)
    ref = stats.bootstrap(
        (data,), np.mean, method="BCa", n_resamples=2000, rng=np.random.default_rng(s.SEED)
    ).confidence_interval
    assert s.bca_mean(data) == pytest.approx((ref.low, ref.high))


def test_estimate_clusters_trials_by_item() -> None:
    # Two items, three trials each: the mean is the mean of item means and n counts items.
    est = s.estimate([[1, 1, 0], [0, 0, 0], [1, 1, 1]], binary=True)
    assert est.mean == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert (est.n_items, est.n_trials, est.method) == (3, 9, "wilson-clustered")
    # clustering widens the interval compared with pretending the 9 trials were independent
    naive = s.wilson(5, 9)
    assert est.low is not None and est.high is not None
    assert est.high - est.low > naive[1] - naive[0]


def test_estimate_degenerate_cases() -> None:
    assert s.estimate([]).n_items == 0
    one = s.estimate([[0.4, 0.6]])
    assert one.mean == pytest.approx(0.5) and one.low is None
    flat = s.estimate([[0.7], [0.7], [0.7]])
    assert (flat.low, flat.high) == (pytest.approx(0.7), pytest.approx(0.7))


def test_pass_at_k_hand_computed() -> None:
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert s.pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # pass^k: C(2,2)/C(5,2) = 1/10
    assert s.pass_hat_k(5, 2, 2) == pytest.approx(0.1)
    assert s.pass_at_k(5, 0, 3) == 0.0 and s.pass_hat_k(5, 5, 3) == 1.0
    assert s.pass_at_k(4, 2, 1) == pytest.approx(0.5) == s.pass_hat_k(4, 2, 1)
    with pytest.raises(ValueError, match="1 <= k"):
        s.pass_at_k(3, 1, 4)


def test_mean_pass_k_over_items() -> None:
    at, hat = s.mean_pass_k([[1, 1, 1], [1, 0, 0], [0, 0, 0]], 2) or (0, 0)
    assert at == pytest.approx((1 + (1 - 1 / 3) + 0) / 3)
    assert hat == pytest.approx((1 + 0 + 0) / 3)
    assert s.mean_pass_k([[1]], 2) is None


def test_compare_detects_a_clear_drop_and_reports_effect_size() -> None:
    rng = np.random.default_rng(5)
    a = {str(i): [float(v)] for i, v in enumerate(rng.normal(0.8, 0.1, 60))}
    b = {k: [v[0] - 0.1 + rng.normal(0, 0.02)] for k, v in a.items()}
    result = s.compare(a, b)
    assert result.n_pairs == 60
    assert result.diff == pytest.approx(-0.1, abs=0.01)
    assert result.high is not None and result.high < 0
    assert result.p_value < 0.001 and result.significant()
    assert result.effect_size is not None and result.effect_size < -2


def test_compare_identical_runs_is_not_significant() -> None:
    a = {"x": [1.0, 0.0], "y": [1.0], "z": [0.5]}
    result = s.compare(a, dict(a))
    assert result.diff == 0 and result.p_value == 1.0 and not result.significant()


def test_compare_exact_sign_flip_p_value() -> None:
    # 6 pairs, every difference +1: of 2^6 sign patterns only all-plus and all-minus are as
    # extreme, so the exact two-sided p-value is 2/64.
    a = {str(i): [0.0] for i in range(6)}
    b = {str(i): [1.0] for i in range(6)}
    assert s.compare(a, b).p_value == pytest.approx(2 / 64)


def test_compare_uses_only_shared_items() -> None:
    result = s.compare({"a": [1.0], "b": [0.0]}, {"b": [1.0], "c": [1.0]})
    assert result.n_pairs == 1 and result.diff == 1.0


def test_holm_adjustment_hand_computed() -> None:
    # sorted: a 0.01*3 = 0.03; c 0.03*2 = 0.06; b max(0.06, 0.04*1) = 0.06
    assert s.holm({"a": 0.01, "b": 0.04, "c": 0.03}) == pytest.approx(
        {"a": 0.03, "b": 0.06, "c": 0.06}
    )
    assert s.holm({"x": 0.7, "y": 0.9}) == {"x": 1.0, "y": 1.0}
    assert s.holm({}) == {}


def test_sample_size_hint() -> None:
    # (1.959964 + 0.841621)^2 * (0.2 / 0.05)^2 = 125.6 -> 126
    assert s.sample_size(0.05, 0.2) == 126
    assert s.sample_size(0, 0.2) is None


# --- simulation ---------------------------------------------------------------------------------


def _coverage(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


def test_bca_interval_covers_the_true_mean_near_95_percent() -> None:
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(300):
        sample = rng.exponential(2.0, size=40)  # skewed, true mean 2
        low, high = s.bca_mean(sample, resamples=1000, seed=int(rng.integers(1 << 31)))
        hits.append(low <= 2.0 <= high)
    # 300 reps: binomial sd ~1.3 points; BCa runs a little narrow on skewed small samples
    assert 0.89 <= _coverage(hits) <= 0.99


def test_wilson_interval_covers_the_true_rate_near_95_percent() -> None:
    rng = np.random.default_rng(12)
    p, n = 0.8, 50
    hits = []
    for _ in range(1000):
        est = s.estimate([[float(v)] for v in rng.random(n) < p], binary=True)
        hits.append(est.low is not None and est.high is not None and est.low <= p <= est.high)
    assert 0.92 <= _coverage(hits) <= 0.98


def test_clustered_interval_covers_with_correlated_repeats() -> None:
    # Items differ in difficulty (item pass rate ~ Beta), 5 correlated trials each: a naive
    # interval over 200 trials would under-cover badly; the clustered one must not.
    rng = np.random.default_rng(13)
    alpha, beta = 2.0, 1.0
    truth = alpha / (alpha + beta)
    clustered, naive = [], []
    for _ in range(400):
        rates = rng.beta(alpha, beta, size=40)
        per_item = [[float(v) for v in rng.random(5) < r] for r in rates]
        est = s.estimate(per_item, binary=True)
        clustered.append(
            est.low is not None and est.high is not None and est.low <= truth <= est.high
        )
        flat = [v for g in per_item for v in g]
        lo, hi = s.wilson(sum(flat), len(flat))
        naive.append(lo <= truth <= hi)
    assert 0.91 <= _coverage(clustered) <= 0.99
    assert _coverage(naive) < _coverage(clustered) - 0.05


def test_paired_test_false_positive_rate_near_five_percent() -> None:
    rng = np.random.default_rng(14)
    rejections = []
    for _ in range(400):
        base = rng.normal(0.6, 0.2, size=30)  # shared item difficulty
        a = {str(i): [float(v + rng.normal(0, 0.1))] for i, v in enumerate(base)}
        b = {str(i): [float(v + rng.normal(0, 0.1))] for i, v in enumerate(base)}
        rejections.append(
            s.compare(a, b, resamples=999, seed=int(rng.integers(1 << 31))).significant()
        )
    rate = _coverage(rejections)
    assert 0.02 <= rate <= 0.085, rate


def test_paired_test_has_power_against_a_real_difference() -> None:
    rng = np.random.default_rng(15)
    rejections = []
    for _ in range(100):
        base = rng.normal(0.6, 0.2, size=30)
        a = {str(i): [float(v + rng.normal(0, 0.1))] for i, v in enumerate(base)}
        b = {str(i): [float(v - 0.1 + rng.normal(0, 0.1))] for i, v in enumerate(base)}
        rejections.append(
            s.compare(a, b, resamples=999, seed=int(rng.integers(1 << 31))).significant()
        )
    # sd of differences ~0.141, delta 0.1, n 30: power ~0.93
    assert _coverage(rejections) > 0.8
    assert not math.isnan(s.sample_size(0.1, 0.141) or math.nan)


def test_holm_keeps_the_family_false_alarm_rate_with_several_metrics() -> None:
    rng = np.random.default_rng(16)
    any_holm, any_naive = [], []
    for _ in range(200):
        p_values = {}
        for metric in ("m1", "m2", "m3"):  # three metrics, none really changed
            a = {str(i): [float(rng.normal())] for i in range(25)}
            b = {str(i): [float(rng.normal())] for i in range(25)}
            p_values[metric] = s.compare(
                a, b, resamples=499, seed=int(rng.integers(1 << 31))
            ).p_value
        any_naive.append(min(p_values.values()) < 0.05)
        any_holm.append(min(s.holm(p_values).values()) < 0.05)
    assert _coverage(any_holm) <= 0.085
    assert _coverage(any_naive) > _coverage(any_holm)
