"""The deployment model: parsing user input, the state machine, and sticky assignment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core.errors import ConflictError, InvalidInputError
from keel.deploy import model
from keel.deploy.model import Deployment, Plan, State, StickyKey, Strategy
from keel.deploy.router import RequestKeys, bucket, choose


def deployment(**changes: object) -> Deployment:
    now = datetime.now(UTC)
    base = Deployment(
        id="d1", pipeline="p", strategy=Strategy.CANARY, state=State.PENDING, stable="s" * 8,
        candidates=("c" * 8,), weights={"c" * 8: 0.0, "s" * 8: 100.0}, salt="salt",
        created_at=now, updated_at=now, step_started_at=now,
    )  # fmt: skip
    return model.dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("1h30m", 5400), ("500ms", 0.5), ("2d", 172800), ("45", 45)],
)
def test_durations(text: str, seconds: float) -> None:
    assert model.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "0s", "-5m", "10 minutes", "1x", "m10", "nan", "inf"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        model.parse_duration(text)
    assert info.value.code == "deployment_interval_invalid"


def test_steps() -> None:
    assert model.parse_steps("5,25,50,100") == (5, 25, 50, 100)
    for bad in ("5,25,50", "50,25,100", "0,100", "5,x,100", "5,5,100", "150"):
        with pytest.raises(InvalidInputError) as info:
            model.parse_steps(bad)
        assert info.value.code == "deployment_steps_invalid"


def test_sticky_keys() -> None:
    assert StickyKey.parse("header:X-User-ID") == StickyKey("header", "X-User-ID")
    assert StickyKey.parse("body:input.user") == StickyKey("body", "input.user")
    assert StickyKey.parse("key") == StickyKey("key")
    for bad in ("cookie:a", "header:", "body", "key:x"):
        with pytest.raises(InvalidInputError):
            StickyKey.parse(bad)
    keys = RequestKeys({"x-user-id": "u1"}, {"input": {"user": 7}}, "k1")
    assert keys.user_key(StickyKey.parse("header:X-User-ID")) == "u1"
    assert keys.user_key(StickyKey.parse("body:input.user")) == "7"
    assert keys.user_key(StickyKey.parse("body:input.missing")) is None
    assert keys.user_key(StickyKey.parse("key")) == "k1"


def test_plan_validation() -> None:
    assert Plan(("c",), Strategy.AB, split=(30,)).weights_for("s") == {"s": 70, "c": 30}
    assert Plan(("c",), Strategy.CANARY, steps=(10, 100)).weights_for("s") == {"s": 90, "c": 10}
    assert Plan(("c",), Strategy.SHADOW, mirror=20).weights_for("s") == {"s": 100, "c": 0}
    with pytest.raises(InvalidInputError):
        Plan(("c",), Strategy.SHADOW)  # a shadow that mirrors nothing
    with pytest.raises(InvalidInputError):
        Plan(("c",), Strategy.AB, split=(100,))
    with pytest.raises(InvalidInputError):
        Plan(("c",), interval_s=0)


def test_state_machine() -> None:
    now = datetime.now(UTC)
    started = model.start(deployment(), now, {"c" * 8: 5, "s" * 8: 95}, "go")
    assert started.state == State.PROGRESSING and started.candidate_weight == 5
    assert started.revision == 2
    paused = model.pause(started, now, "hold")
    with pytest.raises(ConflictError):
        model.pause(paused, now, "again")
    resumed = model.resume(paused, now, "go")
    promoted = model.promote(resumed, now, "good")
    assert promoted.state == State.PROMOTED and promoted.candidate_weight == 100
    assert not promoted.active
    with pytest.raises(ConflictError) as info:
        model.promote(promoted, now, "twice")
    assert info.value.code == "deployment_state_invalid"
    back = model.roll_back(promoted, now, "undo")
    assert back.state == State.ROLLED_BACK and back.weights[back.stable] == 100


def test_weights_must_sum_to_100_and_name_known_versions() -> None:
    d = deployment(state=State.PROGRESSING)
    assert model.check_weights(d, {d.candidate: 30, d.stable: 70}) == {
        d.candidate: 30,
        d.stable: 70,
    }
    for bad in ({d.candidate: 30, d.stable: 60}, {d.candidate: 130}, {"other": 100}):
        with pytest.raises(InvalidInputError) as info:
            model.check_weights(d, bad)
        assert info.value.code.startswith("deployment_weight")


@given(st.text(min_size=1), st.text(min_size=1), st.floats(0, 100), st.floats(0, 100))
def test_sticky_users_only_ever_move_onto_a_rising_candidate(
    salt: str, user: str, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    point = bucket(salt, user)
    assert 0 <= point < 100 and point == bucket(salt, user)
    before = choose((("cand", low), ("stable", 100 - low)), point)
    after = choose((("cand", high), ("stable", 100 - high)), point)
    if before == "cand":
        assert after == "cand"


def test_choose_never_picks_a_zero_weight_arm() -> None:
    arms = (("cand", 0.0), ("stable", 100.0))
    assert {choose(arms, p) for p in (0.0, 50.0, 99.999999)} == {"stable"}
    assert choose((("cand", 100.0), ("stable", 0.0)), 99.9999999) == "cand"
