"""Builders for per-request observations drawn from realistic distributions."""

from __future__ import annotations

import numpy as np

from keel.deploy.judge import ArmObservations


def arm(
    rng: np.random.Generator,
    n: int,
    *,
    latency: float = 800.0,
    ttft: float = 250.0,
    error: float = 0.01,
    guardrail: float = 0.02,
) -> ArmObservations:
    return ArmObservations(
        continuous={
            "latency_ms": latency * rng.lognormal(0, 0.5, n),
            "ttft_ms": ttft * rng.lognormal(0, 0.6, n),
        },
        events={
            "error": (int(rng.binomial(n, error)), n),
            "guardrail_violation": (int(rng.binomial(n, guardrail)), n),
        },
    )


def pairs(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {"eval_score": np.round(rng.normal(shift, 0.1, n), 2)}
