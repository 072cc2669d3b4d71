"""What the judge compares: metric specs, the judging policy and one arm's observations.

Everything here is a frozen value checked on construction; a bad policy fails loudly with
an :class:`~keel.core.errors.InvalidInputError` whose message names the field to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from keel.core.errors import InvalidInputError

Values = Sequence[float] | NDArray[np.float64]
Kind = Literal["continuous", "proportion", "paired"]
Direction = Literal["increase", "decrease"]

KINDS: tuple[str, ...] = ("continuous", "proportion", "paired")
DIRECTIONS: tuple[str, ...] = ("increase", "decrease")
POLICY_ERROR = "deploy_policy_invalid"
DATA_ERROR = "deploy_observations_invalid"


def _policy_error(message: str) -> InvalidInputError:
    return InvalidInputError(message, code=POLICY_ERROR)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One per-request metric and how a change in it is judged.

    * ``continuous`` (latency, time to first token): Mann-Whitney U with the Hodges-Lehmann
      shift and its distribution-free interval; ``allowed_ratio`` is the ratio of means the
      canary may reach before it can fail.
    * ``proportion`` (errors, guardrail trips, negative feedback): Wilson interval per arm,
      Newcombe interval on the difference; ``max_rate`` caps the canary's rate and
      ``max_increase`` the absolute increase over the baseline.
    * ``paired`` (eval score on mirrored inputs): differences canary - baseline on the same
      input, Wilcoxon signed-rank test with an interval on the mean difference;
      ``min_effect`` is the absolute mean change tolerated.

    ``dead_zone`` is Kayenta's tolerance: the interval must clear ``dead_zone`` x |estimate|
    on the bad side, not just zero. ``required=False`` marks a metric whose absence (no
    feedback yet) must not count towards the no-data rule.
    """

    name: str
    kind: Kind
    bad_direction: Direction
    critical: bool = False
    group: str = "default"
    allowed_ratio: float = 1.1
    dead_zone: float = 0.25
    max_rate: float | None = None
    max_increase: float | None = None
    min_effect: float = 0.0
    min_samples: int = 50
    required: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise _policy_error("a metric needs a name")
        if self.kind not in KINDS:
            raise _policy_error(f"metric {self.name!r}: kind must be one of {', '.join(KINDS)}")
        if self.bad_direction not in DIRECTIONS:
            raise _policy_error(f"metric {self.name!r}: bad_direction must be increase or decrease")
        if not (math.isfinite(self.allowed_ratio) and self.allowed_ratio > 0):
            raise _policy_error(f"metric {self.name!r}: allowed_ratio must be a positive number")
        if not 0 <= self.dead_zone < 1:
            raise _policy_error(f"metric {self.name!r}: dead_zone must be in [0, 1)")
        if self.max_rate is not None and not 0 <= self.max_rate <= 1:
            raise _policy_error(f"metric {self.name!r}: max_rate must be a rate in [0, 1]")
        if self.max_increase is not None and not 0 <= self.max_increase <= 1:
            raise _policy_error(f"metric {self.name!r}: max_increase must be in [0, 1]")
        capped = self.max_rate is not None or self.max_increase is not None
        if capped and (self.kind != "proportion" or self.bad_direction != "increase"):
            raise _policy_error(
                f"metric {self.name!r}: max_rate and max_increase apply to proportions whose "
                "increase is bad"
            )
        if self.min_effect < 0:
            raise _policy_error(f"metric {self.name!r}: min_effect must be >= 0")
        if self.min_samples < 2:
            raise _policy_error(f"metric {self.name!r}: min_samples must be at least 2")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "bad_direction": self.bad_direction,
            "critical": self.critical,
            "group": self.group,
            "allowed_ratio": self.allowed_ratio,
            "dead_zone": self.dead_zone,
            "max_rate": self.max_rate,
            "max_increase": self.max_increase,
            "min_effect": self.min_effect,
            "min_samples": self.min_samples,
            "required": self.required,
        }


