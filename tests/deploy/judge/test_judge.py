"""Judging a canary: each metric kind, critical metrics, no-data rules and the evidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keel.core.errors import InvalidInputError
from keel.deploy.judge import (
    ArmObservations,
    JudgePolicy,
    MetricSpec,
    Verdict,
    default_policy,
    judge,
)

from .conftest import arm, pairs


def test_identical_candidate_passes_with_full_score() -> None:
    rng = np.random.default_rng(1)
    result = judge(default_policy(), arm(rng, 1500), arm(rng, 1500), pairs(rng, 300))
    assert result.verdict is Verdict.PASS
    assert result.score == 100.0
    assert {m.outcome for m in result.metrics if m.required} == {"pass"}
    assert result.metric("feedback_negative").outcome == "nodata"  # optional: no harm


def test_slower_candidate_fails_latency_and_is_marginal() -> None:
    rng = np.random.default_rng(2)
    result = judge(
        default_policy(), arm(rng, 1500), arm(rng, 1500, latency=1100.0), pairs(rng, 300)
    )
    latency = result.metric("latency_ms")
    assert latency.outcome == "high"
    assert latency.ci_low > 0 and latency.ratio > 1.1
    assert result.verdict is Verdict.MARGINAL


def test_faster_candidate_is_not_a_failure() -> None:
    rng = np.random.default_rng(3)
    result = judge(default_policy(), arm(rng, 1500), arm(rng, 1500, latency=500.0), pairs(rng, 300))
    assert result.metric("latency_ms").outcome == "pass"
    assert result.verdict is Verdict.PASS


def test_more_errors_fail_the_critical_metric_and_zero_the_score() -> None:
    rng = np.random.default_rng(4)
    result = judge(default_policy(), arm(rng, 1500), arm(rng, 1500, error=0.05), pairs(rng, 300))
    assert result.metric("error").outcome == "high"
    assert result.score == 0.0
    assert result.verdict is Verdict.FAIL
    assert "critical" in result.reason


def test_guardrail_trips_and_lower_paired_score_each_fail() -> None:
    rng = np.random.default_rng(5)
    tripped = judge(
        default_policy(), arm(rng, 1500), arm(rng, 1500, guardrail=0.06), pairs(rng, 300)
    )
    assert tripped.metric("guardrail_violation").outcome == "high"
    assert tripped.verdict is Verdict.FAIL
    worse = judge(default_policy(), arm(rng, 1500), arm(rng, 1500), pairs(rng, 300, -0.05))
    assert worse.metric("eval_score").outcome == "low"
    assert worse.verdict is Verdict.FAIL


def test_tiny_but_significant_shift_passes_the_allowed_ratio() -> None:
    rng = np.random.default_rng(6)
    base = ArmObservations(continuous={"latency_ms": 800 * rng.lognormal(0, 0.3, 40_000)})
    can = ArmObservations(continuous={"latency_ms": 830 * rng.lognormal(0, 0.3, 40_000)})
    policy = JudgePolicy((MetricSpec("latency_ms", "continuous", "increase"),))
    result = judge(policy, base, can)
    latency = result.metric("latency_ms")
    assert latency.ci_low > 0  # statistically significant ...
    assert latency.outcome == "pass"  # ... but within the allowed 10 % increase


def test_too_little_data_is_nodata_and_waits() -> None:
    rng = np.random.default_rng(7)
    result = judge(default_policy(), arm(rng, 1000), arm(rng, 30))
    assert result.verdict is Verdict.NODATA
    assert result.metric("latency_ms").outcome == "nodata"
    assert "too little data" in result.metric("error").reason


def test_absolute_cap_fails_even_when_the_baseline_is_as_bad() -> None:
    policy = JudgePolicy(
        (MetricSpec("error", "proportion", "increase", critical=True, max_rate=0.02),)
    )
    base = ArmObservations(events={"error": (50, 1000)})
    can = ArmObservations(events={"error": (52, 1000)})
    result = judge(policy, base, can)
    assert result.metric("error").outcome == "high"
    assert result.metric("error").cap_confirmed is False
    ok = judge(
        policy,
        ArmObservations(events={"error": (2, 2000)}),
        ArmObservations(events={"error": (3, 2000)}),
    )
    assert ok.metric("error").cap_confirmed is True
    assert ok.verdict is Verdict.PASS


def test_group_weights_shape_the_score() -> None:
    policy = JudgePolicy(
        (
            MetricSpec("a", "proportion", "increase", group="heavy"),
            MetricSpec("b", "proportion", "increase", group="light"),
        ),
        group_weights={"heavy": 3.0, "light": 1.0},
    )
    base = ArmObservations(events={"a": (10, 2000), "b": (10, 2000)})
    can = ArmObservations(events={"a": (10, 2000), "b": (200, 2000)})
    result = judge(policy, base, can)
    assert result.group_scores == {"heavy": 100.0, "light": 0.0}
    assert result.score == pytest.approx(75.0)
    assert result.verdict is Verdict.MARGINAL


def test_evidence_table_is_json() -> None:
    rng = np.random.default_rng(8)
    result = judge(default_policy(), arm(rng, 500), arm(rng, 500, error=0.08), pairs(rng, 100))
    table = json.loads(json.dumps(result.to_dict()))
    assert table["verdict"] == "fail"
    row = next(m for m in table["metrics"] if m["name"] == "error")
    assert row["outcome"] == "high" and row["ci_low"] > 0 and row["p_value"] < 0.01


@pytest.mark.parametrize(
    "build",
    [
        lambda: MetricSpec("x", "histogram", "increase"),  # type: ignore[arg-type]
        lambda: MetricSpec("x", "continuous", "up"),  # type: ignore[arg-type]
        lambda: MetricSpec("x", "continuous", "increase", max_rate=0.1),
        lambda: JudgePolicy(()),
        lambda: JudgePolicy((MetricSpec("x", "paired", "decrease"),), confidence=1.5),
        lambda: ArmObservations(events={"error": (5, 3)}),
    ],
)
def test_bad_policies_and_observations_are_refused(build) -> None:
    with pytest.raises(InvalidInputError) as caught:
        build()
    assert caught.value.code in ("deploy_policy_invalid", "deploy_observations_invalid")
