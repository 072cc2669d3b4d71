"""A canary with several candidates: each judged against stable on its own, a failing one
rolled back with its weight returned to stable, promotion only for a single clear winner."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from keel.deploy.canary import Decision, decide
from keel.deploy.judge import (
    ArmObservations,
    RolloutAction,
    RolloutState,
    default_policy,
    judge,
)
from keel.deploy.model import Deployment, State, Strategy

S, A, B = "s" * 8, "a" * 8, "b" * 8
STEPS = (10.0, 50.0, 100.0)
NODATA = judge(default_policy(), ArmObservations(), ArmObservations(), {})


def canary(**changes: object) -> Deployment:
    now = datetime.now(UTC)
    base = Deployment(
        id="d1", pipeline="p", strategy=Strategy.CANARY, state=State.PROGRESSING, stable=S,
        candidates=(A, B), weights={A: 5.0, B: 5.0, S: 90.0}, salt="salt", created_at=now,
        updated_at=now, step_started_at=now, steps=STEPS,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def decision(version: str, kind: str, step: int = 0, **state: object) -> Decision:
    before = RolloutState(step_index=step, started_at=1.0, step_started_at=1.0)
    after = dataclasses.replace(before, **state)  # type: ignore[arg-type]
    if kind == "rollback":
        after = dataclasses.replace(after, status="rolled_back")
    elif kind == "promote":
        after = dataclasses.replace(after, status="promoted", passes_in_step=2)
    elif kind == "advance":
        after = dataclasses.replace(after, step_index=step + 1, step_started_at=50.0)
    action = RolloutAction(kind, int(STEPS[after.step_index]), f"{kind} said the judge", after)  # type: ignore[arg-type]
    return Decision(version, before, NODATA, action, {"requests": 1})


def test_a_failing_candidate_is_rolled_back_alone_and_its_weight_returns_to_stable() -> None:
    move = decide(canary(), [decision(A, "rollback"), decision(B, "advance")])
    assert move is not None and move.record
    assert move.action == "candidate_rolled_back"
    after = move.after
    assert after.state == State.PROGRESSING and after.retired == (A,) and after.live == (B,)
    # B advanced to 50 % of the two candidates' lane share; A's 5 % went back to stable
    assert after.weights == {A: 0.0, B: 25.0, S: 75.0}
    assert move.evidence["candidate"] == A and set(move.evidence["candidates"]) == {A, B}


def test_every_candidate_failing_rolls_the_deployment_back() -> None:
    move = decide(canary(), [decision(A, "rollback"), decision(B, "rollback")])
    assert move is not None and move.action == "rolled_back"
    assert move.after.state == State.ROLLED_BACK and move.after.weights[S] == 100


def test_no_promotion_while_another_candidate_is_in_the_running() -> None:
    first = decide(canary(), [decision(A, "promote", 1), decision(B, "wait", 1)])
    assert first is not None and first.action == "awaiting_choice" and first.production is None
    after = first.after
    assert after.state == State.PROGRESSING
    assert after.extra["ready"] == [A]
    assert after.extra["rollouts"][A]["status"] == "progressing"  # still judged each check
    assert after.weights == {A: 25.0, B: 25.0, S: 50.0}
    # the same candidate ready again: bookkeeping only, no second history entry
    again = decide(after, [decision(A, "promote", 1), decision(B, "wait", 1, checks=1)])
    assert again is not None and again.action == "checked" and not again.record


def test_the_single_winner_is_promoted_when_the_other_fails() -> None:
    move = decide(canary(), [decision(A, "rollback", 1), decision(B, "promote", 1)])
    assert move is not None and move.action == "promoted" and move.production == B
    assert move.after.state == State.PROMOTED and move.after.winner == B
    assert move.after.retired == (A,)


def test_one_candidate_behaves_as_the_plain_canary() -> None:
    single = canary(candidates=(A,), weights={A: 10.0, S: 90.0})
    advanced = decide(single, [decision(A, "advance")])
    assert advanced is not None and advanced.action == "advanced"
    assert advanced.after.weights == {A: 50.0, S: 50.0}
    assert "candidates" not in advanced.evidence and "judgement" in advanced.evidence
    promoted = decide(single, [decision(A, "promote", 1)])
    assert promoted is not None and promoted.production == A
    assert decide(single, [decision(A, "wait")]) is None  # nothing learnt, nothing stored
