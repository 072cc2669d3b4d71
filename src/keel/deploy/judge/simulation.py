"""Simulated canary rollouts, for tuning the judge's defaults and proving them in tests.

Per-request data are drawn from distributions that look like LLM traffic: lognormal
latency and time to first token, Bernoulli errors, guardrail trips and (sparse) negative
feedback, and paired eval scores on mirrored inputs, where both versions answer the same
item of a given difficulty. A :class:`Fault` changes one aspect of the canary. Each
simulated rollout feeds one check interval of traffic at a time through :func:`judge` and
:func:`next_action`, exactly as the platform's scheduler does. Pure computation: the
caller passes the random generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from keel.deploy.judge.rollout import RolloutPolicy, RolloutState, next_action
from keel.deploy.judge.spec import ArmObservations
from keel.deploy.judge.verdict import judge


@dataclass(frozen=True, slots=True)
class TrafficModel:
    """The baseline's behaviour and the traffic volume per check interval."""

    requests_per_interval: int = 2000
    paired_per_interval: int = 200
    latency_median_ms: float = 800.0
    latency_sigma: float = 0.5
    ttft_median_ms: float = 250.0
    ttft_sigma: float = 0.6
    error_rate: float = 0.01
    guardrail_rate: float = 0.02
    score_mean: float = 0.75
    score_concentration: float = 6.0
    score_noise: float = 0.08
    feedback_rate: float = 0.05
    negative_rate: float = 0.2


@dataclass(frozen=True, slots=True)
class Fault:
    """How the canary differs from the baseline (the default: not at all)."""

    name: str = "none"
    latency_factor: float = 1.0
    ttft_factor: float = 1.0
    error_rate: float | None = None
    guardrail_rate: float | None = None
    score_shift: float = 0.0


@dataclass(slots=True)
class _Window:
    """Observations of one arm accumulated since the current step started."""

    latency: list[NDArray[np.float64]] = field(default_factory=list)
    ttft: list[NDArray[np.float64]] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)

    def add(self, model: TrafficModel, fault: Fault, n: int, rng: np.random.Generator) -> None:
        lat = model.latency_median_ms * fault.latency_factor
        first = model.ttft_median_ms * fault.ttft_factor
        self.latency.append(lat * rng.lognormal(0.0, model.latency_sigma, n))
        self.ttft.append(first * rng.lognormal(0.0, model.ttft_sigma, n))
        err = model.error_rate if fault.error_rate is None else fault.error_rate
        trip = model.guardrail_rate if fault.guardrail_rate is None else fault.guardrail_rate
        rated = int(rng.binomial(n, model.feedback_rate))
        for name, bad, total in (
            ("error", int(rng.binomial(n, err)), n),
            ("guardrail_violation", int(rng.binomial(n, trip)), n),
            ("feedback_negative", int(rng.binomial(rated, model.negative_rate)), rated),
        ):
            pair = self.counts.setdefault(name, [0, 0])
            pair[0] += bad
            pair[1] += total

    def observations(self) -> ArmObservations:
        return ArmObservations(
            continuous={
                "latency_ms": np.concatenate(self.latency) if self.latency else np.empty(0),
                "ttft_ms": np.concatenate(self.ttft) if self.ttft else np.empty(0),
            },
            events={k: (v[0], v[1]) for k, v in self.counts.items()},
        )


def paired_differences(
    model: TrafficModel, fault: Fault, n: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Eval-score differences canary - baseline on ``n`` mirrored items in [0, 1]."""
    a = model.score_mean * model.score_concentration
    b = (1 - model.score_mean) * model.score_concentration
    difficulty = rng.beta(a, b, n)
    base = np.clip(difficulty + rng.normal(0.0, model.score_noise, n), 0.0, 1.0)
    noise = rng.normal(0.0, model.score_noise, n)
    can = np.clip(difficulty + fault.score_shift + noise, 0.0, 1.0)
    return np.asarray(can - base, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SimulatedRollout:
    """How one simulated rollout ended."""

    outcome: str  # "promote", "rollback" or "unfinished"
    checks: int
    final_step_index: int
    weight_at_end: int
    elapsed_s: float
    canary_requests: int
    reason: str
    kinds: tuple[str, ...]


def simulate_rollout(
    policy: RolloutPolicy,
    model: TrafficModel,
    fault: Fault,
    rng: np.random.Generator,
    max_checks: int = 40,
) -> SimulatedRollout:
    """Run one canary rollout to its end (or ``max_checks``) on simulated traffic."""
    state = RolloutState.start(0.0)
    now, served = 0.0, 0
    kinds: list[str] = []
    base, can, diffs = _Window(), _Window(), []
    reason = "check limit reached"
    while not state.finished and len(kinds) < max_checks:
        weight = policy.steps[state.step_index]
        now += policy.interval_s
        n_canary = int(rng.binomial(model.requests_per_interval, weight / 100))
        served += n_canary
        base.add(model, Fault(), model.requests_per_interval - n_canary, rng)
        can.add(model, fault, n_canary, rng)
        diffs.append(paired_differences(model, fault, model.paired_per_interval, rng))
        judgement = judge(
            policy.judge,
            base.observations(),
            can.observations(),
            {"eval_score": np.concatenate(diffs)},
        )
        action = next_action(policy, state, judgement, now)
        kinds.append(action.kind)
        reason = action.reason
        if action.kind == "advance":
            base, can, diffs = _Window(), _Window(), []
        state = action.state
    outcome = state.status.replace("promoted", "promote").replace("rolled_back", "rollback")
    return SimulatedRollout(
        outcome=outcome if state.finished else "unfinished",
        checks=len(kinds),
        final_step_index=state.step_index,
        weight_at_end=policy.steps[state.step_index],
        elapsed_s=now,
        canary_requests=served,
        reason=reason,
        kinds=tuple(kinds),
    )
