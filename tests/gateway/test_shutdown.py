"""Graceful shutdown of a real `keel serve` process: on SIGTERM the requests in flight (plain
and streaming) finish with their full answers, then the queued spans and the summed usage
are written to the store before the process exits."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.store import Store

from ..providers.mock_upstream import (
    MockUpstream,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_sse,
    slow_reply,
    split_bytes,
    sse_reply,
)
from ..server.conftest import ADMIN_KEY
from ..serving import free_port, start, wait_ready

pytestmark = pytest.mark.integration


def serve(home: Path, upstream: MockUpstream, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KEEL_HOME": str(home),
        "KEEL_AUTH__ADMIN_KEY": ADMIN_KEY,
        "KEEL_PROVIDERS__OPENAI__BASE_URL": upstream.base_url,
        "KEEL_PROVIDERS__OPENAI__API_KEY": "sk-upstream",
        "KEEL_PROVIDERS__ALLOW_REMOTE": "false",
        # Nothing is written on a schedule while the test runs: spans wait in the export
        # queue and usage in memory, so only the shutdown can have written them.
        "KEEL_TELEMETRY__SCHEDULE_DELAY_MS": "600000",
        "KEEL_TELEMETRY__MAX_EXPORT_BATCH_SIZE": "512",
        "KEEL_GATEWAY__USAGE_FLUSH_SECONDS": "3600",
        "KEEL_LOG_LEVEL": "warning",
    }
    config = home.parent / "keel.toml"
    config.write_text(
        "[providers.endpoints.streamer]\n"
        f'base_url = "{upstream.base_url}/stream"\n'
        'api_key = "sk-upstream"\n'
    )
    env["KEEL_CONFIG"] = str(config)
    proc = start(env, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", path="/healthz", timeout_s=60)
    except AssertionError:
        proc.kill()
        raise
    return proc


def test_sigterm_finishes_requests_in_flight_and_flushes_spans(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    pieces = ["one ", "two ", "three"]
    stream = sse_reply(split_bytes(openai_sse(openai_chunks(pieces)), 150), interval=0.15)
    upstream.script("/v1/chat/completions", slow_reply(1.0, json_reply(openai_completion("late"))))
    upstream.script("/v1/stream/chat/completions", stream)
    port = free_port()
    proc = serve(tmp_path / "home", upstream, port)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    answers: list[Any] = []
    streamed: list[httpx.Response] = []

    def call(content: str) -> None:
        body = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
        answers.append(httpx.post(url, json=body, headers=headers, timeout=30))

    def stream_call() -> None:
        body = {
            "model": "streamer:gpt-4o-mini",
            "messages": [{"role": "user", "content": "count"}],
            "stream": True,
        }
        streamed.append(httpx.post(url, json=body, headers=headers, timeout=30))

    try:
        callers = [threading.Thread(target=call, args=(f"q{i}",)) for i in range(3)]
        callers.append(threading.Thread(target=stream_call))
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 20
        while len(upstream.requests) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(upstream.requests) == 4, "the requests never reached the upstream"
        proc.send_signal(signal.SIGTERM)
        for caller in callers:
            caller.join(30)
        # uvicorn re-raises the signal once it has shut down cleanly
        assert proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["choices"][0]["message"]["content"] for a in answers} == {"late"}
    [stream_answer] = streamed
    assert stream_answer.status_code == 200
    assert "three" in stream_answer.text and stream_answer.text.rstrip().endswith("[DONE]")
    store = Store.open(f"sqlite:///{tmp_path / 'home' / 'keel.db'}")
    try:
        trace_ids = {a.headers["x-keel-trace-id"] for a in answers}
        stored = {t.trace_id for t in store.traces.list(limit=100)}
        assert trace_ids <= stored
        usage = {row.model: row.requests for row in store.usage.rows()}
        assert usage == {"openai:gpt-4o-mini": 3, "streamer:gpt-4o-mini": 1}
    finally:
        store.close()