@dataclass(frozen=True, slots=True)
class JudgePolicy:
    """The metrics to judge and how their classifications become a score and a verdict.

    Group score = 100 x passing / counted metrics of the group; the overall score is the
    weighted mean of the group scores (groups without a weight weigh 1; groups with no
    counted metric drop out). ``confidence`` is two-sided, per metric and per check.
    """

    metrics: tuple[MetricSpec, ...]
    group_weights: Mapping[str, float] = field(default_factory=dict)
    pass_score: float = 95.0
    marginal_score: float = 75.0
    confidence: float = 0.98
    drop_outliers: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "group_weights", _frozen(self.group_weights))
        if not self.metrics:
            raise _policy_error("a judge policy needs at least one metric")
        names = [m.name for m in self.metrics]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise _policy_error(f"metric names must be unique; repeated: {', '.join(duplicates)}")
        for group, weight in self.group_weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise _policy_error(f"group weight for {group!r} must be a number >= 0")
        if not 0 <= self.marginal_score <= self.pass_score <= 100:
            raise _policy_error("scores must satisfy 0 <= marginal_score <= pass_score <= 100")
        if not 0.5 < self.confidence < 1:
            raise _policy_error("confidence must be in (0.5, 1), for example 0.98")

    def weight(self, group: str) -> float:
        return float(self.group_weights.get(group, 1.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self.metrics],
            "group_weights": dict(self.group_weights),
            "pass_score": self.pass_score,
            "marginal_score": self.marginal_score,
            "confidence": self.confidence,
            "drop_outliers": self.drop_outliers,
        }


@dataclass(frozen=True, slots=True)
class ArmObservations:
    """Per-request observations of one arm over the judged window.

    ``continuous`` maps a metric to its values (one per request); ``events`` maps a metric
    to ``(bad_count, total)``. ``requests`` is how many requests the arm was assigned (for
    the sample-ratio check); when omitted, the largest sample size seen is used.
    """

    continuous: Mapping[str, Values] = field(default_factory=dict)
    events: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    requests: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "continuous", _frozen(self.continuous))
        object.__setattr__(self, "events", _frozen(self.events))
        for name, pair in self.events.items():
            bad, total = pair
            if not (0 <= int(bad) <= int(total)):
                raise InvalidInputError(
                    f"events for {name!r} must be (bad_count, total) with 0 <= bad <= total; "
                    f"got {pair!r}",
                    code=DATA_ERROR,
                )
        if self.requests is not None and self.requests < 0:
            raise InvalidInputError("requests must be >= 0", code=DATA_ERROR)

    def size(self) -> int:
        """Requests assigned to the arm: ``requests`` or the largest sample it holds."""
        if self.requests is not None:
            return self.requests
        sizes = [len(v) for v in self.continuous.values()]
        sizes += [int(total) for _, total in self.events.values()]
        return max(sizes, default=0)


def default_policy() -> JudgePolicy:
    """Keel's per-request canary metrics with the tuned defaults (docs/canary-judge.md).

    Confidence is 0.99 rather than Kayenta's 0.98: a rollout looks at the data at every
    check of every step, and 0.99 keeps false rollbacks of an unchanged candidate well
    under 2 % while costing little power (measured by bench/deploy/simulate.py).
    Reliability (errors) is critical: a significant increase fails the canary outright.
    Safety and quality regressions weigh enough to fail a check on their own; a latency
    regression alone makes it marginal, which holds the rollout and spends the budget.
    """
    return JudgePolicy(
        metrics=(
            MetricSpec("latency_ms", "continuous", "increase", group="latency"),
            MetricSpec("ttft_ms", "continuous", "increase", group="latency"),
            MetricSpec("error", "proportion", "increase", critical=True, group="reliability"),
            MetricSpec("guardrail_violation", "proportion", "increase", group="safety"),
            MetricSpec("eval_score", "paired", "decrease", group="quality"),
            MetricSpec(
                "feedback_negative",
                "proportion",
                "increase",
                group="quality",
                min_samples=100,
                required=False,
            ),
        ),
        group_weights={"reliability": 20.0, "latency": 20.0, "safety": 30.0, "quality": 30.0},
        confidence=0.99,
    )
