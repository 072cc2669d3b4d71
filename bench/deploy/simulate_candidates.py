"""Simulated canaries with several candidates, through the controller's own decision path.

Each check interval, 2,000 requests are split by the deployment's weights (each candidate
at its step weight divided by the number of candidates, stable the rest). Every live
candidate is judged against stable over its own step's window with the deployed judge
policy (latency, errors, guardrail trips; no evaluator), its rollout engine gives an
action, and ``keel.deploy.canary.decide`` turns the actions into the deployment's next
state, as the controller does. A rollout ends promoted, rolled back, waiting for a
person's choice (several candidates passed their last step) or after 40 checks.

Prints, per scenario, how the rollouts ended and how often each candidate was rolled
back, with Wilson 95 % intervals; CPU time and the load average (the machine may be
shared).

    python bench/deploy/simulate_candidates.py [--rollouts 200] [--candidates 2] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from keel.deploy.canary import Decision, decide
from keel.deploy.controller import rollout_policy, rollout_state
from keel.deploy.judge import ArmObservations, judge, next_action
from keel.deploy.judge.proportions import wilson
from keel.deploy.model import Deployment, Plan, State, Strategy
from keel.settings import DeploySettings

REQUESTS = 2000
STABLE = "stable"


@dataclass(frozen=True, slots=True)
class Behaviour:
    latency_factor: float = 1.0
    error_rate: float = 0.01
    guardrail_rate: float = 0.02


@dataclass(slots=True)
class Interval:
    """One check interval of one arm's traffic."""

    at: float
    latency: np.ndarray
    errors: int
    guardrail: int
    n: int


@dataclass(slots=True)
class Arm:
    intervals: list[Interval] = field(default_factory=list)

    def add(self, at: float, n: int, b: Behaviour, rng: np.random.Generator) -> None:
        latency = 800.0 * b.latency_factor * rng.lognormal(0.0, 0.5, n)
        errors, trips = int(rng.binomial(n, b.error_rate)), int(rng.binomial(n, b.guardrail_rate))
        self.intervals.append(Interval(at, latency, errors, trips, n))

    def since(self, start: float) -> ArmObservations:
        chosen = [i for i in self.intervals if i.at > start]
        n = sum(i.n for i in chosen)
        latency = np.concatenate([i.latency for i in chosen]) if chosen else np.empty(0)
        return ArmObservations(
            continuous={"latency_ms": latency},
            events={
                "error": (sum(i.errors for i in chosen), n),
                "guardrail_violation": (sum(i.guardrail for i in chosen), n),
            },
            requests=n,
        )


def deployment(behaviours: dict[str, Behaviour]) -> Deployment:
    candidates = tuple(v for v in behaviours if v != STABLE)
    weights = Plan(candidates, Strategy.CANARY).weights_for(STABLE)
    now = datetime.fromtimestamp(1_000_000.0, UTC)
    return Deployment(
        id="sim", pipeline="sim", strategy=Strategy.CANARY, state=State.PROGRESSING,
        stable=STABLE, candidates=candidates, weights=weights, salt="-", created_at=now,
        updated_at=now, step_started_at=now,
    )  # fmt: skip


def simulate(behaviours: dict[str, Behaviour], rng: np.random.Generator) -> tuple[str, Deployment]:
    d = deployment(behaviours)
    policy = rollout_policy(d, DeploySettings())
    arms = {v: Arm() for v in behaviours}
    now = d.created_at.timestamp()
    for _ in range(40):
        now += d.interval_s
        shares = [d.weights[v] / 100 for v in d.candidates]
        counts = rng.multinomial(REQUESTS, [*shares, 1 - sum(shares)])
        for version, n in zip((*d.candidates, STABLE), counts, strict=True):
            arms[version].add(now, int(n), behaviours[version], rng)
        decisions = []
        for version in d.live:
            state = rollout_state(d, version)
            start = state.step_started_at
            verdict = judge(policy.judge, arms[STABLE].since(start), arms[version].since(start), {})
            action = next_action(policy, state, verdict, now)
            decisions.append(Decision(version, state, verdict, action, {}))
        move = decide(d, decisions)
        if move is None:
            continue
        d = move.after
        if d.state != State.PROGRESSING:
            return d.state.value, d
        if move.action == "awaiting_choice":
            return "awaiting_choice", d
    return "unfinished", d


SCENARIOS = {
    "all unchanged": {},
    "first: errors 1% -> 4%": {"c1": Behaviour(error_rate=0.04)},
    "first: latency x1.3": {"c1": Behaviour(latency_factor=1.3)},
    "all: errors 1% -> 4%": "all",
}


def behaviours_for(change: object, k: int) -> dict[str, Behaviour]:
    found = {f"c{i + 1}": Behaviour() for i in range(k)}
    if change == "all":
        found = {v: Behaviour(error_rate=0.04) for v in found}
    elif isinstance(change, dict):
        found |= change
    return found | {STABLE: Behaviour()}


def rate(count: int, n: int) -> str:
    low, high = wilson(count, n, 0.95)
    return f"{count}/{n} = {100 * count / n:.1f} % ({100 * low:.1f}-{100 * high:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    print(f"{args.candidates} candidates, {REQUESTS} requests per interval, default policies")
    for i, (name, change) in enumerate(SCENARIOS.items()):
        rng = np.random.default_rng(args.seed + i)
        started = time.process_time()
        ends: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        winners: Counter[str] = Counter()
        for _ in range(args.rollouts):
            end, final = simulate(behaviours_for(change, args.candidates), rng)
            ends[end] += 1
            dropped.update(final.retired if end != "rolled_back" else final.candidates)
            if final.winner:
                winners[final.winner] += 1
        cpu = time.process_time() - started
        print(f"{name} ({cpu:.1f} s CPU):")
        print("  ended: " + ", ".join(f"{k} {v}" for k, v in sorted(ends.items())))
        for version in (f"c{j + 1}" for j in range(args.candidates)):
            print(
                f"  {version}: rolled back {rate(dropped[version], args.rollouts)}, "
                f"promoted {winners[version]}"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
