"""Runner overhead: what Keel adds around a model call, spans included.

Runs the `support-triage` example on the `testing:echo` model (a few microseconds per call)
through the real runner, with the real batch span processor exporting to a real SQLite store
in its background thread, and prints per-run latency percentiles. Then runs the span export
benchmark (bench/spans.py) for SQLite and Postgres.

    python bench/runner.py [--runs N] [--skip-spans]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

from keel.pipeline.loader import load_spec_dir, spec_from_data
from keel.pipeline.steps import RunContext
from keel.runtime import Runtime
from keel.settings import KeelSettings

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "keel" / "examples"
TICKET = {"subject": "Charged twice", "body": "My card was billed two times for one order."}


def _runtime(home: Path, exporters: list[str]) -> Runtime:
    settings = KeelSettings(
        home=home,
        providers={"default_model": "testing:echo"},
        telemetry={"exporters": exporters},
    )
    runtime = Runtime(settings)
    data = load_spec_dir(EXAMPLES / "support-triage").model_dump(mode="json", by_alias=True)
    data["model"]["id"] = "testing:echo"
    runtime.catalog.push(spec_from_data(data))
    return runtime


async def _measure(runtime: Runtime, runs: int) -> list[float]:
    compiled = runtime.catalog.resolve("support-triage")
    runner = runtime.runner
    for _ in range(min(500, runs)):  # warm caches, JIT-free but allocator-warm
        await runner.run(compiled, TICKET, RunContext())
    timings = []
    gc.collect()
    for _ in range(runs):
        started = time.perf_counter()
        await runner.run(compiled, TICKET, RunContext())
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _report(label: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    mean = statistics.fmean(ordered)
    print(f"  {label:<42} mean {mean:.3f} ms  p50 {p50:.3f} ms  p99 {p99:.3f} ms")


def runner_overhead(runs: int) -> None:
    print(f"runner overhead per run, echo model, {runs} runs (target <= 0.5 ms incl. spans)")
    with tempfile.TemporaryDirectory() as tmp:
        for exporters in (["store"], []):
            runtime = _runtime(Path(tmp) / "-".join(exporters or ["none"]), exporters)
            try:
                timings = asyncio.run(_measure(runtime, runs))
                runtime.flush()
                stored = runtime.store.traces.count_spans()
            finally:
                runtime.close()
            if exporters:
                expected = (runs + min(500, runs)) * 5
                _report("spans -> SQLite store", timings)
                print(f"  {'':<42} spans stored {stored} of {expected}")
            else:
                _report("spans created, no exporter", timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--skip-spans", action="store_true", help="skip the export benchmark")
    args = parser.parse_args(argv)
    runner_overhead(args.runs)
    if not args.skip_spans:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import spans

        return int(spans.main(["--backend", "both"]) or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
