"""The review queue on a live server: 202 and poll, decisions audited, timeouts, webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from keel.core.messages import GenerationParams, Message
from keel.providers.testing import TestingProvider
from keel.runtime import Runtime

from ..webhook_receiver import receiver

pytestmark = pytest.mark.integration


def classify(messages: Sequence[Message], params: GenerationParams) -> str:
    text = messages[-1].content
    confidence = 0.95 if "refund" in text else 0.3
    return json.dumps({"label": "billing", "confidence": confidence})


def spec(review: dict[str, Any], output_rules: list[dict[str, Any]] | None = None) -> dict:
    return {
        "name": "held",
        "prompt": {"user": "{{ question }}"},
        "model": {"id": "testing:classify"},
        "output": {"type": "label", "labels": ["billing", "other"], "default_decision": "human"},
        "guardrails": {"output": output_rules or [], "review": review},
    }


@pytest.fixture
def guardrail_settings() -> dict[str, Any]:
    # The webhook receiver in these tests listens on loopback, which is refused by default
    # (see test_webhook_targets.py): allowed here explicitly.
    return {"webhook_allow_private": True}


@pytest.fixture
def held(client: httpx.Client, testing_provider: TestingProvider) -> httpx.Client:
    testing_provider.function("classify", classify)
    assert client.post("/api/pipelines", json=spec({"below_confidence": 0.8})).status_code == 201
    return client


def ask(client: httpx.Client, question: str) -> httpx.Response:
    return client.post("/v1/pipelines/held/invoke", json={"input": {"question": question}})


def test_confident_answers_pass_and_unsure_ones_are_held(held: httpx.Client) -> None:
    assert ask(held, "refund please").status_code == 200
    response = ask(held, "something odd")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending" and response.headers["location"] == body["poll"]
    polled = held.get(body["poll"]).json()
    assert polled["status"] == "pending" and "result" not in polled
    item = held.get(f"/api/reviews/{body['review_id']}").json()
    assert item["reasons"] == ["confidence:0.3<0.8"]
    assert item["result"]["decision"]["label"] == "billing"


def test_approve_releases_the_answer_and_is_audited(held: httpx.Client, runtime: Runtime) -> None:
    review_id = ask(held, "odd").json()["review_id"]
    listed = held.get("/api/reviews").json()["reviews"]
    assert [r["review_id"] for r in listed] == [review_id]
    decided = held.post(f"/api/reviews/{review_id}/approve", json={"reviewer": "ana"})
    assert decided.status_code == 200, decided.text
    polled = held.get(f"/v1/reviews/{review_id}").json()
    assert polled["status"] == "approved"
    assert polled["decided_by"].startswith("key:") and polled["decided_by"].endswith(" as ana")
    assert polled["result"]["decision"]["label"] == "billing"
    audit = runtime.store.audit.list()[0]
    assert (audit.actor, audit.action, audit.target) == (
        polled["decided_by"],
        "review.approve",
        review_id,
    )
    again = held.post(f"/api/reviews/{review_id}/reject", json={"reviewer": "bo"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "review_decided"


def test_edit_then_approve_and_reject_hides_the_answer(held: httpx.Client) -> None:
    first, second = ask(held, "odd").json()["review_id"], ask(held, "odd").json()["review_id"]
    empty = held.post(f"/api/reviews/{first}/edit", json={"reviewer": "ana"})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "edit_empty"
    edited = {"reviewer": "ana", "text": "Routed to billing.", "output": {"label": "other"}}
    assert held.post(f"/api/reviews/{first}/edit", json=edited).status_code == 200
    polled = held.get(f"/v1/reviews/{first}").json()
    assert polled["status"] == "edited"
    assert polled["result"]["text"] == "Routed to billing."
    assert polled["result"]["output"] == {"label": "other"}
    assert held.post(f"/api/reviews/{second}/reject", json={"reviewer": "bo"}).status_code == 200
    rejected = held.get(f"/v1/reviews/{second}").json()
    assert rejected["status"] == "rejected" and "result" not in rejected
    assert held.post("/api/reviews/nope/approve", json={"reviewer": "x"}).status_code == 404
    # no display name is needed (the key identifies the reviewer); a decided item stays decided
    again = held.post(f"/api/reviews/{first}/approve", json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "review_decided"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with receiver() as hook:
        yield hook.url, hook.received


def wait_for(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_output_rule_review_timeout_default_and_webhook(
    client: httpx.Client,
    testing_provider: TestingProvider,
    runtime: Runtime,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    refuse = {"on": False}

    def model(messages: Sequence[Message], params: GenerationParams) -> str:
        return "I'm sorry, I can't help with that." if refuse["on"] else classify(messages, params)

    testing_provider.function("classify", model)
    review = {"timeout_s": 0.2, "default_action": "approve", "webhook": url}
    rules = [{"scanner": "refusal", "action": "review", "threshold": 0.0}]
    assert client.post("/api/pipelines", json=spec(review, rules)).status_code == 201
    # threshold 0 still needs a score > 0: a plain answer is not held
    assert ask(client, "refund please").status_code == 200
    refuse["on"] = True
    review_id = ask(client, "hm").json()["review_id"]
    time.sleep(0.3)
    polled = client.get(f"/v1/reviews/{review_id}").json()
    assert polled["status"] == "approved" and polled["decided_by"] == "system:timeout"
    assert runtime.store.audit.list()[0].actor == "system:timeout"
    second = ask(client, "hm").json()["review_id"]
    client.post(f"/api/reviews/{second}/reject", json={"reviewer": "ana", "note": "rude"})
    wait_for(lambda: any(r["review_id"] == second for r in received))
    sent = next(r for r in received if r["review_id"] == second)
    assert sent["status"] == "rejected" and "result" not in sent


def test_the_server_sweeps_overdue_items_on_its_own(
    tmp_path: Any, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    from keel.settings import KeelSettings

    from .conftest import ADMIN_KEY, LiveServer

    url, received = webhook
    settings = KeelSettings(
        home=tmp_path / "sweep",
        providers={"default_model": "testing:echo", "allow_remote": False},
        guardrails={"review_sweep_seconds": 0.05, "webhook_allow_private": True},
        auth={"admin_key": ADMIN_KEY},
    )
    runtime = Runtime(settings)
    provider = runtime.registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    provider.function("classify", classify)
    try:
        headers = {"authorization": f"Bearer {ADMIN_KEY}"}
        with (
            LiveServer(runtime) as live,
            httpx.Client(base_url=live.url, headers=headers) as client,
        ):
            review = {"below_confidence": 0.8, "timeout_s": 0.1, "webhook": url}
            assert client.post("/api/pipelines", json=spec(review)).status_code == 201
            review_id = ask(client, "odd").json()["review_id"]
            wait_for(lambda: any(r["review_id"] == review_id for r in received))
        item = runtime.store.reviews.get(review_id)
        assert (item.status, item.decided_by) == ("rejected", "system:timeout")
    finally:
        runtime.close()
