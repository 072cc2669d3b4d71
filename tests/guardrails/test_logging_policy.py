"""Per-layer logging policy: redacted, hashed and dropped payloads never reach the store or an
OTLP collector; retention purges traces and layer payloads."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from keel.core.errors import KeelError, NotFoundError
from keel.pipeline.loader import spec_from_data
from keel.retention import apply_retention
from keel.runtime import Runtime
from keel.settings import KeelSettings
from keel.store.schema import spans, traces

from ..cli.test_cli import keel

pytestmark = pytest.mark.integration

EMAIL = "jane.roe@example.org"
CARD = "4111 1111 1111 1111"
QUESTION = f"Charge {CARD} and mail {EMAIL}"


class Collector(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.bodies = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", server.bodies  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def make_runtime(home: Path, endpoint: str | None = None) -> Runtime:
    exporters = ["store", "otlp"] if endpoint else ["store"]
    telemetry: dict[str, Any] = {"exporters": exporters, "schedule_delay_ms": 10}
    if endpoint:
        telemetry["otlp_endpoint"] = endpoint
    return Runtime(
        KeelSettings(home=home, providers={"default_model": "testing:echo"}, telemetry=telemetry)
    )


def spec(logging: dict[str, Any], name: str = "private") -> dict[str, Any]:
    return {"name": name, "prompt": {"user": "{{ q }}"}, "logging": logging}


def run(runtime: Runtime, data: dict[str, Any], question: str = QUESTION) -> str:
    pushed = runtime.catalog.push(spec_from_data(data))
    compiled = runtime.catalog.compiled(pushed.name, pushed.version)
    return asyncio.run(runtime.runner.run(compiled, {"q": question})).trace_id


def stored_text(runtime: Runtime) -> str:
    with runtime.store.engine.connect() as conn:
        rows = conn.execute(sa.select(spans)).all() + conn.execute(sa.select(traces)).all()
    return " ".join(str(tuple(row)) for row in rows)


def layer_payloads(runtime: Runtime, trace_id: str) -> dict[str, tuple[Any, Any]]:
    with runtime.store.engine.connect() as conn:
        rows = conn.execute(sa.select(spans).where(spans.c.trace_id == trace_id)).all()
    return {row.layer: (row.input, row.output) for row in rows}


def test_redacted_values_reach_neither_the_store_nor_otlp(
    tmp_path: Path, collector: tuple[str, list[bytes]]
) -> None:
    endpoint, bodies = collector
    runtime = make_runtime(tmp_path / "home", endpoint)
    try:
        run(runtime, spec({"default": "redacted"}))
        runtime.flush()
        exported = b"".join(bodies)
        assert b"[EMAIL_ADDRESS]" in exported and b"[CREDIT_CARD]" in exported
        assert EMAIL.encode() not in exported and CARD.encode() not in exported
        stored = stored_text(runtime)
        assert "[EMAIL_ADDRESS]" in stored
        assert EMAIL not in stored and CARD not in stored
        # the same run without a policy does export them: the check above can fail
        run(runtime, spec({}, name="open"))
        runtime.flush()
        assert EMAIL.encode() in b"".join(bodies)
    finally:
        runtime.close()


def test_modes_per_layer(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "home")
    policy = {
        "layers": {
            "preprocess": {"input": "hashed", "output": "dropped"},
            "model": {"input": "redacted", "output": "redacted"},
        },
    }
    try:
        trace_id = run(runtime, spec(policy))
        runtime.flush()
        payloads = layer_payloads(runtime, trace_id)
        hashed = "sha256:" + hashlib.sha256(orjson.dumps({"q": QUESTION})).hexdigest()
        assert orjson.loads(payloads["preprocess"][0]) == hashed
        assert payloads["preprocess"][1] is None
        assert EMAIL not in payloads["model"][0] and "[EMAIL_ADDRESS]" in payloads["model"][1]
        assert EMAIL in payloads["prompt"][1]  # layers without a rule stay raw
    finally:
        runtime.close()


def test_retention_deletes_old_traces_and_clears_layer_payloads(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "home")
    try:
        short = run(runtime, spec({"retention_days": 30}, name="short"))
        layered = run(runtime, spec({"layers": {"model": {"retention_days": 7}}}, name="layered"))
        forever = run(runtime, spec({}, name="forever"))
        runtime.flush()
        store = runtime.store
        report = apply_retention(store, None, now=datetime.now(UTC) + timedelta(days=10))
        assert report.traces_deleted == 0 and report.payloads_cleared == 1
        assert layer_payloads(runtime, layered)["model"] == (None, None)
        assert layer_payloads(runtime, layered)["prompt"][0] is not None
        report = apply_retention(store, None, now=datetime.now(UTC) + timedelta(days=31))
        assert report.traces_deleted == 1
        with pytest.raises(NotFoundError):
            store.traces.get(short)
        assert store.traces.get(forever)[0] is not None
        apply_retention(store, 60, now=datetime.now(UTC) + timedelta(days=61))
        with pytest.raises(NotFoundError):
            store.traces.get(forever)
    finally:
        runtime.close()


def test_retention_apply_from_the_cli(keel_home: Path) -> None:
    runtime = make_runtime(keel_home)
    try:
        run(runtime, spec({"retention_days": 0.000001}, name="brief"))  # ~0.09 s
        runtime.flush()
        time.sleep(0.2)
    finally:
        runtime.close()
    code, out, err = keel("retention", "apply", "--json")
    assert code == 0, err
    assert orjson.loads(out)["traces_deleted"] == 1


def test_error_messages_quoting_the_input_are_redacted_too(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path / "home")
    data = spec({"default": "redacted"}, name="strict")
    data["input"] = {"schema": {"type": "object", "properties": {"q": {"maxLength": 5}}}}
    try:
        with pytest.raises(KeelError) as info:
            run(runtime, data)
        assert EMAIL in info.value.message  # the caller sees what they sent ...
        runtime.flush()
        stored = stored_text(runtime)
        assert "input_schema_violation" in stored and "[EMAIL_ADDRESS]" in stored
        assert EMAIL not in stored and CARD not in stored  # ... the store does not
    finally:
        runtime.close()
