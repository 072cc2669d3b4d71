"""Simulated shadow deployments, through the controller's own decision path.

Each check interval stable answers ``--primary`` requests and ``--mirrored`` of them also
run on the candidate and are scored by an evaluator (both answers to one item share its
difficulty). Every check judges the candidate against stable over everything since the
start (``keel.deploy.controller.decision_of``, the deployed judge and rollout policy at
one step) and ``keel.deploy.shadow_round.shadow_move`` turns the action into the
deployment's next state. A rollout runs ``--checks`` checks: a candidate may become ready
and still be rolled back later, which counts as rolled back.

Prints per scenario how often the candidate was rolled back and how often it was ready
at the end, with Wilson 95 % intervals, the checks to the first decision, CPU time and
the load average (the machine may be shared).

    python bench/deploy/simulate_shadow.py [--rollouts 200] [--checks 10] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from keel.deploy.controller import decision_of, rollout_state, shadow_policy
from keel.deploy.judge.proportions import wilson
from keel.deploy.model import Deployment, State, Strategy
from keel.deploy.observe import ArmSample, Observed
from keel.deploy.shadow_round import shadow_move
from keel.settings import DeploySettings

STABLE, CANDIDATE = "stable", "candidate"
START = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Behaviour:
    latency_factor: float = 1.0
    error_rate: float = 0.01
    guardrail_rate: float = 0.02
    score_shift: float = 0.0


SCENARIOS = {
    "unchanged": Behaviour(),
    "errors 1% -> 4%": Behaviour(error_rate=0.04),
    "latency x1.3": Behaviour(latency_factor=1.3),
    "guardrail trips 2% -> 6%": Behaviour(guardrail_rate=0.06),
    "paired score -0.05": Behaviour(score_shift=-0.05),
}


def add(sample: ArmSample, n: int, b: Behaviour, rng: np.random.Generator) -> None:
    errors = rng.random(n) < b.error_rate
    latency = 800.0 * b.latency_factor * rng.lognormal(0.0, 0.5, n)
    sample.latency_ms.extend(latency[~errors].tolist())
    sample.errors += int(errors.sum())
    sample.guardrail += int(rng.binomial(n, b.guardrail_rate))
    sample.total += n
    sample.keyless += n


def scores(n: int, b: Behaviour, rng: np.random.Generator) -> list[float]:
    difficulty = rng.beta(6.0, 2.0, n)
    base = np.clip(difficulty + rng.normal(0, 0.08, n), 0, 1)
    candidate = np.clip(difficulty + b.score_shift + rng.normal(0, 0.08, n), 0, 1)
    return (candidate - base).tolist()


def simulate(
    b: Behaviour, rng: np.random.Generator, args: argparse.Namespace
) -> tuple[str, int | None]:
    at = datetime.fromtimestamp(START, UTC)
    d = Deployment(
        id="sim", pipeline="sim", strategy=Strategy.SHADOW, state=State.PROGRESSING,
        stable=STABLE, candidates=(CANDIDATE,), weights={CANDIDATE: 0.0, STABLE: 100.0},
        salt="-", created_at=at, updated_at=at, step_started_at=at, interval_s=600.0,
        mirror=100.0 * args.mirrored / args.primary, evaluator="judge",
    )  # fmt: skip
    policy = shadow_policy(d, DeploySettings())
    observed = Observed(ArmSample(), {CANDIDATE: ArmSample()}, {CANDIDATE: []})
    first: int | None = None
    for check in range(1, args.checks + 1):
        add(observed.baseline, args.primary, Behaviour(), rng)
        add(observed.arms[CANDIDATE], args.mirrored, b, rng)
        observed.eval_scores[CANDIDATE].extend(scores(args.mirrored, b, rng))
        now = START + check * d.interval_s
        decision = decision_of(policy, CANDIDATE, rollout_state(d, CANDIDATE), observed, now)
        move = shadow_move(d, [decision], datetime.fromtimestamp(now, UTC))
        if move is None:
            continue
        d = move.after
        if move.action in ("ready", "rolled_back") and first is None:
            first = check
        if d.state == State.ROLLED_BACK:
            return "rolled_back", first
    return ("ready" if d.extra.get("ready") else "undecided"), first


def rate(count: int, n: int) -> str:
    low, high = wilson(count, n, 0.95)
    return f"{count}/{n} = {100 * count / n:.1f} % ({100 * low:.1f}-{100 * high:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=200)
    parser.add_argument("--checks", type=int, default=10)
    parser.add_argument("--primary", type=int, default=400)
    parser.add_argument("--mirrored", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    print(
        f"{args.primary} primary and {args.mirrored} mirrored requests per interval, "
        f"{args.checks} checks, default policies"
    )
    for i, (name, behaviour) in enumerate(SCENARIOS.items()):
        rng = np.random.default_rng(args.seed + i)
        started = time.process_time()
        ends: Counter[str] = Counter()
        firsts: list[int] = []
        for _ in range(args.rollouts):
            end, first = simulate(behaviour, rng, args)
            ends[end] += 1
            if first is not None:
                firsts.append(first)
        cpu = time.process_time() - started
        median = f"{np.median(firsts):g}" if firsts else "-"
        print(f"{name} ({cpu:.1f} s CPU):")
        print(
            f"  rolled back {rate(ends['rolled_back'], args.rollouts)}, "
            f"ready {rate(ends['ready'], args.rollouts)}, undecided {ends['undecided']}; "
            f"median check of the first decision {median}"
        )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
