"""Simulated canary rollouts through the judge and the rollout engine.

Prints, for the default judge and rollout policies:
* the false-rollback rate over many rollouts of a candidate identical to the baseline,
  with its Wilson 95 % interval (target: <= 2 %), and how many of them were promoted;
* for each fault alone (more errors, slower, more guardrail trips, lower paired eval
  score) at two effect sizes: the detection (rollback) rate, the median number of checks
  and the canary weight at rollback, and the canary requests served before it.

Traffic per check interval: 2,000 requests split by the canary weight, 200 mirrored pairs
for the paired eval score (see keel.deploy.judge.simulation.TrafficModel). CPU time and
the load average are printed: the machine may be shared.

    python bench/deploy/simulate.py [--null 1000] [--faulty 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter

import numpy as np

from keel.deploy.judge import RolloutPolicy
from keel.deploy.judge.proportions import wilson
from keel.deploy.judge.simulation import Fault, TrafficModel, simulate_rollout

FAULTS = (
    Fault("errors 1% -> 2%", error_rate=0.02),
    Fault("errors 1% -> 3%", error_rate=0.03),
    Fault("latency x1.15 (+ttft)", latency_factor=1.15, ttft_factor=1.15),
    Fault("latency x1.3 (+ttft)", latency_factor=1.3, ttft_factor=1.3),
    Fault("latency x1.3 only", latency_factor=1.3),
    Fault("first token x1.15 only", ttft_factor=1.15),
    Fault("first token x1.3 only", ttft_factor=1.3),
    Fault("guardrail 2% -> 3%", guardrail_rate=0.03),
    Fault("guardrail 2% -> 4%", guardrail_rate=0.04),
    Fault("eval score -0.02", score_shift=-0.02),
    Fault("eval score -0.05", score_shift=-0.05),
)


def run(policy: RolloutPolicy, model: TrafficModel, fault: Fault, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [simulate_rollout(policy, model, fault, rng) for _ in range(n)]


def describe_null(results: list, cpu: float) -> None:
    outcomes = Counter(r.outcome for r in results)
    n = len(results)
    rollbacks = outcomes["rollback"]
    low, high = wilson(rollbacks, n, 0.95)
    checks = statistics.median(r.checks for r in results)
    print(f"no change, {n} rollouts ({cpu:.1f} s CPU):")
    print(
        f"  false rollbacks {rollbacks} = {100 * rollbacks / n:.2f} % "
        f"(Wilson 95 % {100 * low:.2f}-{100 * high:.2f} %), target <= 2 %"
    )
    print(
        f"  promoted {outcomes['promote']} ({100 * outcomes['promote'] / n:.1f} %), "
        f"unfinished {outcomes['unfinished']}, median checks to the end {checks}"
    )
    reasons = Counter(r.reason.split(":")[0] for r in results if r.outcome == "rollback")
    for reason, count in reasons.most_common(5):
        print(f"    rollback cause: {count} x {reason}")


def describe_fault(fault: Fault, results: list, cpu: float) -> None:
    n = len(results)
    caught = [r for r in results if r.outcome == "rollback"]
    rate = len(caught) / n
    low, high = wilson(len(caught), n, 0.95)
    if caught:
        checks = statistics.median(r.checks for r in caught)
        weight = statistics.median(r.weight_at_end for r in caught)
        served = statistics.median(r.canary_requests for r in caught)
        extra = f"median checks {checks:g}, weight {weight:g} %, canary requests {served:g}"
    else:
        extra = "never rolled back"
    promoted = sum(r.outcome == "promote" for r in results)
    print(
        f"  {fault.name:<24} rolled back {100 * rate:5.1f} % ({100 * low:.0f}-{100 * high:.0f}),"
        f" promoted {promoted:3d}; {extra} [{cpu:.1f} s CPU]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null", type=int, default=1000, help="no-change rollouts")
    parser.add_argument("--faulty", type=int, default=200, help="rollouts per fault")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    policy, model = RolloutPolicy(), TrafficModel()
    print(f"load average at start: {os.getloadavg()}")
    print(
        f"policy: steps {policy.steps}, confidence {policy.judge.confidence}, "
        f"budget {policy.failed_check_budget}, promote after {policy.promote_checks} passes; "
        f"{model.requests_per_interval} requests and {model.paired_per_interval} pairs/interval"
    )
    start = time.process_time()
    null = run(policy, model, Fault(), args.null, args.seed)
    describe_null(null, time.process_time() - start)
    print(f"faults, {args.faulty} rollouts each (rolled back %, Wilson 95 %):")
    for i, fault in enumerate(FAULTS):
        start = time.process_time()
        results = run(policy, model, fault, args.faulty, args.seed + 1 + i)
        describe_fault(fault, results, time.process_time() - start)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
