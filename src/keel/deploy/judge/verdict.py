"""The canary judgement: every metric classified, group scores, one score and a verdict.

Scoring follows Kayenta: group score = 100 x passing / counted metrics; the overall score
is the weighted mean of the group scores over groups that have a counted metric. A failing
critical metric forces the score to 0. If a critical metric, or half or more of the
required metrics, have no data, the verdict is NODATA: there is no evidence either way,
and the rollout engine waits rather than rolling back (see ``rollout.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from keel.deploy.judge.metrics import MetricResult, evaluate_metric
from keel.deploy.judge.spec import ArmObservations, JudgePolicy, Values


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    MARGINAL = "marginal"
    FAIL = "fail"
    NODATA = "nodata"


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one check of a canary, with the per-metric evidence table."""

    score: float
    verdict: Verdict
    metrics: tuple[MetricResult, ...]
    reason: str
    group_scores: Mapping[str, float] = field(default_factory=dict)
    confidence: float = 0.98
    pass_score: float = 95.0
    marginal_score: float = 75.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_scores", MappingProxyType(dict(self.group_scores)))

    @property
    def n_baseline(self) -> int:
        return max((m.n_baseline for m in self.metrics), default=0)

    @property
    def n_canary(self) -> int:
        return max((m.n_canary for m in self.metrics), default=0)

    def metric(self, name: str) -> MetricResult:
        for result in self.metrics:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "verdict": self.verdict.value,
            "reason": self.reason,
            "confidence": self.confidence,
            "pass_score": self.pass_score,
            "marginal_score": self.marginal_score,
            "group_scores": {k: round(v, 4) for k, v in self.group_scores.items()},
            "n_baseline": self.n_baseline,
            "n_canary": self.n_canary,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def group_scores(results: Sequence[MetricResult]) -> dict[str, float]:
    """100 x passing / counted, per group with at least one counted metric."""
    counted: dict[str, list[bool]] = {}
    for result in results:
        if result.counted:
            counted.setdefault(result.group, []).append(not result.failed)
    return {group: 100.0 * sum(flags) / len(flags) for group, flags in counted.items()}


def overall_score(policy: JudgePolicy, groups: Mapping[str, float]) -> float:
    """Weighted mean of the group scores (an unweighted mean if every weight is 0)."""
    if not groups:
        return 0.0
    total = sum(policy.weight(g) for g in groups)
    if total <= 0:
        return sum(groups.values()) / len(groups)
    return sum(policy.weight(g) * score for g, score in groups.items()) / total


def _failed_names(results: Sequence[MetricResult]) -> str:
    return ", ".join(f"{r.name} {r.outcome}" for r in results if r.failed)


def _decide(
    policy: JudgePolicy, results: tuple[MetricResult, ...], score: float
) -> tuple[Verdict, float, str]:
    critical = [r for r in results if r.critical and r.failed]
    if critical:
        names = ", ".join(f"{r.name} {r.outcome}" for r in critical)
        return Verdict.FAIL, 0.0, f"critical metric failed: {names}"
    required = [r for r in results if r.required]
    missing = [r.name for r in required if not r.counted]
    missing_critical = [r.name for r in results if r.critical and not r.counted]
    if missing_critical:
        return (
            Verdict.NODATA,
            score,
            f"no data for critical metric(s): {', '.join(missing_critical)}",
        )
    if required and 2 * len(missing) >= len(required):
        return (
            Verdict.NODATA,
            score,
            (
                f"no data for {len(missing)} of {len(required)} required metrics: "
                + ", ".join(missing)
            ),
        )
    failed = _failed_names(results)
    detail = f": {failed}" if failed else ""
    if score >= policy.pass_score:
        return Verdict.PASS, score, f"score {score:.1f} >= pass {policy.pass_score:g}{detail}"
    if score >= policy.marginal_score:
        return (
            Verdict.MARGINAL,
            score,
            (f"score {score:.1f} < pass {policy.pass_score:g} (marginal){detail}"),
        )
    return Verdict.FAIL, score, f"score {score:.1f} < marginal {policy.marginal_score:g}{detail}"


def judge(
    policy: JudgePolicy,
    baseline: ArmObservations,
    canary: ArmObservations,
    paired: Mapping[str, Values] | None = None,
) -> Judgement:
    """Judge a canary against its baseline over one window of per-request observations.

    ``paired`` maps a paired metric to the differences canary - baseline on inputs both
    versions answered (shadowed traffic).
    """
    pairs = paired if paired is not None else {}
    results = tuple(
        evaluate_metric(
            spec,
            baseline,
            canary,
            pairs,
            confidence=policy.confidence,
            drop_outliers=policy.drop_outliers,
        )
        for spec in policy.metrics
    )
    groups = group_scores(results)
    verdict, score, reason = _decide(policy, results, overall_score(policy, groups))
    return Judgement(
        score=score,
        verdict=verdict,
        metrics=results,
        reason=reason,
        group_scores=groups,
        confidence=policy.confidence,
        pass_score=policy.pass_score,
        marginal_score=policy.marginal_score,
    )
