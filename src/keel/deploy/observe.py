"""Per-arm observations of a deployment, from its requests' traces and shadowed pairs.

Pure aggregation (the store reads the rows): latency of successful requests, error and
guardrail counts as proportions, the share of thumbs-down among thumbs given on each arm's
answers (when users give any), and paired eval-score differences (candidate - stable) on
mirrored inputs both versions answered, per candidate. Time to first token is observed on
requests that streamed (a streamed chat request routed by the deployment reads its model
as a stream); an arm without streamed requests has no ``ttft_ms`` data, which never fails
a check. Each arm also counts its units of assignment (a sticky user once, any other
request once) for the A/B report's sample-ratio check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    users: set[str] = field(default_factory=set)  # sticky requests' pseudonymous users
    keyless: int = 0  # requests routed at random (each its own unit of assignment)

    def add(self, outcome: Outcome) -> None:
        self.total += 1
        if outcome.unit is None:
            self.keyless += 1
        else:
            self.users.add(outcome.unit)
        self.errors += outcome.error
        self.guardrail += outcome.guardrail
        self.thumbs += outcome.thumbs
        self.thumbs_down += outcome.thumbs_down
        if not outcome.error:
            self.latency_ms.append(outcome.latency_ms)
            if outcome.ttft_ms is not None:
                self.ttft_ms.append(outcome.ttft_ms)

    @property
    def assigned(self) -> int:
        """Units of assignment: each sticky user once, each other request once."""
        return len(self.users) + self.keyless

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
            "assigned": self.assigned,
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
    arms: dict[str, ArmSample]  # per candidate version, in the deployment's order
    eval_scores: dict[str, list[float]]  # per candidate: paired differences, candidate - stable

    @property
    def candidate(self) -> ArmSample:
        """The first candidate's sample (the only one of a one-candidate deployment)."""
        return next(iter(self.arms.values()))

    def paired(self, version: str | None = None) -> dict[str, list[float]]:
        scores = self.eval_scores.get(version or next(iter(self.arms)), [])
        return {"eval_score": list(scores)} if scores else {}


def gather(
    outcomes: Iterable[Outcome],
    pairs: Iterable[Pair],
    candidates: Sequence[str],
    *,
    shadow: bool,
) -> Observed:
    """Split outcomes by arm (the version that answered). A shadow deployment's candidate
    arms are its mirrored runs. Rows stored before deployments had several candidates
    carry no version and belong to the first candidate."""
    baseline = ArmSample()
    arms = {version: ArmSample() for version in candidates}
    scores: dict[str, list[float]] = {version: [] for version in candidates}
    candidate_role = "shadow" if shadow else "candidate"
    for outcome in outcomes:
        if outcome.role == "stable":
            baseline.add(outcome)
        elif outcome.role == candidate_role:
            found = arms.get(outcome.version or candidates[0])
            if found is not None:
                found.add(outcome)
    for p in pairs:
        if p.candidate_score is not None and p.baseline_score is not None:
            version = p.candidate_version or candidates[0]
            if version in scores:
                scores[version].append(p.candidate_score - p.baseline_score)
    return Observed(baseline, arms, scores)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 3) if ordered else 0.0
