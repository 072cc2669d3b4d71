"""Span export throughput to the store, on SQLite and on the machine's PostgreSQL.

Two figures per backend:

* end to end: N spans made by a real tracer from ``build_tracer_provider`` with the ``store``
  exporter (its ``StoreSpanProcessor``: convert as spans end, bounded queue, batched writes),
  timed from the first span's start until ``provider.shutdown()`` returns; then the stored
  rows are counted (``lost`` = N - stored) next to the spans the queue dropped;
* raw exporter: the same kind of spans, built beforehand, handed to ``StoreSpanExporter`` in
  batches (convert + write, no tracer), to show what the write path alone sustains.

Each run uses a fresh database (a temp SQLite file, or ``keel_bench_<hex>`` created on the
Postgres server and dropped afterwards).

    python bench/spans.py --spans 100000 --backend both
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Tracer
from sqlalchemy.pool import NullPool

from keel.core import tracing as attr
from keel.settings import TelemetrySettings
from keel.store import Store
from keel.store.engine import describe, parse_url
from keel.telemetry import CountingBatchSpanProcessor, StoreSpanExporter, build_tracer_provider

DEFAULT_POSTGRES = os.environ.get(
    "KEEL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
LAYERS = ("preprocess", "prompt", "model", "postprocess")
SPANS_PER_TRACE = 1 + len(LAYERS)


@dataclass(frozen=True)
class Payload:
    """Realistic layer input and output: JSON text of about 200 bytes each."""

    input: str
    output: str

    @classmethod
    def make(cls) -> Payload:
        question = "My order #48213 arrived damaged; the box was crushed and two mugs broke."
        request = {"ticket": {"id": 48213, "channel": "email", "text": question, "lang": "en"}}
        answer = {"category": "damaged_goods", "priority": "high", "confidence": 0.91}
        response = answer | {"reply": "Sorry about the mugs! A replacement ships today."}
        return cls(orjson.dumps(request).decode(), orjson.dumps(response).decode())


def make_spans(tracer: Tracer, count: int, payload: Payload) -> None:
    """``count`` spans as traces of one root and four layer spans (the last may be shorter)."""
    made = 0
    while made < count:
        children = min(len(LAYERS), count - made - 1)
        with tracer.start_as_current_span("pipeline support-triage") as root:
            root.set_attributes(
                {
                    attr.ROOT: True,
                    attr.PIPELINE: "support-triage",
                    attr.PIPELINE_VERSION: "9f8e7d6c5b4a",
                    attr.PIPELINE_LABEL: "production",
                    attr.CALLER: "key:bench",
                    attr.GEN_AI_USAGE_INPUT_TOKENS: 96,
                    attr.GEN_AI_USAGE_OUTPUT_TOKENS: 24,
                    attr.COST_USD: "0.000021600",
                }
            )
            for layer in LAYERS[:children]:
                with tracer.start_as_current_span(layer) as span:
                    span.set_attributes(
                        {
                            attr.LAYER: layer,
                            attr.INPUT: payload.input,
                            attr.OUTPUT: payload.output,
                            attr.GEN_AI_REQUEST_MODEL: "local:smollm2",
                        }
                    )
        made += 1 + children


@dataclass(frozen=True)
class Result:
    spans_per_s: float
    seconds: float
    stored: int
    dropped: int


def end_to_end(store: Store, count: int, settings: TelemetrySettings, processor: str) -> Result:
    if processor == "store":
        provider = build_tracer_provider(settings, store)
    else:  # the SDK's BatchSpanProcessor (counted) around StoreSpanExporter, for comparison
        provider = build_tracer_provider(settings.model_copy(update={"exporters": []}), None)
        provider.add_span_processor(
            CountingBatchSpanProcessor(
                StoreSpanExporter(store),
                max_queue_size=settings.max_queue_size,
                max_export_batch_size=settings.max_export_batch_size,
                schedule_delay_ms=settings.schedule_delay_ms,
            )
        )
    tracer = provider.get_tracer("keel")
    payload = Payload.make()
    started = time.perf_counter()
    make_spans(tracer, count, payload)
    provider.shutdown()
    seconds = time.perf_counter() - started
    return Result(count / seconds, seconds, store.traces.count_spans(), provider.dropped_spans)


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def prebuilt_spans(count: int) -> list[ReadableSpan]:
    collect = _Collect()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        CountingBatchSpanProcessor(
            collect, max_queue_size=count + 1, max_export_batch_size=4096, schedule_delay_ms=50
        )
    )
    make_spans(provider.get_tracer("keel"), count, Payload.make())
    provider.shutdown()
    return collect.spans


def raw_exporter(store: Store, spans: list[ReadableSpan], batch_size: int) -> Result:
    exporter = StoreSpanExporter(store)
    started = time.perf_counter()
    for offset in range(0, len(spans), batch_size):
        exporter.export(spans[offset : offset + batch_size])
    seconds = time.perf_counter() - started
    return Result(len(spans) / seconds, seconds, store.traces.count_spans(), 0)


@contextmanager
def fresh_database(backend: str, postgres_url: str) -> Iterator[str]:
    """A URL to an empty database, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'keel.db'}"
        return
    base = parse_url(postgres_url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"keel_bench_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_backend(backend: str, args: argparse.Namespace) -> None:
    settings = TelemetrySettings(
        exporters=["store"],
        max_queue_size=args.queue_size,
        max_export_batch_size=args.batch_size,
        schedule_delay_ms=args.schedule_delay_ms,
    )
    with fresh_database(backend, args.postgres_url) as url:
        store = Store.open(url)
        try:
            result = end_to_end(store, args.spans, settings, args.processor)
        finally:
            store.close()
    print(
        f"{backend:8} end-to-end   {result.spans_per_s:>9,.0f} spans/s  "
        f"({args.spans:,} spans in {result.seconds:.2f} s, {args.processor} processor, "
        f"batch {args.batch_size}, "
        f"queue {args.queue_size})  stored={result.stored:,} lost={args.spans - result.stored} "
        f"dropped={result.dropped}"
    )
    spans = prebuilt_spans(args.spans)
    with fresh_database(backend, args.postgres_url) as url:
        store = Store.open(url)
        try:
            raw = raw_exporter(store, spans, args.batch_size)
        finally:
            store.close()
    print(
        f"{backend:8} raw exporter {raw.spans_per_s:>9,.0f} spans/s  "
        f"({len(spans):,} pre-built spans in {raw.seconds:.2f} s)  "
        f"stored={raw.stored:,} lost={len(spans) - raw.stored}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000, help="spans per run")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    defaults = TelemetrySettings()
    parser.add_argument("--batch-size", type=int, default=defaults.max_export_batch_size)
    parser.add_argument("--queue-size", type=int, default=defaults.max_queue_size)
    parser.add_argument("--schedule-delay-ms", type=int, default=defaults.schedule_delay_ms)
    parser.add_argument(
        "--processor",
        choices=["store", "sdk"],
        default="store",
        help="end to end through Keel's StoreSpanProcessor (what build_tracer_provider uses) "
        "or the SDK's BatchSpanProcessor with StoreSpanExporter",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES,
        help="server to create the temporary database on (env KEEL_BENCH_POSTGRES_URL)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        try:
            run_backend(backend, args)
        except sa.exc.OperationalError as exc:
            where = describe(parse_url(args.postgres_url))
            print(f"{backend:8} skipped: cannot reach {where}: {exc.orig}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
