"""What a deployment is, and the moves its state machine allows. Pure: no I/O.

A deployment belongs to one pipeline (the endpoint callers name). It holds the ``stable``
version (what the ``production`` label pointed to when it started), 1..N ``candidates``
(see :mod:`keel.deploy.arms` for the limits), the traffic ``weights`` in percent per version
(they always sum to 100) and a strategy:

* ``canary``: each candidate's weight climbs through ``steps`` (shared evenly among the
  candidates) while the judge approves it against stable; a failing candidate is rolled
  back on its own (``retire``) and its weight returns to stable;
* ``ab``: a fixed split over every arm, sticky per user, judged by an A/B report;
* ``shadow``: every answer comes from stable; ``mirror`` percent of requests also run
  every candidate off the hot path, and each candidate's output is stored in a pair with
  stable's. The controller judges each candidate on that data: a failing one is rolled
  back (no longer mirrored), a passing one is marked ready; with ``then="canary"`` the
  ready candidates become a canary (``to_canary``);
* ``blue-green`` (one candidate only): it waits at weight 0 until ``promote`` switches all
  traffic.

States: pending → progressing → promoted | rolled_back, with paused ⇄ progressing. Only the
first three are *active*: an endpoint has at most one active deployment.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from keel.core.errors import ConflictError, InvalidInputError
from keel.deploy import arms


class Strategy(StrEnum):
    CANARY = "canary"
    AB = "ab"
    SHADOW = "shadow"
    BLUE_GREEN = "blue-green"


class State(StrEnum):
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


ACTIVE_STATES = frozenset({State.PENDING, State.PROGRESSING, State.PAUSED})
# What a shadow deployment turns into once its candidates pass (None: a person promotes).
FOLLOW_UPS = ("canary",)
DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)
_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class StickyKey:
    """Where a request's user key comes from: ``header:NAME``, ``body:a.b`` or ``key``."""

    source: Literal["header", "body", "key"]
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> StickyKey:
        source, _, name = text.strip().partition(":")
        if source == "key" and not name:
            return cls("key")
        if source in ("header", "body") and name.strip():
            return cls(source, name.strip())  # type: ignore[arg-type]
        raise InvalidInputError(
            f"sticky key {text!r} is not header:NAME, body:FIELD[.FIELD] or key",
            code="deployment_sticky_invalid",
        )

    def __str__(self) -> str:
        return f"{self.source}:{self.name}" if self.name else self.source


