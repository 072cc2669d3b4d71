"""The A/B report: sample-ratio mismatch, significance, and promotion only when always-valid."""

from __future__ import annotations

import json

import pytest

from keel.core.errors import InvalidInputError
from keel.deploy.judge import ArmObservations, JudgePolicy, MetricSpec, ab_report

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
