"""Several candidates per deployment: validation of arms, splits and weights, the moves
that name a candidate, and sticky routing over n arms."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from keel.core.errors import InvalidInputError, KeelError
from keel.deploy import arms, model
from keel.deploy.model import Deployment, Plan, State, Strategy
from keel.deploy.router import bucket, choose

S, A, B, C = "s" * 8, "a" * 8, "b" * 8, "c" * 8


def deployment(*candidates: str, **changes: object) -> Deployment:
    now = datetime.now(UTC)
    found = candidates or (A, B)
    weights = {**dict.fromkeys(found, 20.0), S: 100.0 - 20.0 * len(found)}
    base = Deployment(
        id="d1", pipeline="p", strategy=Strategy.AB, state=State.PROGRESSING, stable=S,
        candidates=found, weights=weights, salt="salt", created_at=now, updated_at=now,
        step_started_at=now,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def code_of(call: object) -> str:
    with pytest.raises(KeelError) as info:
        call()  # type: ignore[operator]
    assert info.value.status < 500 and info.value.message
    return info.value.code


@pytest.mark.parametrize(
    ("candidates", "code"),
    [
        ((), "deployment_candidates_invalid"),
        ((A, B, A), "deployment_candidates_invalid"),
        (tuple(str(i) * 8 for i in range(8)), "deployment_candidates_invalid"),  # 9 arms
        ((A, S), "deployment_noop"),
    ],
)
def test_bad_candidate_lists_are_refused(candidates: tuple[str, ...], code: str) -> None:
    assert code_of(lambda: arms.check_candidates(S, candidates)) == code


def test_up_to_eight_arms_are_accepted() -> None:
    seven = tuple(str(i) * 8 for i in range(7))
    assert arms.check_candidates(S, seven) == seven
    weights = Plan(seven, Strategy.AB).weights_for(S)
    assert len(weights) == 8 and sum(weights.values()) == pytest.approx(100)


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        ("34,33,33", {S: 34, A: 33, B: 33}),  # stable first, then the candidates
        ("30,30", {S: 40, A: 30, B: 30}),  # the candidates' shares; stable gets the rest
        ([20, 50, 30], {S: 20, A: 50, B: 30}),
        (None, {S: 100 / 3, A: 100 / 3, B: 100 / 3}),
    ],
)
def test_split_forms(split: object, expected: dict[str, float]) -> None:
    parsed = None if split is None else arms.parse_split(split)  # type: ignore[arg-type]
    weights = arms.split_weights(S, (A, B), parsed)
    assert weights == pytest.approx(expected) and sum(weights.values()) == pytest.approx(100)


@pytest.mark.parametrize(
    "split", ["34", "50,50", "60,50", "50,50,0", "10,10,10,70", "x", "-5,50,55"]
)
def test_bad_splits_are_refused(split: str) -> None:
    def call() -> None:
        arms.split_weights(S, (A, B), arms.parse_split(split))

    assert code_of(call) == "deployment_split_invalid"


@pytest.mark.parametrize(
    "weights",
    [
        {S: 40, A: 30, B: 20},  # 90
        {S: 50, A: 60, B: -10},  # negative
        {S: 40, A: 30, B: 20, "x" * 8: 10},  # a version outside the deployment
        {S: 40, A: 130},
        {S: 40, A: 30, B: float("nan")},
    ],
)
def test_bad_weights_are_refused(weights: dict[str, float]) -> None:
    assert code_of(lambda: arms.check_weights(S, (A, B), weights)) == "deployment_weights_invalid"


def test_a_rolled_back_candidate_keeps_weight_zero() -> None:
    assert arms.check_weights(S, (A, B), {S: 60, A: 40}, retired=(B,)) == {S: 60, A: 40, B: 0}
    with pytest.raises(InvalidInputError) as info:
        arms.check_weights(S, (A, B), {S: 60, A: 30, B: 10}, retired=(B,))
    assert "rolled back" in info.value.message


def test_plan_per_strategy() -> None:
    canary = Plan((A, B), Strategy.CANARY, steps=(10, 50, 100)).weights_for(S)
    assert canary == {A: 5, B: 5, S: 90}  # a step is shared evenly by the candidates
    assert Plan((A, B), Strategy.SHADOW, mirror=10).weights_for(S) == {A: 0, B: 0, S: 100}
    ab = Plan((A, B), Strategy.AB, weights={S: 50, A: 25, B: 25}).weights_for(S)
    assert ab == {S: 50, A: 25, B: 25}
    refusals = {
        "deployment_strategy_invalid": lambda: Plan((A, B), Strategy.BLUE_GREEN),
        "deployment_split_invalid": lambda: Plan((A,), Strategy.CANARY, split=(50,)),
        "deployment_weights_invalid": lambda: Plan((A,), Strategy.SHADOW, weights={A: 100}),
    }
    for code, call in refusals.items():
        assert code_of(call) == code
    both = lambda: Plan((A,), Strategy.AB, split=(50,), weights={A: 50, S: 50})  # noqa: E731
    assert code_of(both) == "deployment_split_invalid"
    idle = Plan((A, B), Strategy.AB, weights={S: 50, A: 50})  # B would get no traffic
    assert code_of(lambda: idle.weights_for(S)) == "deployment_weights_invalid"
    assert code_of(lambda: Plan((A, B), Strategy.AB).weights_for(A)) == "deployment_noop"


def test_promote_and_rollback_name_a_candidate_when_several_are_live() -> None:
    now = datetime.now(UTC)
    d = deployment(A, B, C)
    assert code_of(lambda: model.promote(d, now, "go")) == "deployment_version_required"
    assert code_of(lambda: model.promote(d, now, "go", "f" * 8)) == "deployment_version_invalid"
    assert code_of(lambda: model.promote(d, now, "go", "")) == "deployment_version_invalid"
    one_less = model.retire(d, now, B, "worse")
    assert one_less.state == State.PROGRESSING and one_less.live == (A, C)
    assert one_less.weights == {A: 20, B: 0, C: 20, S: 60}  # B's share went back to stable
    assert code_of(lambda: model.promote(one_less, now, "go", B)) == "deployment_version_invalid"
    promoted = model.promote(one_less, now, "go", "cccc")  # a unique prefix
    assert promoted.winner == C and promoted.weights == {A: 0, B: 0, C: 100, S: 0}
    last = model.retire(model.retire(d, now, A, "x"), now, B, "x")
    ended = model.retire(last, now, C, "the last one")
    assert ended.state == State.ROLLED_BACK and ended.weights[S] == 100


@given(st.text(min_size=1), st.text(min_size=1), st.floats(0, 33), st.floats(0, 33))
def test_sticky_users_move_only_from_stable_onto_a_rising_candidate(
    salt: str, user: str, low: float, high: float
) -> None:
    """Three candidates in even lanes: B's weight rises, A and C stay put."""
    low, high = sorted((low, high))
    point = bucket(salt, user)
    before = choose(((A, 10.0), (B, low), (C, 20.0), (S, 70.0 - low)), point)
    after = choose(((A, 10.0), (B, high), (C, 20.0), (S, 70.0 - high)), point)
    assert before == after or (before == S and after == B)


