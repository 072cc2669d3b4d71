"""The controller acting on shadow deployments, by simulation: scripted stable and
candidate behaviour feeds per-request observations (mirrored runs and paired scores) into
the controller's own decision path (``decision_of`` then ``shadow_move``) one check
interval at a time. A worse candidate (more errors, slower, a lower paired score, each
alone) is rolled back on its own; an identical one becomes ready, or with
``then="canary"`` a canary."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from keel.deploy.canary import Decision, Move
from keel.deploy.controller import decision_of, rollout_state, shadow_policy
from keel.deploy.judge import ArmObservations, RolloutAction, RolloutState, default_policy, judge
from keel.deploy.model import Deployment, State, Strategy
from keel.deploy.observe import ArmSample, Observed
from keel.deploy.shadow_round import shadow_move
from keel.settings import DeploySettings
from keel.store.deployments import Outcome

S, A, B = "s" * 16, "a" * 16, "b" * 16
START = 1_700_000_000.0
INTERVAL = 60.0
NODATA = judge(default_policy(), ArmObservations(), ArmObservations(), {})


@dataclass(frozen=True)
class Behaviour:
    error_rate: float = 0.01
    latency_factor: float = 1.0
    score_shift: float = 0.0


@dataclass
class Traffic:
    """Each interval: ``primary`` requests answered by stable, ``mirrored`` of them also run
    on every live candidate and scored (an item's difficulty is shared by both answers)."""

    candidates: dict[str, Behaviour]
    primary: int = 400
    mirrored: int = 150
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    changes: dict[int, dict[str, Behaviour]] = field(default_factory=dict)  # from interval i

    def outcome(self, role: str, version: str, b: Behaviour) -> Outcome:
        error = self.rng.random() < b.error_rate
        latency = self.rng.lognormvariate(6.7, 0.4) * b.latency_factor
        return Outcome("t", role, version, latency, error, guardrail=self.rng.random() < 0.02)

    def interval(self, observed: Observed, live: tuple[str, ...]) -> None:
        stable = Behaviour()
        for _ in range(self.primary):
            observed.baseline.add(self.outcome("stable", S, stable))
        for _ in range(self.mirrored):
            difficulty = self.rng.betavariate(6, 2)
            base = min(1.0, max(0.0, difficulty + self.rng.gauss(0, 0.08)))
            for version in live:
                b = self.candidates[version]
                observed.arms[version].add(self.outcome("shadow", version, b))
                score = difficulty + b.score_shift + self.rng.gauss(0, 0.08)
                observed.eval_scores[version].append(min(1.0, max(0.0, score)) - base)


def shadow(*candidates: str, then: str | None = None) -> Deployment:
    at = datetime.fromtimestamp(START, UTC)
    return Deployment(
        id="d1", pipeline="triage", strategy=Strategy.SHADOW, state=State.PROGRESSING,
        stable=S, candidates=candidates, weights={**dict.fromkeys(candidates, 0.0), S: 100.0},
        salt="salt", created_at=at, updated_at=at, step_started_at=at, steps=(10.0, 50.0, 100.0),
        interval_s=INTERVAL, mirror=50.0, evaluator="judge", min_samples=100, then=then,
    )  # fmt: skip


def run(
    deployment: Deployment, traffic: Traffic, rounds: int = 12
) -> tuple[Deployment, list[Move]]:
    """Check intervals until the shadow phase ends (or ``rounds`` pass)."""
    observed = Observed(
        ArmSample(),
        {v: ArmSample() for v in deployment.candidates},
        {v: [] for v in deployment.candidates},
    )
    moves = []
    policy = shadow_policy(deployment, DeploySettings())
    for index in range(1, rounds + 1):
        traffic.candidates |= traffic.changes.get(index, {})
        traffic.interval(observed, deployment.live)
        now = START + index * INTERVAL
        decisions = [
            decision_of(policy, v, rollout_state(deployment, v), observed, now)
            for v in deployment.live
        ]
        move = shadow_move(deployment, decisions, datetime.fromtimestamp(now, UTC))
        if move is not None:
            deployment = move.after
            moves.append(move)
        if deployment.state != State.PROGRESSING or deployment.strategy != Strategy.SHADOW:
            break
    return deployment, moves


def metric(move: Move, name: str) -> dict[str, object]:
    return next(m for m in move.evidence["judgement"]["metrics"] if m["name"] == name)


WORSE = {
    "error": Behaviour(error_rate=0.08),
    "latency_ms": Behaviour(latency_factor=1.5),
    "eval_score": Behaviour(score_shift=-0.15),
}


@pytest.mark.parametrize("name", sorted(WORSE))
def test_a_worse_shadow_candidate_is_rolled_back_on_its_own(name: str) -> None:
    final, moves = run(shadow(A), Traffic({A: WORSE[name]}))
    assert final.state == State.ROLLED_BACK and final.strategy == Strategy.SHADOW
    assert final.weights == {A: 0.0, S: 100.0}
    last = moves[-1]
    assert last.action == "rolled_back" and last.record
    found = metric(last, name)
    assert found["outcome"] == ("low" if name == "eval_score" else "high"), found
    assert "in shadow" in (final.reason or "")
    # the other metrics did not regress: only the scripted fault decided
    others = {m["name"]: m["outcome"] for m in last.evidence["judgement"]["metrics"]}
    assert all(o != "high" for n, o in others.items() if n not in (name, "eval_score"))


def test_an_identical_candidate_becomes_ready_once_and_waits_for_a_person() -> None:
    final, moves = run(shadow(A), Traffic({A: Behaviour()}), rounds=8)
    assert final.state == State.PROGRESSING and final.strategy == Strategy.SHADOW
    assert final.extra["ready"] == [A] and final.weights[S] == 100.0
    recorded = [m for m in moves if m.record]
    assert [m.action for m in recorded] == ["ready"]  # later passes are bookkeeping only
    ready = recorded[0]
    assert ready.evidence["judgement"]["verdict"] == "pass"
    assert "keel deploy promote triage" in (ready.after.reason or "")
    assert final.extra["rollouts"][A]["status"] == "progressing"  # still judged


def test_with_then_canary_an_identical_candidate_becomes_a_canary() -> None:
    final, moves = run(shadow(A, then="canary"), Traffic({A: Behaviour()}))
    assert final.strategy == Strategy.CANARY and final.state == State.PROGRESSING
    assert final.weights == {A: 10.0, S: 90.0}  # the first of the given steps
    assert final.step_index == 0 and "rollouts" not in final.extra
    last = moves[-1]
    assert last.action == "canary_started" and last.record
    assert last.evidence["judgement"]["verdict"] == "pass"
    assert final.revision > 1


def test_several_candidates_a_worse_one_leaves_and_the_other_becomes_a_canary() -> None:
    traffic = Traffic({A: Behaviour(error_rate=0.08), B: Behaviour()})
    final, moves = run(shadow(A, B, then="canary"), traffic)
    assert final.strategy == Strategy.CANARY
    assert final.retired == (A,) and final.live == (B,)
    assert final.weights == {A: 0.0, B: 5.0, S: 95.0}  # step 10 % shared as in a canary of two
    assert next(m.action for m in moves if m.record) == "candidate_rolled_back"
    assert moves[-1].action == "canary_started"
    assert set(moves[-1].evidence["candidates"]) <= {A, B}


def test_a_ready_candidate_that_turns_bad_is_still_rolled_back() -> None:
    """Ready after the second check; from the fourth interval half its runs fail."""
    traffic = Traffic({A: Behaviour()}, changes={4: {A: Behaviour(error_rate=0.5)}})
    final, moves = run(shadow(A), traffic)
    recorded = [m.action for m in moves if m.record]
    assert recorded == ["ready", "rolled_back"], recorded
    assert final.state == State.ROLLED_BACK and "ready" not in final.extra


def scripted(version: str, kind: str, checks: int = 1) -> Decision:
    """A candidate's check with a scripted action (the judgement itself is not read); a
    ``wait`` is a round with no check due, which leaves the state as it was."""
    before = RolloutState(started_at=START, step_started_at=START, checks=checks - 1)
    after = dataclasses.replace(before, checks=checks, last_check_at=START + checks)
    if kind == "wait":
        after = before
    elif kind == "promote":
        after = dataclasses.replace(after, status="promoted", passes_in_step=2)
    elif kind == "hold":
        after = dataclasses.replace(after, checks_failed=1)
    action = RolloutAction(kind, 1, f"{kind} said the judge", after)  # type: ignore[arg-type]
    return Decision(version, before, NODATA, action, {})


def test_a_hold_and_a_new_ready_in_one_round_record_the_hold_then_the_ready() -> None:
    now = datetime.fromtimestamp(START + 100, UTC)
    first = shadow_move(shadow(A, B), [scripted(A, "hold"), scripted(B, "promote")], now)
    assert first is not None and first.action == "held" and first.record
    assert first.evidence["candidate"] == A and (first.after.reason or "").startswith(A[:12])
    assert "ready" not in first.after.extra  # not yet recorded as ready
    second = shadow_move(first.after, [scripted(A, "wait", 2), scripted(B, "promote", 2)], now)
    assert second is not None and second.action == "ready" and second.record
    assert second.after.extra["ready"] == [B] and second.evidence["candidate"] == B
    between = shadow_move(second.after, [scripted(A, "wait", 2), scripted(B, "wait", 2)], now)
    assert between is None  # nothing learnt: B stays ready without a write
    held = shadow_move(second.after, [scripted(A, "wait", 3), scripted(B, "hold", 3)], now)
    assert held is not None and held.action == "held" and "ready" not in held.after.extra
