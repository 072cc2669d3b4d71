"""Review webhooks never reach this machine or a private network unless a setting allows it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from keel.review_queue import ReviewQueue
from keel.runtime import Runtime
from keel.store.reviews import ReviewItem

from ..webhook_receiver import Receiver, receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def spec(webhook: str) -> dict[str, Any]:
    return {
        "name": "hooked",
        "prompt": {"user": "{{ question }}"},
        "model": {"id": "testing:echo"},
        "guardrails": {
            "output": [{"scanner": "refusal", "action": "review"}],
            "review": {"webhook": webhook},
        },
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https:///no-host",
    ],
)
def test_push_refuses_internal_and_non_http_webhooks_by_default(
    client: httpx.Client, hook: Receiver, url: str
) -> None:
    response = client.post("/api/pipelines", json=spec(url.format(port=hook.port)))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "guardrail_invalid"
    assert "webhook" in error["message"]
    assert client.get("/api/pipelines/hooked").status_code == 404


def test_the_refusal_names_the_setting_that_allows_it(client: httpx.Client) -> None:
    error = client.post("/api/pipelines", json=spec("http://127.0.0.1/h")).json()["error"]
    assert "KEEL_GUARDRAILS__WEBHOOK_ALLOW_PRIVATE" in error["message"]


def item(webhook: str) -> ReviewItem:
    now = datetime.now(UTC)
    return ReviewItem(
        id="r1", pipeline="p", pipeline_version="v", trace_id="t", request_id="q",
        reasons=["rule:x"], result={"text": "held"}, created_at=now,
        deadline=now + timedelta(hours=1), default_action="reject", webhook=webhook,
        status="rejected",
    )  # fmt: skip


def test_delivery_resolves_the_name_and_refuses_a_loopback_answer(
    runtime: Runtime, hook: Receiver, loopback_host: str
) -> None:
    url = f"http://{loopback_host}:{hook.port}/hook"  # a name that passes the push-time check
    refusing = ReviewQueue(runtime.store)
    assert asyncio.run(refusing.notify(item(url))) is False  # its address is loopback
    assert hook.paths == []
    allowing = ReviewQueue(runtime.store, allow_private_webhooks=True)
    assert asyncio.run(allowing.notify(item(url))) is True
    assert hook.paths == ["/hook"]


def test_redirects_are_not_followed(runtime: Runtime) -> None:
    with receiver() as target, receiver(redirect=f"{target.url}/inside") as bouncer:
        queue = ReviewQueue(runtime.store, allow_private_webhooks=True)
        assert asyncio.run(queue.notify(item(bouncer.url))) is False
        assert bouncer.paths == ["/hook"]
        assert target.paths == []
