"""The A/B report: sample-ratio mismatch, significance, and promotion only when always-valid."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from keel.core.errors import InvalidInputError
from keel.deploy.judge import ArmObservations, JudgePolicy, MetricSpec, ab_report
from keel.deploy.judge.ab import holm

POLICY = JudgePolicy((MetricSpec("feedback_negative", "proportion", "increase"),))


def arms(a: tuple[int, int], b: tuple[int, int]) -> dict[str, ArmObservations]:
    return {
        "A": ArmObservations(events={"feedback_negative": a}),
        "B": ArmObservations(events={"feedback_negative": b}),
    }


def test_clearly_better_arm_is_safe_to_promote() -> None:
    report = ab_report(arms((2000, 10000), (1500, 10000)), {"A": 50, "B": 50}, POLICY)
    assert report.safe_to_promote and report.promote_arm == "B"
    comparison = report.comparison("B", "feedback_negative")
    assert comparison.sequential == "better" and comparison.always_valid_p < 0.02
    assert comparison.cs_low <= comparison.mean_difference <= comparison.cs_high
    assert report.recommendation.startswith("promote B")
    json.dumps(report.to_dict())


def test_worse_arm_keeps_the_control() -> None:
    report = ab_report(arms((1500, 10000), (2000, 10000)), {"A": 50, "B": 50}, POLICY)
    assert not report.safe_to_promote
    assert "keep A" in report.recommendation


def test_fixed_horizon_significance_alone_never_promotes() -> None:
    # p of the fixed-horizon test is about 0.01, below alpha, but one look at n = 5,000 is
    # not enough evidence for the always-valid test.
    report = ab_report(arms((1000, 5000), (900, 5000)), {"A": 50, "B": 50}, POLICY, alpha=0.05)
    comparison = report.comparison("B", "feedback_negative")
    assert comparison.significant
    assert comparison.sequential == "inconclusive"
    assert not report.safe_to_promote
    assert "not valid under repeated looks" in report.recommendation


def test_sample_ratio_mismatch_blocks_everything() -> None:
    report = ab_report(arms((2000, 10000), (1000, 8000)), {"A": 50, "B": 50}, POLICY)
    assert report.sample_ratio.flagged
    assert not report.safe_to_promote
    assert "sample ratio mismatch" in report.recommendation


def test_arms_must_match_the_split() -> None:
    with pytest.raises(InvalidInputError, match="do not match"):
        ab_report(arms((1, 10), (1, 10)), {"A": 50, "C": 50}, POLICY)


def three(control: tuple[int, int], b: tuple[int, int], c: tuple[int, int]) -> dict[str, Any]:
    return {
        name: ArmObservations(events={"feedback_negative": pair}, requests=pair[1])
        for name, pair in (("A", control), ("B", b), ("C", c))
    }


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.2, float("nan")]) == pytest.approx([0.4, 1.0])


def test_n_arms_each_against_the_control_with_holm() -> None:
    split = {"A": 34, "B": 33, "C": 33}
    report = ab_report(three((2000, 10200), (1500, 9900), (2050, 9900)), split, POLICY)
    assert report.arms == ("A", "B", "C") and not report.sample_ratio.flagged
    better, same = (
        report.comparison("B", "feedback_negative"),
        report.comparison("C", "feedback_negative"),
    )
    for c in (better, same):
        assert c.p_adjusted is not None and c.p_adjusted >= c.p_value
        assert c.always_valid_p_adjusted is not None
        assert c.always_valid_p_adjusted >= (c.always_valid_p or 0)
    assert better.sequential == "better" and same.sequential == "inconclusive"
    assert report.safe_to_promote and report.promote_arm == "B"
    json.dumps(report.to_dict())


def test_holm_withholds_a_win_that_one_arm_alone_would_claim() -> None:
    # B alone clears the always-valid threshold, but not once corrected for 5 arms
    names = ["A", "B", "C", "D", "E"]
    obs = {"A": (2000, 10000), "B": (1790, 10000)} | dict.fromkeys(names[2:], (2000, 10000))
    single = ab_report(
        {n: ArmObservations(events={"feedback_negative": obs[n]}) for n in ("A", "B")},
        {"A": 50, "B": 50},
        POLICY,
    )
    many = ab_report(
        {n: ArmObservations(events={"feedback_negative": obs[n]}) for n in names},
        dict.fromkeys(names, 20),
        POLICY,
    )
    assert single.comparison("B", "feedback_negative").sequential == "better"
    assert many.comparison("B", "feedback_negative").sequential == "inconclusive"
    assert not many.safe_to_promote


def test_n_arm_sample_ratio_mismatch() -> None:
    report = ab_report(
        three((2000, 10000), (2000, 10000), (1600, 8000)), {"A": 34, "B": 33, "C": 33}, POLICY
    )
    assert report.sample_ratio.flagged and len(report.sample_ratio.observed) == 3
    assert not report.safe_to_promote


def test_peeking_at_an_a_a_a_a_experiment_rarely_promotes() -> None:
    """Four identical arms read 20 times as traffic grows: promoting on any arm's
    fixed-horizon p-value would often pick a 'winner'; the report's Holm-corrected
    always-valid test almost never does."""
    rng = np.random.default_rng(23)
    names = ["A", "B", "C", "D"]
    runs, naive, promoted = 100, 0, 0
    for _ in range(runs):
        bad = rng.random((4, 8000)) < 0.2  # every arm: 20 % thumbs-down
        fixed_win = valid_win = False
        for n in range(400, 8001, 400):
            obs = {
                name: ArmObservations(events={"feedback_negative": (int(bad[i, :n].sum()), n)})
                for i, name in enumerate(names)
            }
            report = ab_report(obs, dict.fromkeys(names, 25), POLICY, alpha=0.05)
            fixed_win |= any(c.p_value < 0.05 and c.mean_difference < 0 for c in report.comparisons)
            valid_win |= report.safe_to_promote
        naive += fixed_win
        promoted += valid_win
    assert naive / runs > 0.2
    assert promoted / runs <= 0.05


def test_an_error_free_control_does_not_blind_the_always_valid_test() -> None:
    """A control with no bad events yet (rate 0) used to shrink the mixture to 0.001, so
    even a jump from 0 % to 40 % at a few hundred requests stayed 'inconclusive'."""
    report = ab_report(arms((0, 300), (120, 300)), {"A": 50, "B": 50}, POLICY)
    comparison = report.comparison("B", "feedback_negative")
    assert comparison.sequential == "worse" and comparison.always_valid_p < 0.01
    assert not report.safe_to_promote and "keep A" in report.recommendation


def test_peeking_at_a_rare_event_a_a_experiment_rarely_promotes() -> None:
    """The one-point floor of the mixture keeps peeking safe at low base rates too."""
    rng = np.random.default_rng(29)
    runs, promoted = 100, 0
    for _ in range(runs):
        bad = rng.random((2, 6000)) < 0.005
        win = False
        for n in range(200, 6001, 200):
            obs = {
                name: ArmObservations(events={"feedback_negative": (int(bad[i, :n].sum()), n)})
                for i, name in enumerate("AB")
            }
            win |= ab_report(obs, {"A": 50, "B": 50}, POLICY, alpha=0.05).safe_to_promote
        promoted += win
    assert promoted / runs <= 0.05
