"""API keys on a live server: 401/403/429 with stable codes, scopes, limits, audit, caller."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keel.gateway.keys import KeyService
from keel.runtime import Runtime

from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

HELLO = {"model": "testing:echo", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    return {}


@pytest.fixture
def admin(live: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=live.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    )


def new_key(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    response = admin.post("/api/keys", json={"name": "t", **body})
    assert response.status_code == 201, response.text
    return response.json()


def call(
    live: LiveServer, key: str | None, path: str = "/v1/chat/completions", body: Any = HELLO
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(live.url + path, json=body, headers=headers, timeout=10)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code
    return body


def test_health_is_open_everything_else_needs_a_key(live: LiveServer) -> None:
    assert httpx.get(live.url + "/healthz").status_code == 200
    assert httpx.get(live.url + "/readyz").status_code == 200
    missing = call(live, None)
    error(missing, 401, "auth_required")
    assert missing.headers["www-authenticate"] == "Bearer"
    error(httpx.get(live.url + "/api/pipelines"), 401, "auth_required")
    error(httpx.get(live.url + "/v1/models"), 401, "auth_required")
    error(call(live, "keel_nope_nope"), 401, "key_invalid")


def test_keys_are_shown_once_stored_hashed_and_revocable(
    live: LiveServer, admin: httpx.Client, runtime: Runtime
) -> None:
    created = new_key(admin, role="service", groups=["sales", "emea"])
    secret = created["key"]
    assert secret.startswith(f"keel_{created['id']}_")
    listed = admin.get("/api/keys").json()["keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and secret not in str(listed)
    assert runtime.store.keys.by_hash(secret) is None  # only the hash is stored
    principal = KeyService(runtime.store, runtime.settings.auth).authenticate(secret)
    assert principal.groups == ("sales", "emea") and principal.role == "service"
    assert call(live, secret).status_code == 200
    assert admin.delete(f"/api/keys/{created['id']}").status_code == 200
    error(call(live, secret), 401, "key_revoked")
    actions = [(e["action"], e["target"]) for e in admin.get("/api/audit").json()["entries"]]
    assert actions[:2] == [("key.revoke", created["id"]), ("key.create", created["id"])]


def test_roles(live: LiveServer, admin: httpx.Client) -> None:
    service = new_key(admin, role="service")["key"]
    developer = new_key(admin, role="developer")["key"]
    error(
        httpx.get(live.url + "/api/pipelines", headers={"authorization": f"Bearer {service}"}),
        403,
        "role_denied",
    )
    ok = httpx.get(live.url + "/api/pipelines", headers={"authorization": f"Bearer {developer}"})
    assert ok.status_code == 200
    error(
        httpx.get(live.url + "/api/keys", headers={"authorization": f"Bearer {developer}"}),
        403,
        "role_denied",
    )
    error(admin.post("/api/keys", json={"name": "x", "role": "root"}), 422, "role_invalid")


def test_scopes_limit_models_and_pipelines(live: LiveServer, admin: httpx.Client) -> None:
    key = new_key(admin, models=["testing:*"], pipelines=["summarize"])["key"]
    assert call(live, key).status_code == 200
    error(call(live, key, body={**HELLO, "model": "openai:gpt-4o-mini"}), 403, "scope_denied")
    error(call(live, key, body={**HELLO, "model": "pipeline/support-triage"}), 403, "scope_denied")
    invoke = call(
        live, key, "/v1/pipelines/support-triage/invoke", {"input": {"subject": "a", "body": "b"}}
    )
    error(invoke, 403, "scope_denied")
    summarize = {
        "model": "pipeline/summarize",
        "messages": [{"role": "user", "content": '{"text": "hi"}'}],
    }
    assert call(live, key, body=summarize).status_code == 200


def test_requests_per_minute_refuse_with_retry_after(live: LiveServer, admin: httpx.Client) -> None:
    key = new_key(admin, limits={"rpm": 2})["key"]
    assert [call(live, key).status_code for _ in range(2)] == [200, 200]
    refused = call(live, key)
    error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_token_budget_refuses_once_used_up(live: LiveServer, admin: httpx.Client) -> None:
    key = new_key(admin, limits={"budget_tokens": 5, "budget_period": "day"})["key"]
    first = call(live, key)
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] >= 5
    body = error(call(live, key), 429, "budget_exceeded")
    assert "budget_tokens" in body["message"]


def test_the_caller_is_on_every_trace(
    live: LiveServer, admin: httpx.Client, runtime: Runtime
) -> None:
    created = new_key(admin, name="billing-bot")
    answer = call(live, created["key"])
    invoked = call(
        live,
        created["key"],
        "/v1/pipelines/summarize/invoke",
        {"input": {"text": "Keel wraps models."}},
    )
    runtime.flush()
    for trace_id in (answer.headers["x-keel-trace-id"], invoked.json()["trace_id"]):
        trace, _ = runtime.store.traces.get(trace_id)
        assert trace is not None
        assert trace.caller == f"key:{created['id']}:billing-bot"


def test_pipeline_pushes_and_label_moves_are_audited(
    live: LiveServer, admin: httpx.Client, runtime: Runtime
) -> None:
    developer = new_key(admin, name="dev", role="developer")
    client = httpx.Client(
        base_url=live.url, headers={"authorization": f"Bearer {developer['key']}"}
    )
    version = runtime.catalog.resolve("summarize").version
    moved = client.put("/api/pipelines/summarize/labels/staging", json={"version": version})
    assert moved.status_code == 200, moved.text
    entries = admin.get("/api/audit").json()["entries"]
    assert entries[0]["action"] == "label.set"
    assert entries[0]["actor"] == f"key:{developer['id']}:dev"
    assert entries[0]["target"] == "summarize/staging"
    assert entries[0]["details"]["version"] == version