@dataclass(frozen=True, slots=True)
class Plan:
    """A deployment as requested, validated before anything is stored; ``weights_for``
    checks it against the stable version and gives the weights it starts with."""

    candidates: tuple[str, ...]
    strategy: Strategy = Strategy.CANARY
    steps: tuple[float, ...] = DEFAULT_STEPS
    interval_s: float = 600.0
    split: tuple[float, ...] | None = None  # ab: percents, see arms.split_weights
    weights: Mapping[str, float] | None = None  # ab: explicit percent per version
    mirror: float = 0.0  # percent of requests mirrored to every candidate
    sticky: StickyKey | None = None
    evaluator: str | None = None  # scores shadowed pairs (an eval evaluator spec)
    min_samples: int | None = None  # per arm and step, before the judge may act
    then: str | None = None  # shadow: "canary" starts a canary of the candidates that pass

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        found = (self.candidates,) if isinstance(self.candidates, str) else self.candidates
        object.__setattr__(self, "candidates", arms.check_candidates(None, found))
        if self.strategy == Strategy.BLUE_GREEN and len(self.candidates) > 1:
            raise InvalidInputError(
                f"blue-green switches all traffic to one version; {len(self.candidates)} "
                "candidates were given (use ab, canary or shadow to compare several)",
                code="deployment_strategy_invalid",
            )
        self._check_split()
        check_steps(self.steps)
        check_percent("mirror", self.mirror, allow_zero=self.strategy != Strategy.SHADOW)
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise InvalidInputError(
                f"interval must be a positive duration, got {self.interval_s}",
                code="deployment_interval_invalid",
            )
        if self.min_samples is not None and self.min_samples < 1:
            raise InvalidInputError("min_samples must be at least 1", code="min_samples_invalid")
        check_then(self.then, self.strategy)

    def _check_split(self) -> None:
        for what, value in (("split", self.split), ("weights", self.weights)):
            if value is not None and self.strategy != Strategy.AB:
                raise InvalidInputError(
                    f"{what} sets an A/B experiment's traffic; a {self.strategy.value} "
                    "deployment's weights follow its strategy (use --strategy ab)",
                    code=f"deployment_{what}_invalid",
                )
        if self.split is not None and self.weights is not None:
            raise InvalidInputError(
                "give the A/B traffic as split or as weights, not both",
                code="deployment_split_invalid",
            )
        if self.split is not None:
            object.__setattr__(self, "split", arms.parse_split(self.split))
            arms.split_weights("\x00stable", self.candidates, self.split)  # shape and sum

    def weights_for(self, stable: str) -> dict[str, float]:
        """The weights the deployment starts with (blue-green: the candidate idle at 0)."""
        candidates = arms.check_candidates(stable, self.candidates)
        if self.strategy == Strategy.CANARY:
            each = self.steps[0] / len(candidates)
            return {**dict.fromkeys(candidates, each), stable: 100.0 - self.steps[0]}
        if self.strategy != Strategy.AB:
            return {**dict.fromkeys(candidates, 0.0), stable: 100.0}
        if self.weights is None:
            return arms.split_weights(stable, candidates, self.split)
        weights = arms.check_weights(stable, candidates, self.weights)
        idle = [v[:12] for v, w in weights.items() if w <= 0]
        if idle:
            raise InvalidInputError(
                f"every A/B arm needs traffic; {', '.join(idle)} would get 0 %",
                code="deployment_weights_invalid",
            )
        return weights


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    pipeline: str
    strategy: Strategy
    state: State
    stable: str
    candidates: tuple[str, ...]
    weights: dict[str, float]  # version -> percent of primary traffic; sums to 100
    salt: str
    created_at: datetime
    updated_at: datetime
    step_started_at: datetime
    steps: tuple[float, ...] = DEFAULT_STEPS
    step_index: int = 0
    interval_s: float = 600.0
    mirror: float = 0.0
    sticky: StickyKey | None = None
    evaluator: str | None = None
    min_samples: int | None = None
    failed_checks: int = 0
    revision: int = 1
    created_by: str | None = None
    reason: str | None = None  # why it last changed
    extra: dict[str, Any] = field(default_factory=dict)
    retired: tuple[str, ...] = ()  # candidates rolled back on their own; weight 0 for good
    then: str | None = None  # shadow: what follows when its candidates pass (see Plan)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def candidate(self) -> str:
        """The first candidate: the only one of a one-candidate deployment."""
        return self.candidates[0]

    @property
    def live(self) -> tuple[str, ...]:
        """Candidates still in the running (not rolled back on their own)."""
        return tuple(c for c in self.candidates if c not in self.retired)

    @property
    def candidate_weight(self) -> float:
        return self.weights.get(self.candidate, 0.0)

    @property
    def winner(self) -> str | None:
        """The candidate a promotion sent all traffic to."""
        if self.state != State.PROMOTED:
            return None
        return max(self.candidates, key=lambda v: self.weights.get(v, 0.0))

    def arms(self) -> tuple[tuple[str, float], ...]:
        """(version, weight): the candidates in order, then stable (see router.choose)."""
        return (
            *((c, self.weights.get(c, 0.0)) for c in self.candidates),
            (self.stable, self.weights.get(self.stable, 0.0)),
        )

    def role_of(self, version: str) -> str:
        return "stable" if version == self.stable else "candidate"

    def resolve(self, version: str) -> str:
        """A candidate named in full or by a unique prefix."""
        found = [c for c in self.candidates if c == version] or [
            c for c in self.candidates if version and c.startswith(version)
        ]
        if len(found) != 1:
            listed = ", ".join(c[:12] for c in self.candidates)
            why = "matches several candidates" if found else "is not a candidate"
            raise InvalidInputError(
                f"{version!r} {why} of deployment {self.id} (candidates: {listed})",
                code="deployment_version_invalid",
            )
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "strategy": self.strategy.value,
            "state": self.state.value,
            "active": self.active,
            "stable": self.stable,
            "candidate": self.candidate,
            "candidates": list(self.candidates),
            "retired": list(self.retired),
            "weights": dict(self.weights),
            "steps": list(self.steps),
            "step_index": self.step_index,
            "step_started_at": self.step_started_at.isoformat(),
            "interval_s": self.interval_s,
            "mirror": self.mirror,
            "sticky": str(self.sticky) if self.sticky else None,
            "evaluator": self.evaluator,
            "min_samples": self.min_samples,
            "then": self.then,
            "ready": list(self.extra.get("ready", [])),
            "failed_checks": self.failed_checks,
            "revision": self.revision,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by,
            "reason": self.reason,
        }


