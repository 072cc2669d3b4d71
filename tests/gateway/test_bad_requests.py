"""Bad chat requests get a 4xx with the JSON error envelope and a stable code."""

from __future__ import annotations

import httpx
import pytest

from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "hi"}]


def post(live: LiveServer, body: object = None, **kwargs: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    return httpx.post(
        live.url + "/v1/chat/completions", json=body, headers=headers, timeout=10, **kwargs
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "nope", "messages": HELLO}, 404, "model_not_found"),
        ({"model": "ghost:model", "messages": HELLO}, 404, "model_not_found"),
        ({"model": "pipeline/ghost", "messages": HELLO}, 404, "pipeline_not_found"),
        ({"messages": HELLO}, 400, "request_invalid"),
        ({"model": "testing:echo", "messages": []}, 400, "messages_invalid"),
        (
            {"model": "testing:echo", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "messages_invalid",
        ),
        ({"model": "testing:echo", "messages": [{"role": "user"}]}, 400, "messages_invalid"),
        (
            {"model": "testing:echo", "messages": HELLO, "temperature": "hot"},
            400,
            "request_invalid",
        ),
        ({"model": "testing:echo", "messages": HELLO, "tools": "all"}, 400, "tools_invalid"),
        ([1, 2], 400, "request_invalid"),
    ],
)
def test_malformed_requests(live: LiveServer, body: object, status: int, code: str) -> None:
    response = post(live, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["request_id"] == response.headers["x-request-id"]


def test_a_body_that_is_not_json(live: LiveServer) -> None:
    response = post(live, content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_not_json"


def test_an_oversized_body_is_refused(live: LiveServer) -> None:
    big = "x" * (live.runtime.settings.gateway.max_body_bytes + 1)
    response = post(live, {"model": "testing:echo", "messages": [{"role": "user", "content": big}]})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
