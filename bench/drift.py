"""Drift checks: false-alarm rate under no drift, detection power under injected drift, and
the cost of one check.

No-drift checks draw both windows from one pool of synthetic support tickets whose features
(WordLlama embeddings, py3langid languages, labels, refusals, lengths) are computed once; a
check with any metric below its Bonferroni level is a false alarm. The rate is printed with
its 95 % Wilson interval against the configured alpha. Detection is measured the same way on
windows whose current half comes from a drifted distribution (one knob at a time). The time
of one full check from stored runs (SQLite read, features, all tests) is printed separately.

    python bench/drift.py [--checks 1000] [--window 100] [--alpha 0.01]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from keel.catalog import PipelineCatalog
from keel.drift.check import DriftPolicy, check_drift
from keel.drift.features import FeatureExtractor, LanguageDetector, wordllama_embed
from keel.drift.monitor import Windows, run_check
from keel.drift.simulate import NS, Traffic, spread, store_runs, take
from keel.evals.stats import wilson
from keel.pipeline.loader import spec_from_data
from keel.store import Store

POOL = 4000
DRIFTS = {
    "input: 30% medical questions": Traffic(medical_share=0.3),
    "input: 20% German": Traffic(german_share=0.2),
    "output: label mix shifted": Traffic(label_weights=(0.25, 0.35, 0.15, 0.25)),
    "output: refusals 2% -> 8%": Traffic(refusal_rate=0.08),
    "output: answers 20 -> 23 words": Traffic(answer_words=23),
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate_line(label: str, hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    return f"{label:34s} {hits:5d}/{n:<5d} = {hits / n:6.3f}  (95% CI {low:.3f}-{high:.3f})"


def false_alarms(extractor: FeatureExtractor, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    pool = extractor.features(Traffic().samples(rng, POOL))
    policy = DriftPolicy(alpha=args.alpha, min_samples=30, permutations=args.permutations)
    alarms, by_metric = 0, dict.fromkeys(("input_embedding", "input_length"), 0)
    started, cpu0 = time.perf_counter(), cpu()
    for i in range(args.checks):
        ref = take(pool, rng.choice(POOL, size=args.window, replace=False))
        cur = take(pool, rng.choice(POOL, size=args.window, replace=False))
        report = check_drift(ref, cur, replace(policy, seed=i))
        drifted = report.drifted()
        alarms += bool(drifted)
        for result in drifted:
            by_metric[result.metric] = by_metric.get(result.metric, 0) + 1
    per_check = (cpu() - cpu0) / args.checks * 1000
    print(
        f"no drift: {args.checks} checks of {args.window} vs {args.window} runs, alpha {args.alpha}"
    )
    print("  " + rate_line("false-alarm rate (any metric)", alarms, args.checks))
    print(f"  alarms by metric: {by_metric}")
    print(f"  statistics only: {per_check:.1f} ms CPU per check "
          f"({time.perf_counter() - started:.1f} s wall)")  # fmt: skip


def power(extractor: FeatureExtractor, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed + 1)
    base = extractor.features(Traffic().samples(rng, POOL))
    policy = DriftPolicy(alpha=args.alpha, min_samples=30, permutations=args.permutations)
    trials = max(args.checks // 10, 20)
    print(f"detection with {args.window} vs {args.window} runs ({trials} checks each):")
    for label, traffic in DRIFTS.items():
        drifted = extractor.features(traffic.samples(rng, POOL))
        hits = 0
        for i in range(trials):
            ref = take(base, rng.choice(POOL, size=args.window, replace=False))
            cur = take(drifted, rng.choice(POOL, size=args.window, replace=False))
            hits += bool(check_drift(ref, cur, replace(policy, seed=i)).drifted())
        print("  " + rate_line(label, hits, trials))


def stored_check(extractor: FeatureExtractor, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'keel.db'}")
        try:
            spec = {
                "name": "triage",
                "prompt": {"user": "{{ q }}"},
                "model": {"id": "testing:echo"},
            }
            PipelineCatalog(store).push(spec_from_data(spec))
            now = time.time_ns()
            rng = np.random.default_rng(args.seed)
            samples = spread(Traffic().samples(rng, 4000), now - 7200 * NS, now - NS)
            store_runs(store, samples, "triage")
            windows = Windows.trailing(now, 1800, 5400)
            policy = DriftPolicy(alpha=args.alpha, permutations=args.permutations)
            run_check(store, extractor, "triage", windows, policy)  # warm up
            started, cpu0 = time.perf_counter(), cpu()
            runs = 5
            for _ in range(runs):
                run_check(store, extractor, "triage", windows, policy)
            wall = (time.perf_counter() - started) / runs * 1000
            print(f"one check from the store (3,000 vs 1,000 runs, 300 embeddings each): "
                  f"{wall:.0f} ms wall, {(cpu() - cpu0) / runs * 1000:.0f} ms CPU")  # fmt: skip
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    extractor = FeatureExtractor(wordllama_embed(), LanguageDetector(), max_embeddings=POOL)
    false_alarms(extractor, args)
    power(extractor, args)
    stored_check(extractor, args)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
