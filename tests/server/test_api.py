"""The HTTP API against a real server on an ephemeral port and a real SQLite store."""

from __future__ import annotations

import httpx
import pytest

from keel.core.errors import ProviderHTTPError
from keel.providers.testing import TestingProvider
from keel.runtime import Runtime

pytestmark = pytest.mark.integration

TICKET = {"subject": "Billing", "body": "I was charged twice this month"}
LAYERS = {"preprocess", "prompt", "model", "postprocess"}


def invoke(client: httpx.Client, name: str = "support-triage", data: object = TICKET, **kw):
    return client.post(f"/v1/pipelines/{name}/invoke", json={"input": data}, **kw)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def test_invoke_returns_a_decision_and_a_trace_id(client: httpx.Client) -> None:
    response = invoke(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"]["decision"] == "queue:billing"
    assert body["decision"]["reason"] == "confident"
    assert body["pipeline"] == "support-triage"
    assert body["model"] == "testing:triage"
    assert body["request_id"] == response.headers["x-request-id"] == body["trace_id"]


def test_unsure_model_goes_to_human_triage(client: httpx.Client) -> None:
    body = invoke(client, data={"subject": "Hm", "body": "something odd"}).json()
    assert body["decision"] == {
        "decision": "queue:human-triage",
        "label": "technical",
        "confidence": 0.41,
        "reason": "below_threshold",
    }


def test_trace_holds_four_layers_with_inputs_and_outputs(
    client: httpx.Client, runtime: Runtime
) -> None:
    trace_id = invoke(client).json()["trace_id"]
    runtime.flush()
    body = client.get(f"/api/traces/{trace_id}").json()
    assert body["trace"]["pipeline"] == "support-triage"
    assert body["trace"]["decision"] == "queue:billing"
    layers = {s["layer"]: s for s in body["spans"]}
    assert set(layers) >= LAYERS
    for layer in LAYERS:
        assert layers[layer]["input"] is not None, layer
        assert layers[layer]["output"] is not None, layer
        assert layers[layer]["duration_ms"] >= 0
    assert layers["preprocess"]["input"] == TICKET
    assert layers["model"]["model"] == "testing:triage"
    listed = client.get("/api/traces", params={"pipeline": "support-triage"}).json()["traces"]
    assert trace_id in [t["trace_id"] for t in listed]


def test_request_id_is_echoed_and_finds_the_trace(client: httpx.Client, runtime: Runtime) -> None:
    response = invoke(client, headers={"X-Request-ID": "order-7781"})
    assert response.headers["x-request-id"] == "order-7781"
    assert response.json()["request_id"] == "order-7781"
    runtime.flush()
    trace = client.get("/api/traces/order-7781").json()["trace"]
    assert trace["trace_id"] == response.json()["trace_id"]


def test_traceparent_sets_the_trace_id(client: httpx.Client) -> None:
    trace_hex = "0af7651916cd43dd8448eb211c80319c"
    response = invoke(client, headers={"traceparent": f"00-{trace_hex}-b7ad6b7169203331-01"})
    assert response.json()["trace_id"] == trace_hex
    assert response.headers["x-request-id"] == trace_hex


def test_malformed_request_id_is_refused(client: httpx.Client) -> None:
    assert_error(
        invoke(client, headers={"X-Request-ID": "bad id with spaces"}), 400, "request_id_invalid"
    )


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/pipelines/nope/invoke", "pipeline_not_found"),
        ("/v1/pipelines/support-triage/invoke?version=abcdef123456", "version_not_found"),
        ("/v1/pipelines/support-triage/invoke?label=staging", "label_not_found"),
    ],
)
def test_unknown_pipeline_version_or_label_is_404(
    client: httpx.Client, path: str, code: str
) -> None:
    assert_error(client.post(path, json={"input": TICKET}), 404, code)


def test_input_violating_the_schema_is_422(client: httpx.Client) -> None:
    error = assert_error(invoke(client, data={"subject": ""}), 422, "input_schema_violation")
    assert any("body" in p for p in error["details"]["problems"])


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"inputs": {}}', b'{"input": {}, "extra": 1}', b"[]"]
)
def test_malformed_request_bodies_are_422(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/v1/pipelines/support-triage/invoke",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 422, "request_invalid")


def test_provider_failure_is_a_clear_gateway_error(
    client: httpx.Client, runtime: Runtime, testing_provider: TestingProvider
) -> None:
    attempts = runtime.settings.gateway.retry.max_attempts  # retryable: tried this often
    testing_provider.scripted(
        "triage", [ProviderHTTPError("upstream exploded", upstream_status=500)] * attempts
    )
    response = invoke(client)
    error = assert_error(response, 502, "provider_server_error")
    runtime.flush()
    trace = client.get(f"/api/traces/{error['details']['trace_id']}").json()["trace"]
    assert (trace["status"], trace["error_code"]) == ("error", "provider_server_error")


def test_invalid_spec_push_stores_nothing(client: httpx.Client) -> None:
    before = client.get("/api/pipelines").json()
    bad = {"name": "support-triage", "prompt": {"user": "{% if %}"}}
    assert_error(client.post("/api/pipelines", json=bad), 422, "template_error")
    assert_error(client.post("/api/pipelines", json={"name": "x"}), 422, "spec_invalid")
    assert client.get("/api/pipelines").json() == before


def test_labels_point_invocations_at_versions(client: httpx.Client) -> None:
    described = client.get("/api/pipelines/summarize").json()
    version = described["versions"][0]["version"]
    moved = client.put("/api/pipelines/summarize/labels/staging", json={"version": version[:8]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == version
    body = invoke(client, "summarize", {"text": "Keel wraps models."}, params={"label": "staging"})
    assert body.json()["version"] == version
    assert body.json()["label"] == "staging"
    assert_error(
        client.put("/api/pipelines/summarize/labels/Bad Label", json={"version": version}),
        422,
        "label_invalid",
    )


def test_health_readiness_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["store"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/pipelines/{name}/invoke" in spec["paths"]
    assert "/api/traces/{trace_id}" in spec["paths"]


def test_unknown_route_uses_the_envelope(client: httpx.Client) -> None:
    assert_error(client.get("/nowhere"), 404, "route_not_found")
    assert_error(client.get("/api/traces/ffffffffffffffffffffffffffffffff"), 404, "trace_not_found")
