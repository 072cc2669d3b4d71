"""What the shape of trace ids costs the store: random ids against time-ordered ones.

Each gateway request stores one span row and one trace row, keyed and indexed by its trace
id. This writes the same records as the gateway does, in batches of 300 (about what the span
writer takes per 200 ms at ~1,500 requests/s), into a fresh SQLite store, once with random
128-bit trace ids and once with Keel's time-ordered ones, and prints the CPU time per request
as the tables grow.

    python bench/trace_ids.py [--requests 90000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal

from keel.core.tracing import SpanRecord, TraceRecord
from keel.pipeline.correlation import new_trace_id
from keel.store import Store

BATCH = 300


def records(count: int, make_id: Callable[[], int]) -> tuple[list[SpanRecord], list[TraceRecord]]:
    spans, traces = [], []
    for _ in range(count):
        trace_id, now = f"{make_id():032x}", time.time_ns()
        span = SpanRecord(
            trace_id=trace_id,
            span_id=f"{random.getrandbits(64):016x}",
            parent_span_id=f"{random.getrandbits(64):016x}",
            name="gateway openai:gpt-4o-mini",
            start_ns=now,
            end_ns=now + 1_000_000,
            status="ok",
            layer="gateway",
            input='[{"role":"user","content":"Say hello #1234."}]',
            output='"Hello from the mock."',
            input_tokens=12,
            output_tokens=5,
            cost_usd=Decimal("0.0000048"),
            model="openai:gpt-4o-mini",
            model_version="gpt-4o-mini-2024-07-18",
        )
        span.attributes = {"keel.caller": "key:abc:bench", "keel.model.served": span.model}
        spans.append(span)
        traces.append(
            TraceRecord(
                trace_id=trace_id,
                correlation_id=trace_id,
                name=span.name,
                start_ns=now,
                end_ns=span.end_ns,
                status="ok",
                caller="key:abc:bench",
                input_tokens=12,
                output_tokens=5,
                cost_usd=span.cost_usd,
            )
        )
    return spans, traces


def measure(label: str, make_id: Callable[[], int], total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/keel.db")
        written, step = 0, max(BATCH, total // 6 // BATCH * BATCH)
        while written < total:
            batches = [records(BATCH, make_id) for _ in range(step // BATCH)]
            cpu = time.process_time()
            for spans, traces in batches:
                store.traces.write(spans, traces)
            cpu = time.process_time() - cpu
            written += step
            print(f"  {label:12} {written:>7} stored: {cpu * 1e6 / step:6.1f} µs CPU per request")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=90_000)
    args = parser.parse_args()
    print("span + trace rows per request, SQLite, batches of", BATCH)
    measure("random", lambda: random.getrandbits(128) or 1, args.requests)
    measure("time-ordered", new_trace_id, args.requests)


if __name__ == "__main__":
    main()
