"""The statistics behind feedback: the Wilson interval of sampled-review accuracy against a
hand computation, and the anomalous-override test against scipy and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from keel.feedback.accuracy import estimate
from keel.feedback.overrides import assess_users, dispersion, holm, two_sided_p


def test_wilson_interval_matches_a_hand_computation() -> None:
    # 45 correct of 50 at 95 %: z = 1.959964, p = 0.9.
    z, n, p = 1.959963984540054, 50, 0.9
    denominator = 1 + z**2 / n  # 1.0768292
    centre = (p + z**2 / (2 * n)) / denominator  # 0.8714612
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator  # 0.0850596
    got = estimate("triage", None, 45, 50, target=0.95, window_hours=24)
    assert got.low == pytest.approx(centre - half, abs=1e-9)
    assert got.high == pytest.approx(centre + half, abs=1e-9)
    assert (round(got.low, 4), round(got.high, 4)) == (0.7864, 0.9565)
    # Written out with the numbers: [0.78640, 0.95652].
    assert got.status == "inconclusive" and not got.below_target


def test_status_rule() -> None:
    # Upper bound under the target: below target (the alert condition).
    low = estimate("p", None, 30, 50, target=0.8, window_hours=1)
    assert low.high is not None and low.high < 0.8
    assert low.below_target and low.status == "below_target"
    high = estimate("p", None, 199, 200, target=0.9, window_hours=1)
    assert high.low is not None and high.low >= 0.9 and high.status == "meets_target"
    nothing = estimate("p", None, 0, 0, target=0.9, window_hours=1)
    assert nothing.status == "no_data" and nothing.low is None and not nothing.below_target
    # Few samples never alert: 2 of 3 correct has an interval reaching past 0.9.
    assert estimate("p", None, 2, 3, target=0.9, window_hours=1).status == "inconclusive"


@pytest.mark.parametrize(
    ("k", "n", "p"), [(0, 20, 0.1), (7, 20, 0.1), (3, 40, 0.25), (40, 40, 0.6)]
)
def test_binomial_p_value_equals_scipy_binomtest(k: int, n: int, p: float) -> None:
    assert two_sided_p(k, n, p, 0.0) == pytest.approx(stats.binomtest(k, n, p).pvalue, rel=1e-9)


def test_beta_binomial_p_value_is_wider_than_binomial() -> None:
    assert two_sided_p(9, 30, 0.1, 0.05) > two_sided_p(9, 30, 0.1, 0.0)


def test_holm_against_a_hand_computation() -> None:
    # sorted 0.01, 0.02, 0.04 -> 3*0.01=0.03, max(0.03, 2*0.02=0.04)=0.04, max(0.04, 0.04)=0.04
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])


def test_dispersion_is_zero_for_binomial_counts_and_positive_for_mixed_rates() -> None:
    rng = np.random.default_rng(3)
    same = [(int(rng.binomial(200, 0.2)), 200) for _ in range(200)]
    assert dispersion(same, 0.2) < 0.01
    rates = rng.beta(2, 8, size=200)
    mixed = [(int(rng.binomial(200, r)), 200) for r in rates]
    rho = dispersion(mixed, float(sum(k for k, _ in mixed) / (200 * 200)))
    assert rho == pytest.approx(1 / (2 + 8 + 1), abs=0.03)  # beta(2, 8): rho = 1/(a+b+1)


def _population(rng: np.random.Generator, users: int = 40) -> dict[str, tuple[int, int]]:
    counts = {}
    for i in range(users):
        n = int(rng.integers(30, 120))
        rate = rng.beta(20, 180)  # users differ around 10 % (rho = 1/201)
        counts[f"user{i}"] = (int(rng.binomial(n, rate)), n)
    return counts


def test_a_prankster_and_a_rubber_stamper_are_reported() -> None:
    rng = np.random.default_rng(11)
    counts = _population(rng)
    counts["prankster"] = (45, 80)
    counts["stamper"] = (0, 400)
    counts["newcomer"] = (5, 6)  # too few judgements to test
    report = {row.user: row for row in assess_users(counts, min_decisions=20, alpha=0.01)}
    assert report["prankster"].anomalous and report["prankster"].direction == "high"
    assert report["stamper"].anomalous and report["stamper"].direction == "low"
    assert not report["newcomer"].tested and not report["newcomer"].anomalous
    flagged = {user for user, row in report.items() if row.anomalous}
    assert flagged == {"prankster", "stamper"}


def test_false_alarms_stay_rare_without_anomalies() -> None:
    rng = np.random.default_rng(5)
    runs, alarms = 200, 0
    for _ in range(runs):
        report = assess_users(_population(rng), min_decisions=20, alpha=0.05)
        alarms += any(row.anomalous for row in report)
    # Each user's p-value is calibrated; Holm keeps the family-wise rate near alpha (8.5 %
    # with this seed: the moment estimate of the dispersion adds some noise to the tails).
    assert alarms / runs <= 0.12, alarms
