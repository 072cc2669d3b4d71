"""The rollout state machine: each transition and the asymmetry of evidence."""

from __future__ import annotations

import pytest

from keel.core.errors import InvalidInputError
from keel.deploy.judge import (
    Judgement,
    MetricResult,
    RolloutPolicy,
    RolloutState,
    Verdict,
    next_action,
)

POLICY = RolloutPolicy(steps=(10, 50, 100), interval_s=60, failed_check_budget=1)
SCORES = {Verdict.PASS: 100.0, Verdict.MARGINAL: 80.0, Verdict.FAIL: 0.0, Verdict.NODATA: 0.0}


def verdict(kind: Verdict, n_canary: int = 500, cap_confirmed: bool | None = None) -> Judgement:
    """A judgement as the judge would hand it over (the engine reads verdict and counts)."""
    metric = MetricResult(
        "error", "proportion", "pass", True, "reliability", 500, n_canary,
        cap_confirmed=cap_confirmed,
    )  # fmt: skip
    return Judgement(SCORES[kind], kind, (metric,), reason=f"judged {kind.value}")


def test_waits_until_a_check_is_due() -> None:
    state = RolloutState.start(0.0)
    action = next_action(POLICY, state, verdict(Verdict.PASS), now=30.0)
    assert action.kind == "wait" and action.weight == 10
    assert action.state == state


def test_fail_rolls_back_at_once_even_between_checks() -> None:
    action = next_action(POLICY, RolloutState.start(0.0), verdict(Verdict.FAIL), now=5.0)
    assert action.kind == "rollback" and action.weight == 0
    assert action.state.status == "rolled_back"


def test_passing_advances_then_needs_two_passes_to_promote() -> None:
    state = RolloutState.start(0.0)
    first = next_action(POLICY, state, verdict(Verdict.PASS), now=60.0)
    assert (first.kind, first.weight) == ("advance", 50)
    second = next_action(POLICY, first.state, verdict(Verdict.PASS), now=120.0)
    assert second.kind == "wait" and "1 of 2" in second.reason
    third = next_action(POLICY, second.state, verdict(Verdict.PASS), now=180.0)
    assert (third.kind, third.weight) == ("promote", 100)
    assert third.state.status == "promoted"
    with pytest.raises(InvalidInputError):
        next_action(POLICY, third.state, verdict(Verdict.PASS), now=240.0)


def test_marginal_holds_and_spends_the_budget_then_rolls_back() -> None:
    state = RolloutState.start(0.0)
    held = next_action(POLICY, state, verdict(Verdict.MARGINAL), now=60.0)
    assert held.kind == "hold" and held.weight == 10 and held.state.checks_failed == 1
    again = next_action(POLICY, held.state, verdict(Verdict.MARGINAL), now=120.0)
    assert again.kind == "rollback" and "budget" in again.reason


def test_a_marginal_check_resets_the_promotion_streak() -> None:
    policy = RolloutPolicy(steps=(50, 100), interval_s=60, failed_check_budget=3)
    state = next_action(policy, RolloutState.start(0.0), verdict(Verdict.PASS), 60.0).state
    state = next_action(policy, state, verdict(Verdict.MARGINAL), 120.0).state
    action = next_action(policy, state, verdict(Verdict.PASS), 180.0)
    assert action.kind == "wait"  # one pass after the marginal check is not enough


def test_nodata_waits_then_holds_then_rolls_back() -> None:
    policy = RolloutPolicy(
        steps=(5, 100), interval_s=60, failed_check_budget=1, max_nodata_checks=2
    )
    state = RolloutState.start(0.0)
    kinds = []
    for i in range(1, 5):
        action = next_action(policy, state, verdict(Verdict.NODATA), now=60.0 * i)
        kinds.append(action.kind)
        state = action.state
    assert kinds == ["wait", "wait", "hold", "rollback"]


def test_too_few_canary_requests_count_as_no_data() -> None:
    action = next_action(POLICY, RolloutState.start(0.0), verdict(Verdict.PASS, n_canary=10), 60.0)
    assert action.kind == "wait" and "needed" in action.reason


def test_promotion_needs_caps_shown_within_limits() -> None:
    policy = RolloutPolicy(steps=(50,), interval_s=60, promote_checks=1, failed_check_budget=0)
    unshown = verdict(Verdict.PASS, cap_confirmed=False)
    action = next_action(policy, RolloutState.start(0.0), unshown, 60.0)
    assert action.kind == "rollback" and "cap" in action.reason
    shown = verdict(Verdict.PASS, cap_confirmed=True)
    assert next_action(policy, RolloutState.start(0.0), shown, 60.0).kind == "promote"


def test_state_round_trips_through_a_dict() -> None:
    state = next_action(POLICY, RolloutState.start(0.0), verdict(Verdict.MARGINAL), 60.0).state
    assert RolloutState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize("steps", [(), (50, 25), (0, 50), (100,), (5, 150)])
def test_bad_steps_are_refused(steps: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInputError, match="step"):
        RolloutPolicy(steps=steps)


def test_promotion_waits_for_every_required_metric() -> None:
    """A configured evaluator's paired score with no pairs yet: the steps may climb on the
    other metrics, but the candidate is not promoted without that evidence."""
    policy = RolloutPolicy(steps=(50,), interval_s=60, promote_checks=1, failed_check_budget=0)
    error = MetricResult("error", "proportion", "pass", True, "reliability", 500, 500)
    unseen = MetricResult("eval_score", "paired", "nodata", False, "quality", 0, 0)
    passing = Judgement(100.0, Verdict.PASS, (error, unseen), reason="judged pass")
    action = next_action(policy, RolloutState.start(0.0), passing, 60.0)
    assert action.kind == "wait" and "eval_score" in action.reason
    optional = MetricResult(
        "feedback_negative", "proportion", "nodata", False, "quality", 0, 0, required=False
    )
    without_feedback = Judgement(100.0, Verdict.PASS, (error, optional), reason="judged pass")
    assert next_action(policy, RolloutState.start(0.0), without_feedback, 60.0).kind == "promote"