@given(st.text(min_size=1), st.text(min_size=1))
def test_rolling_back_one_candidate_moves_only_its_users(salt: str, user: str) -> None:
    point = bucket(salt, user)
    before = choose(((A, 25.0), (B, 25.0), (C, 25.0), (S, 25.0)), point)
    after = choose(((A, 25.0), (B, 0.0), (C, 25.0), (S, 50.0)), point)
    assert before == after or (before == B and after == S)


@pytest.mark.parametrize(
    "weights",
    [
        {A: 33.0, B: 33.0, S: 34.0},  # lanes
        {A: 60.0, B: 10.0, S: 30.0},  # A exceeds its lane: laid end to end
        {A: 5.0, B: 5.0, C: 5.0, S: 85.0},
    ],
)
def test_sticky_and_random_proportions_over_n_arms(weights: dict[str, float]) -> None:
    arms_ = tuple(weights.items())
    rng = random.Random(11)
    users = 30_000
    sticky = Counter(choose(arms_, bucket("salt-1", f"user-{i}")) for i in range(users))
    drawn = Counter(choose(arms_, rng.random() * 100.0) for _ in range(users))
    expected = [w / 100 * users for w in weights.values()]
    for counts in (sticky, drawn):
        assert chisquare([counts[v] for v in weights], expected).pvalue > 0.001, counts
