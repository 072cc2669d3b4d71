"""The shipped Prometheus rules and Grafana dashboard only use metrics a real Keel server
exports (read from its /metrics after real requests), and are well formed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from keel.pipeline.loader import spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings

from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "keel-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "keel.json"
METRIC = re.compile(r"\b(keel_[a-z0-9_]+)")
RECORDED = re.compile(r"\b(keel:[a-z0-9_:]+)")
DURATION = re.compile(r"^\d+[smhdw]$")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
SPEC = {
    "name": "triage",
    "prompt": {"user": "{{ q }}"},
    "model": {"id": "testing:echo"},
    "guardrails": {"input": [{"scanner": "secrets", "action": "block"}]},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series name a live server exports after answering, failing and blocking."""
    home = tmp_path_factory.mktemp("deploy")
    settings = KeelSettings(
        home=home,
        providers={"default_model": "testing:echo", "allow_remote": False},
        auth={"admin_key": ADMIN_KEY},
    )
    runtime = Runtime(settings)
    runtime.catalog.push(spec_from_data(SPEC))
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    try:
        with LiveServer(runtime) as live, httpx.Client(base_url=live.url, headers=headers) as http:
            assert http.post("/v1/pipelines/triage/invoke", json={"input": {"q": "hi"}}).is_success
            blocked = {"q": "my key is AKIAIOSFODNN7EXAMPLE"}
            assert (
                http.post("/v1/pipelines/triage/invoke", json={"input": blocked}).status_code == 422
            )
            http.post("/v1/chat/completions", json={"model": "testing:echo", "messages": [
                {"role": "user", "content": "hi"}]})  # fmt: skip
            text = http.get("/metrics").text
    finally:
        runtime.close()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total")
            names |= {base + suffix for suffix in SUFFIXES.get(kind, ("",))}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    assert "keel_requests_total" in names and "keel_guardrail_rules_fired_total" in names
    return names


def _balanced(expr: str) -> bool:
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for ch in expr:
        if ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] -= 1
            if depth[closing[ch]] < 0:
                return False
    return all(v == 0 for v in depth.values())


def test_prometheus_rules_are_valid_and_use_exported_metrics(exported: set[str]) -> None:
    doc = yaml.safe_load(RULES.read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    alerts = [rule for rule in rules if "alert" in rule]
    assert len(alerts) >= 10 and len(recorded) >= 21
    names = [rule.get("alert") or rule.get("record") for rule in rules]
    assert len(names) == len(set(names)), "duplicate rule names"
    for rule in rules:
        expr = rule["expr"]
        assert _balanced(expr), f"unbalanced brackets in {rule}"
        unknown = set(METRIC.findall(expr)) - exported
        assert not unknown, (
            f"{names[rules.index(rule)]} uses metrics Keel does not export: {unknown}"
        )
        assert set(RECORDED.findall(expr)) <= recorded
        for window in re.findall(r"\[([^\]]+)\]", expr):
            assert DURATION.match(window), f"bad range {window!r}"
    for alert in alerts:
        assert alert["labels"]["severity"] in ("page", "ticket")
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
        assert "for" not in alert or DURATION.match(alert["for"])
    burn = [a for a in alerts if "BudgetBurn" in a["alert"]]
    assert any("14.4" in a["expr"] for a in burn) and any("6 *" in a["expr"] for a in burn)


def test_grafana_panels_query_exported_metrics(exported: set[str]) -> None:
    doc = json.loads(DASHBOARD.read_text())
    recorded = {
        rule["record"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    panels = doc["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            expr = target["expr"]
            assert _balanced(expr)
            metrics = set(METRIC.findall(expr))
            assert metrics or RECORDED.findall(expr), f"{panel['title']!r} queries no Keel metric"
            assert metrics <= exported, f"{panel['title']!r}: {metrics - exported} not exported"
            assert set(RECORDED.findall(expr)) <= recorded
    [variable] = doc["templating"]["list"]
    assert set(METRIC.findall(variable["definition"])) <= exported
