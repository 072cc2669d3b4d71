"""Alerts through the real server task: an SLO burn fires and resolves, drift monitors fire,
and a golden-set schedule catches a regression — each announced to a real local webhook."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from keel.core.dataset import DatasetItem
from keel.core.errors import ProviderMalformedResponse
from keel.core.messages import GenerationParams, Message
from keel.drift.simulate import NS, Traffic, spread, store_runs
from keel.pipeline.loader import spec_from_data
from keel.providers.testing import TestingProvider, last_user_text
from keel.runtime import Runtime
from keel.settings import KeelSettings

from ..server.conftest import ADMIN_KEY, LiveServer
from ..webhook_receiver import Receiver, receiver

pytestmark = pytest.mark.integration
DAY = 86400.0
SPEC = {
    "name": "triage",
    "input": {"schema": {"type": "object"}, "mapping": {"q": "q"}},
    "prompt": {"user": "{{ q }}"},
    "model": {"id": "testing:flaky"},
}


def _runtime(tmp_path: Path, hook: Receiver, monitoring: dict[str, Any]) -> Runtime:
    settings = KeelSettings(
        home=tmp_path / "home",
        providers={"default_model": "testing:echo", "allow_remote": False},
        telemetry={"schedule_delay_ms": 10},
        auth={"admin_key": ADMIN_KEY},
        monitoring={
            "evaluate_seconds": 0.2,
            "notifications": [
                {"url": hook.url, "format": "json", "name": "ops"},
                {"url": hook.url, "format": "slack", "name": "chat"},
            ],
            "allow_private_targets": True,
            "notify_backoff_s": 0.01,
        }
        | monitoring,
    )
    return Runtime(settings)


def _events(hook: Receiver, key: str) -> list[str]:
    """Events announced for ``key``: JSON bodies name them; Slack texts start with them."""
    found = []
    for body in hook.received:
        if body.get("alert", {}).get("key") == key:
            found.append(f"json:{body['event']}")
        elif f"] page: {key} " in body.get("text", "") or f"] ticket: {key} " in body.get(
            "text", ""
        ):
            found.append("slack:" + body["text"][1:].split("]")[0].lower())
    return sorted(found)


def _wait(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_an_slo_burn_fires_once_and_resolves(tmp_path: Path) -> None:
    state = {"fail": False}

    def flaky(messages: Sequence[Message], params: GenerationParams) -> str:
        if state["fail"]:
            raise ProviderMalformedResponse("scripted outage", provider="testing")
        return "fine"

    long_s, short_s = 20.0, 8.0
    rule = {
        "long_window_s": long_s,
        "short_window_s": short_s,
        "severity": "page",
        "budget_share": 2.0 * long_s / (30 * DAY),
    }  # factor 2 with the 30-day period
    slo = {"pipeline": "triage", "availability": 0.9}  # budget 10 %: page above 20 % bad
    with receiver() as hook:
        runtime = _runtime(tmp_path, hook, {"slos": [slo], "burn_rates": [rule], "min_events": 3})
        provider = runtime.registry.provider("testing")
        assert isinstance(provider, TestingProvider)
        provider.function("flaky", flaky)
        runtime.catalog.push(spec_from_data(SPEC))
        key = "slo:triage:availability"
        try:
            with (
                LiveServer(runtime) as live,
                httpx.Client(
                    base_url=live.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
                ) as client,
            ):
                for _ in range(4):
                    assert (
                        client.post(
                            "/v1/pipelines/triage/invoke", json={"input": {"q": "hi"}}
                        ).status_code
                        == 200
                    )
                time.sleep(0.6)
                assert _events(hook, key) == []  # healthy: nothing fires
                state["fail"] = True
                for _ in range(6):
                    assert (
                        client.post(
                            "/v1/pipelines/triage/invoke", json={"input": {"q": "hi"}}
                        ).status_code
                        == 502
                    )
                _wait(lambda: _events(hook, key) == ["json:firing", "slack:firing"])
                firing = client.get("/api/alerts", params={"status": "firing"}).json()["alerts"]
                assert [a["key"] for a in firing] == [key]
                assert firing[0]["severity"] == "page"
                slos = client.get("/api/slos").json()["slos"]
                assert slos[0]["key"] == key and slos[0]["firing"] is True
                time.sleep(1.0)  # several more evaluations while it keeps firing: no repeats
                assert _events(hook, key) == ["json:firing", "slack:firing"]
                state["fail"] = False
                _wait(lambda: len(_events(hook, key)) == 4)
                assert _events(hook, key) == [
                    "json:firing", "json:resolved", "slack:firing", "slack:resolved"
                ]  # fmt: skip
                history = client.get("/api/alerts", params={"status": "resolved"}).json()["alerts"]
                assert [a["key"] for a in history] == [key]
                deliveries = [
                    (n["target"], n["event"], n["ok"]) for n in history[0]["notifications"]
                ]
                assert sorted(deliveries) == [
                    ("chat", "firing", True),
                    ("chat", "resolved", True),
                    ("ops", "firing", True),
                    ("ops", "resolved", True),
                ]
                assert client.get("/api/alerts", params={"status": "firing"}).json()["alerts"] == []
                bad = client.get("/api/alerts", params={"status": "open"})
                assert bad.status_code == 422
                missing = client.get("/api/alerts/nope")
                assert missing.status_code == 404
                assert missing.json()["error"]["code"] == "alert_not_found"
                unknown = client.post("/api/drift/nobody/check")
                assert unknown.status_code == 404
                assert unknown.json()["error"]["code"] == "pipeline_not_found"
                check = client.post("/api/drift/triage/check", params={"window_seconds": 5})
                assert check.status_code == 200
                assert check.json()["input_drift"] is False  # too few runs: skipped
                assert "input_embedding" in check.json()["skipped"]
        finally:
            runtime.close()


def test_drift_monitors_fire_through_the_server(tmp_path: Path) -> None:
    now = time.time_ns()
    rng = np.random.default_rng(5)
    reference = spread(Traffic().samples(rng, 150), now - 3500 * NS, now - 700 * NS)
    drifted = Traffic(medical_share=0.6, model_version="gpt-4o-2024-11-20")
    current = spread(drifted.samples(rng, 80), now - 500 * NS, now - NS)
    monitor = {"pipeline": "triage", "window_seconds": 600, "reference_seconds": 3000,
               "interval_seconds": 3600}  # fmt: skip
    with receiver() as hook:
        runtime = _runtime(tmp_path, hook, {"drift": [monitor], "drift_alpha": 0.01})
        runtime.catalog.push(spec_from_data(SPEC))
        store_runs(runtime.store, reference + current, "triage")
        try:
            with LiveServer(runtime):
                _wait(lambda: len(hook.received) >= 4, timeout_s=60)
            keys = {a.key: a for a in runtime.store.alerts.list(status="firing")}
            assert set(keys) == {"drift:triage:input", "drift:triage:model_version"}
            assert "input_embedding" in keys["drift:triage:input"].summary
            assert keys["drift:triage:model_version"].details["new_model_versions"] == [
                "gpt-4o-2024-11-20"
            ]
        finally:
            runtime.close()


def test_a_scheduled_golden_set_catches_a_regression(tmp_path: Path) -> None:
    state = {"broken": False}

    def answer(messages: Sequence[Message], params: GenerationParams) -> str:
        text = last_user_text(messages)
        return "deny" if state["broken"] else ("approve" if "pays" in text else "deny")

    items = [DatasetItem(f"g{i}", {"q": f"Applicant {i} pays on time"}, expected="approve")
             for i in range(16)]  # fmt: skip
    golden = {"pipeline": "triage@production", "dataset": "golden", "interval_seconds": 1,
              "evaluators": ["exact"]}  # fmt: skip
    key = "golden:triage@production:golden"
    with receiver() as hook:
        runtime = _runtime(tmp_path, hook, {"golden": [golden]})
        provider = runtime.registry.provider("testing")
        assert isinstance(provider, TestingProvider)
        provider.function("flaky", answer)
        runtime.store.datasets.create_version("golden", items, source="test")
        pushed = runtime.catalog.push(spec_from_data(SPEC))
        runtime.catalog.set_label("triage", "production", pushed.version)
        try:
            with LiveServer(runtime):
                _wait(lambda: runtime.store.eval_runs.find(key) is not None, 60)
                state["broken"] = True
                _wait(lambda: "json:firing" in _events(hook, key), 60)
                state["broken"] = False
                _wait(lambda: "json:resolved" in _events(hook, key), 60)
            [episode] = runtime.store.alerts.list(kind="golden")
            assert "exact" in episode.summary and "regressed" in episode.summary
            assert episode.status == "resolved"
        finally:
            runtime.close()
