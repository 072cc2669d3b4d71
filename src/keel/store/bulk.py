"""Driver-level bulk inserts for the span write path.

The exporter writes thousands of spans a second, so rows skip SQLAlchemy's per-row type
processing: each record becomes a plain tuple, already encoded the way the column types in
:mod:`keel.store.column_types` encode it (cost as billionths on SQLite, JSON as text), and the
batch goes to the driver in bulk: multi-row ``INSERT … ON CONFLICT DO NOTHING`` statements on
SQLite, ``COPY`` into a temp table then one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` on
Postgres. Measured here, either is 2-3x the rows per second of a Core ``insert()``
executemany (SQLite ~110k rows/s, Postgres ~90k rows/s for span rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from keel.core.tracing import SpanRecord, TraceRecord
from keel.store.column_types import dump_json, quantize, to_billionths
from keel.store.schema import spans, traces

# Rows per INSERT statement. The driver keeps each distinct statement prepared, on every pooled
# connection the writer has used, and a prepared statement's memory grows with its rows
# (SQLite 3.40, 17 span columns: 0.19 MB at 128 rows, 1.5 MB at 1,024, 2.9 MB at 1,927), while
# the cost per row once prepared is the same from 128 rows up (~0.6 µs). At 1,927 rows the
# statements one connection kept for both tables came to ~11 MB, appearing whenever the span
# queue first reached a new size; at 128 they stay under 1 MB.
MAX_ROWS_PER_STATEMENT = 128
# Row layouts: the column order of every tuple built below.
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "layer",
    "status",
    "status_message",
    "start_ns",
    "end_ns",
    "input",
    "output",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "model",
    "model_version",
    "attributes",
)
TRACE_COLUMNS = (
    "trace_id",
    "correlation_id",
    "name",
    "pipeline",
    "pipeline_version",
    "label",
    "caller",
    "status",
    "error_code",
    "decision",
    "start_ns",
    "end_ns",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)


class MultiRowInsert:
    """SQLite: ``INSERT … VALUES (…), (…), … ON CONFLICT DO NOTHING``, up to 128 rows each.

    As fast as ``executemany`` here, with one statement (one GIL release in the driver) per
    chunk instead of one per row, so the writer thread is not stuck re-acquiring the GIL
    from busy request threads after every row.
    """

    def __init__(self, dialect: Dialect, table: sa.Table, columns: Sequence[str]) -> None:
        if dialect.paramstyle != "qmark":
            msg = f"multi-row insert is written for SQLite's qmark style, not {dialect.paramstyle}"
            raise NotImplementedError(msg)
        quote = dialect.identifier_preparer.quote
        version = getattr(dialect.loaded_dbapi, "sqlite_version_info", (3, 0, 0))
        max_parameters = 32766 if version >= (3, 32) else 999
        # Identifiers come from schema.py and are quoted; every value is a bound parameter.
        self._head = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "  # noqa: S608
        )
        self._row = f"({', '.join('?' for _ in columns)})"
        self.rows_per_statement = min(MAX_ROWS_PER_STATEMENT, max_parameters // len(columns))
        self._full = self.sql(self.rows_per_statement)

    def sql(self, rows: int) -> str:
        """The statement text for ``rows`` rows."""
        return f"{self._head}{', '.join([self._row] * rows)} ON CONFLICT DO NOTHING"

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        start = 0
        for size in self.plan(len(rows)):
            sql = self._full if size == self.rows_per_statement else self.sql(size)
            chunk = rows[start : start + size]
            conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
            start += size

    def plan(self, count: int) -> list[int]:
        """Statement sizes covering ``count`` rows: full statements, then the remainder split
        into powers of two. The driver caches one prepared statement per distinct text, so
        this bounds them to eight instead of one per remainder length (which grew the
        process by hundreds of MB under load)."""
        full, rest = divmod(count, self.rows_per_statement)
        sizes = [self.rows_per_statement] * full
        bit = 1 << max(rest.bit_length() - 1, 0)
        while rest:
            if rest >= bit:
                sizes.append(bit)
                rest -= bit
            bit >>= 1
        return sizes


class CopyInsert:
    """Postgres: ``COPY`` the rows into a session temp table, then one
    ``INSERT … SELECT … ON CONFLICT DO NOTHING``; COPY skips per-row statement overhead."""

    def __init__(self, dialect: Dialect, table: sa.Table, columns: Sequence[str]) -> None:
        quote = dialect.identifier_preparer.quote
        target = quote(table.name)
        stage = quote(f"keel_stage_{table.name}")
        names = ", ".join(quote(c) for c in columns)
        self._create = (
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target}) ON COMMIT DELETE ROWS"
        )
        self._copy = f"COPY {stage} ({names}) FROM STDIN"
        self._insert = (
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        driver_connection: Any = conn.connection.driver_connection
        dbapi = conn.dialect.loaded_dbapi
        try:
            with driver_connection.cursor() as cursor:
                cursor.execute(self._create)
                with cursor.copy(self._copy) as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(self._insert)
        except dbapi.Error as exc:
            # Raised by the driver directly: wrap it as SQLAlchemy would have.
            raise sa.exc.DBAPIError.instance(
                self._copy, None, exc, dbapi.Error, dialect=conn.dialect
            ) from exc


class BulkWriter:
    """Encodes span and trace records as rows for one dialect and inserts them in bulk."""

    def __init__(self, dialect: Dialect) -> None:
        kind = CopyInsert if dialect.name == "postgresql" else MultiRowInsert
        self.spans = kind(dialect, spans, SPAN_COLUMNS)
        self.traces = kind(dialect, traces, TRACE_COLUMNS)
        self._cost: Callable[[Decimal], Any] = (
            to_billionths if dialect.name == "sqlite" else quantize
        )

    def span_rows(self, records: Sequence[SpanRecord]) -> list[tuple[Any, ...]]:
        cost = self._cost
        return [
            (
                r.trace_id,
                r.span_id,
                r.parent_span_id,
                r.name,
                r.layer,
                r.status,
                r.status_message,
                r.start_ns,
                r.end_ns,
                r.input,
                r.output,
                r.input_tokens,
                r.output_tokens,
                cost(r.cost_usd) if r.cost_usd else 0,
                r.model,
                r.model_version,
                dump_json(r.attributes),
            )
            for r in records
        ]

    def trace_rows(self, records: Sequence[TraceRecord]) -> list[tuple[Any, ...]]:
        cost = self._cost
        return [
            (
                r.trace_id,
                r.correlation_id,
                r.name,
                r.pipeline,
                r.pipeline_version,
                r.label,
                r.caller,
                r.status,
                r.error_code,
                r.decision,
                r.start_ns,
                r.end_ns,
                r.input_tokens,
                r.output_tokens,
                cost(r.cost_usd) if r.cost_usd else 0,
            )
            for r in records
        ]