def check_percent(
    what: str,
    value: float,
    *,
    allow_zero: bool = True,
    allow_full: bool = True,
    code: str | None = None,
) -> None:
    low_ok = value > 0 or (allow_zero and value == 0)
    high_ok = value < 100 or (allow_full and value == 100)
    if not (math.isfinite(value) and low_ok and high_ok):
        lo = "0" if allow_zero else "above 0"
        hi = "100" if allow_full else "below 100"
        raise InvalidInputError(
            f"{what} must be a percentage from {lo} to {hi}, got {value}",
            code=code or f"deployment_{what}_invalid",
        )


def check_then(then: str | None, strategy: Strategy) -> None:
    """The follow-up of a shadow deployment: none (a person promotes) or ``canary``."""
    if then is None:
        return
    if then not in FOLLOW_UPS:
        raise InvalidInputError(
            f"then {then!r} is not a follow-up Keel knows; use then=canary (or leave it out "
            "and promote by hand)",
            code="deployment_then_invalid",
        )
    if strategy != Strategy.SHADOW:
        raise InvalidInputError(
            f"then={then} follows a shadow deployment whose candidates passed; a "
            f"{strategy.value} deployment has no such phase (use --strategy shadow)",
            code="deployment_then_invalid",
        )


def check_steps(steps: Sequence[float]) -> None:
    ok = bool(steps) and all(math.isfinite(s) and 0 < s <= 100 for s in steps)
    ok = ok and all(a < b for a, b in itertools.pairwise(steps)) and steps[-1] == 100
    if not ok:
        raise InvalidInputError(
            f"steps {list(steps)} must be increasing percentages above 0 ending at 100, "
            "e.g. 5,25,50,100",
            code="deployment_steps_invalid",
        )


def parse_steps(text: str) -> tuple[float, ...]:
    try:
        steps = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise InvalidInputError(
            f"steps {text!r} are not comma-separated numbers, e.g. 5,25,50,100",
            code="deployment_steps_invalid",
        ) from exc
    check_steps(steps)
    return steps


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``500ms``, ``30s``, ``10m``, ``1h30m``, ``2d`` or bare seconds → seconds (> 0)."""
    cleaned = text.strip().lower()
    seconds: float | None = None
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if parts and "".join(n + u for n, u in parts) == cleaned:
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInputError(
            f"duration {text!r} is not a positive duration such as 30s, 10m or 1h30m",
            code="deployment_interval_invalid",
        )
    return seconds


def check_weights(deployment: Deployment, weights: Mapping[str, float]) -> dict[str, float]:
    """Explicit weights for the deployment's versions: each 0..100, together exactly 100."""
    return arms.check_weights(
        deployment.stable, deployment.candidates, weights, retired=deployment.retired
    )


# --- transitions ------------------------------------------------------------------------


def _require(deployment: Deployment, allowed: set[State], action: str) -> None:
    if deployment.state not in allowed:
        states = ", ".join(sorted(s.value for s in allowed))
        raise ConflictError(
            f"cannot {action} deployment {deployment.id} of {deployment.pipeline}: it is "
            f"{deployment.state.value} (allowed from: {states})",
            code="deployment_state_invalid",
            state=deployment.state.value,
        )


def _moved(deployment: Deployment, now: datetime, reason: str, **changes: Any) -> Deployment:
    return dataclasses.replace(
        deployment, updated_at=now, revision=deployment.revision + 1, reason=reason, **changes
    )


def start(
    deployment: Deployment, now: datetime, weights: Mapping[str, float], reason: str
) -> Deployment:
    _require(deployment, {State.PENDING}, "start")
    checked = check_weights(deployment, weights)
    return _moved(
        deployment, now, reason, state=State.PROGRESSING, weights=checked, step_started_at=now
    )


