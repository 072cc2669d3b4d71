"""Reduced simulated rollouts with the default policies (bench/deploy/simulate.py: full size)."""

from __future__ import annotations

import numpy as np
import pytest

from keel.deploy.judge import RolloutPolicy
from keel.deploy.judge.simulation import Fault, TrafficModel, simulate_rollout


def test_identical_candidates_are_promoted() -> None:
    rng = np.random.default_rng(2024)
    results = [simulate_rollout(RolloutPolicy(), TrafficModel(), Fault(), rng) for _ in range(60)]
    outcomes = [r.outcome for r in results]
    assert outcomes.count("rollback") <= 1  # the full bench measures the rate on 1,000
    assert outcomes.count("promote") >= 59


@pytest.mark.parametrize(
    "fault",
    [
        Fault("errors", error_rate=0.04),
        Fault("slower", latency_factor=1.3, ttft_factor=1.3),
        Fault("slower first token", ttft_factor=1.3),
        Fault("guardrail", guardrail_rate=0.05),
        Fault("paired score", score_shift=-0.05),
    ],
    ids=lambda f: f.name,
)
def test_each_worse_candidate_alone_is_rolled_back(fault: Fault) -> None:
    rng = np.random.default_rng(7)
    results = [simulate_rollout(RolloutPolicy(), TrafficModel(), fault, rng) for _ in range(8)]
    assert [r.outcome for r in results] == ["rollback"] * 8
    assert all(r.weight_at_end < 100 for r in results)
