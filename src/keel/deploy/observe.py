"""Per-arm observations of a deployment, from its requests' traces and shadowed pairs.

Pure aggregation (the store reads the rows): latency of successful requests, error and
guardrail counts as proportions, the share of thumbs-down among thumbs given on each arm's
answers (when users give any), and paired eval-score differences (candidate - stable) on
mirrored inputs both versions answered. Time to first token is observed on requests that
streamed (a streamed chat request routed by the deployment reads its model as a stream);
an arm without streamed requests has no ``ttft_ms`` data, which never fails a check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from keel.store.deployments import Outcome, Pair


@dataclass(slots=True)
class ArmSample:
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    errors: int = 0
    guardrail: int = 0
    total: int = 0
    thumbs: int = 0
    thumbs_down: int = 0

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        self.errors += outcome.error
        self.guardrail += outcome.guardrail
        self.thumbs += outcome.thumbs
        self.thumbs_down += outcome.thumbs_down
        if not outcome.error:
            self.latency_ms.append(outcome.latency_ms)
            if outcome.ttft_ms is not None:
                self.ttft_ms.append(outcome.ttft_ms)

    def continuous(self) -> dict[str, list[float]]:
        found = {"latency_ms": list(self.latency_ms)}
        return found | ({"ttft_ms": list(self.ttft_ms)} if self.ttft_ms else {})

    def events(self) -> dict[str, tuple[int, int]]:
        return {
            "error": (self.errors, self.total),
            "guardrail_violation": (self.guardrail, self.total),
            "feedback_negative": (self.thumbs_down, self.thumbs),
        }

    def summary(self) -> dict[str, float | int]:
        return {
            "requests": self.total,
            "errors": self.errors,
            "guardrail_violations": self.guardrail,
            "thumbs": self.thumbs,
            "thumbs_down": self.thumbs_down,
            "latency_p50_ms": _median(self.latency_ms),
            "streamed": len(self.ttft_ms),
            "ttft_p50_ms": _median(self.ttft_ms),
        }


@dataclass(slots=True)
class Observed:
    baseline: ArmSample
    candidate: ArmSample
    eval_score: list[float]  # paired differences, candidate - stable

    def paired(self) -> dict[str, list[float]]:
        return {"eval_score": list(self.eval_score)} if self.eval_score else {}


def gather(outcomes: Iterable[Outcome], pairs: Iterable[Pair], *, shadow: bool) -> Observed:
    """Split outcomes by arm. A shadow deployment's candidate arm is its mirrored runs."""
    baseline, candidate = ArmSample(), ArmSample()
    candidate_role = "shadow" if shadow else "candidate"
    for outcome in outcomes:
        if outcome.role == "stable":
            baseline.add(outcome)
        elif outcome.role == candidate_role:
            candidate.add(outcome)
    differences = [
        p.candidate_score - p.baseline_score
        for p in pairs
        if p.candidate_score is not None and p.baseline_score is not None
    ]
    return Observed(baseline, candidate, differences)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 3) if ordered else 0.0