def reweigh(
    deployment: Deployment, now: datetime, weights: Mapping[str, float], reason: str, **extra: Any
) -> Deployment:
    _require(deployment, set(ACTIVE_STATES), "change the weights of")
    return _moved(deployment, now, reason, weights=check_weights(deployment, weights), **extra)


def pick(deployment: Deployment, version: str | None, action: str) -> str:
    """The live candidate an action names; with none named, the only live one."""
    live = deployment.live
    if version is None:
        if len(live) == 1:
            return live[0]
        raise InvalidInputError(
            f"deployment {deployment.id} of {deployment.pipeline} has {len(live)} candidates "
            f"({', '.join(v[:12] for v in live)}); name the one to {action}: "
            f"keel deploy {action} {deployment.pipeline} VERSION",
            code="deployment_version_required",
        )
    found = deployment.resolve(version)
    if found in deployment.retired:
        raise InvalidInputError(
            f"candidate {found[:12]} was already rolled back in deployment {deployment.id}",
            code="deployment_version_invalid",
        )
    return found


def promote(
    deployment: Deployment, now: datetime, reason: str, version: str | None = None
) -> Deployment:
    _require(deployment, set(ACTIVE_STATES), "promote")
    winner = pick(deployment, version, "promote")
    weights = {v: 100.0 if v == winner else 0.0 for v, _ in deployment.arms()}
    return _moved(deployment, now, reason, state=State.PROMOTED, weights=weights)


def roll_back(deployment: Deployment, now: datetime, reason: str) -> Deployment:
    _require(deployment, {*ACTIVE_STATES, State.PROMOTED}, "roll back")
    weights = {v: 100.0 if v == deployment.stable else 0.0 for v, _ in deployment.arms()}
    return _moved(deployment, now, reason, state=State.ROLLED_BACK, weights=weights)


def retire(
    deployment: Deployment, now: datetime, version: str, reason: str, **changes: Any
) -> Deployment:
    """Roll back one candidate: its weight returns to stable and the others carry on. The
    last live candidate rolls the whole deployment back."""
    _require(deployment, set(ACTIVE_STATES), "roll back a candidate of")
    found = pick(deployment, version, "rollback")
    if deployment.live == (found,):
        return roll_back(deployment, now, reason)
    weights = dict(deployment.weights)
    weights[deployment.stable] = weights.get(deployment.stable, 0.0) + weights.get(found, 0.0)
    weights[found] = 0.0
    retired = (*deployment.retired, found)
    return _moved(deployment, now, reason, weights=weights, retired=retired, **changes)


def to_canary(deployment: Deployment, now: datetime, reason: str) -> Deployment:
    """A shadow deployment whose live candidates all passed becomes a canary of them: its
    first step starts now (shared evenly as a canary of all its candidates would), with a
    fresh rollout state; the shadow phase's mirror keeps feeding paired scores."""
    _require(deployment, {State.PROGRESSING}, "turn into a canary")
    if deployment.strategy != Strategy.SHADOW:
        raise ConflictError(
            f"deployment {deployment.id} is a {deployment.strategy.value} deployment, not a shadow",
            code="deployment_state_invalid",
            state=deployment.state.value,
        )
    each = deployment.steps[0] / len(deployment.candidates)
    weights = {v: (each if v in deployment.live else 0.0) for v in deployment.candidates}
    weights[deployment.stable] = 100.0 - sum(weights.values())
    extra = {k: v for k, v in deployment.extra.items() if k not in ("rollouts", "ready")}
    extra["shadow_ended_at"] = now.timestamp()
    checked = check_weights(deployment, weights)
    return _moved(
        deployment, now, reason, strategy=Strategy.CANARY, weights=checked, step_index=0,
        step_started_at=now, failed_checks=0, extra=extra,
    )  # fmt: skip


def pause(deployment: Deployment, now: datetime, reason: str) -> Deployment:
    _require(deployment, {State.PROGRESSING, State.PENDING}, "pause")
    return _moved(deployment, now, reason, state=State.PAUSED)


def resume(deployment: Deployment, now: datetime, reason: str) -> Deployment:
    _require(deployment, {State.PAUSED}, "resume")
    # The step starts afresh: observations from before the pause do not count toward it.
    return _moved(deployment, now, reason, state=State.PROGRESSING, step_started_at=now)
