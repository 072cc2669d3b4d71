"""Eval throughput and overhead on the echo model, through the real runtime and store.

Runs the `support-triage` example on `testing:echo` over a generated labelled dataset with
the default evaluators (classification, latency, cost), traces exported to a real SQLite
store, results persisted in batches, and the summary (intervals, aggregates) computed.

Figures printed:
* wall time for N item-trials (default 10,000 = 1,000 items x 10 repeats, concurrency 8);
* eval overhead per item-trial: wall time minus the time spent inside pipeline runs,
  divided by trials, measured at concurrency 1 so the two can be subtracted. This is what
  the eval layer adds (scheduling, evaluators, persistence, statistics); the pipeline's
  own overhead (spans etc.) is measured by bench/runner.py;
* per item-trial time excluding model time: wall time minus time inside the model calls.

    python bench/evals.py [--items N] [--repeats R]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keel.core.dataset import DatasetItem
from keel.evals import service
from keel.evals.runner import EvalRunner
from keel.pipeline.loader import load_spec_dir, spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "keel" / "examples"


class TimedRunner:
    """The pipeline runner, with the time spent inside runs (and model calls) summed."""

    def __init__(self, inner: Any, model: Any) -> None:
        self.inner = inner
        self.pipeline_s = 0.0
        self.model = model

    async def run(self, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.run(*args)
        finally:
            self.pipeline_s += time.perf_counter() - started


class TimedModel:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def complete(self, request: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            self.model_s += time.perf_counter() - started


def _runtime(home: Path, n_items: int) -> tuple[Runtime, TimedModel]:
    settings = KeelSettings(home=home, providers={"default_model": "testing:echo"})
    runtime = Runtime(settings)
    provider = runtime.registry.provider("testing")
    timed = TimedModel(provider.model("echo"))
    provider.add("echo", timed)  # type: ignore[attr-defined]
    data = load_spec_dir(EXAMPLES / "support-triage").model_dump(mode="json", by_alias=True)
    data["model"]["id"] = "testing:echo"
    runtime.catalog.push(spec_from_data(data))
    labels = ["billing", "technical", "account"]
    items = [
        DatasetItem(
            f"t{i}",
            {"subject": f"Ticket {i}", "body": f"Something about order {i}."},
            label=labels[i % 3],
        )
        for i in range(n_items)
    ]
    runtime.store.datasets.create_version("bench", items, source="bench")
    return runtime, timed


def measure(home: Path, n_items: int, repeats: int, concurrency: int) -> dict[str, float]:
    runtime, model = _runtime(home, n_items)
    try:
        request = service.RunRequest(
            "support-triage", "bench", repeats=repeats, concurrency=concurrency
        )
        plan = service.plan_run(runtime, request)
        timed = TimedRunner(runtime.runner, model)
        runner = EvalRunner(timed, runtime.store)  # type: ignore[arg-type]
        started = time.perf_counter()
        run = asyncio.run(runner.run(plan))
        wall = time.perf_counter() - started
        runtime.flush()
        trials = run.summary["trials"] if run.summary else 0
        return {
            "trials": trials,
            "wall_s": wall,
            "pipeline_s": timed.pipeline_s,
            "model_s": model.model_s,
            "spans": runtime.store.traces.count_spans(),
        }
    finally:
        runtime.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        n = args.items * args.repeats
        fast = measure(Path(tmp) / "c8", args.items, args.repeats, 8)
        print(
            f"eval of {fast['trials']:.0f} item-trials, echo model, concurrency 8 (target < 30 s)"
        )
        print(f"  wall {fast['wall_s']:.2f} s  ({fast['wall_s'] / n * 1000:.3f} ms per trial)")
        print(f"  spans stored {fast['spans']:.0f}")
        one = measure(Path(tmp) / "c1", args.items, args.repeats, 1)
        eval_only = (one["wall_s"] - one["pipeline_s"]) / n * 1000
        no_model = (one["wall_s"] - one["model_s"]) / n * 1000
        print("per item-trial at concurrency 1 (target <= 1 ms eval overhead)")
        print(f"  eval overhead (wall - pipeline runs)   {eval_only:.3f} ms")
        print(f"  everything except model time           {no_model:.3f} ms")
        pipeline_only = (one["pipeline_s"] - one["model_s"]) / n * 1000
        print(f"  pipeline run incl. spans, model excl.  {pipeline_only:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
