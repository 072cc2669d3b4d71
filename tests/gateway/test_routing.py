"""Routing rules on an alias: prompt length, metadata (tags, cost tier) and caller pick the
chain; the decision is on the trace."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keel.core.messages import Message
from keel.gateway.routing import route
from keel.settings import RouteRule

from ..providers.mock_upstream import MockUpstream, json_reply, openai_completion
from ..server.conftest import ADMIN_KEY, LiveServer

RULES = [
    RouteRule(models=["testing:echo"], metadata={"tier": "cheap"}),
    RouteRule(models=["backup:gpt-4o-mini"], min_prompt_chars=50),
    RouteRule(models=["openai:gpt-4o"], callers=["key:*:vip"]),
]
DEFAULT = ("openai:gpt-4o-mini",)


@pytest.mark.parametrize(
    ("text", "extra", "caller", "chain", "rule"),
    [
        ("short", {}, None, DEFAULT, None),
        ("short", {"metadata": {"tier": "cheap"}}, None, ("testing:echo",), 0),
        ("x" * 60, {}, None, ("backup:gpt-4o-mini",), 1),
        ("x" * 60, {"metadata": {"tier": "cheap"}}, None, ("testing:echo",), 0),
        ("short", {}, "key:ab12:vip", ("openai:gpt-4o",), 2),
        ("short", {"metadata": "not a mapping"}, "key:ab12:other", DEFAULT, None),
    ],
)
def test_first_matching_rule_wins(
    text: str, extra: dict[str, Any], caller: str | None, chain: tuple[str, ...], rule: int | None
) -> None:
    decision = route(RULES, DEFAULT, [Message("user", text)], extra, caller)
    assert (decision.chain, decision.rule) == (chain, rule)


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    rules = [
        {"models": ["testing:echo"], "metadata": {"tier": "cheap"}},
        {"models": ["backup:gpt-4o-mini"], "min_prompt_chars": 40},
    ]
    return {"aliases": {"auto": {"models": ["openai:gpt-4o-mini"], "routes": rules}}}


@pytest.mark.integration
def test_routing_decisions_reach_the_model_and_the_trace(
    live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script("/v1/chat/completions", json_reply(openai_completion("primary")))
    upstream.script("/v1/backup/chat/completions", json_reply(openai_completion("long one")))
    client = httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {ADMIN_KEY}"})

    def ask(text: str, **extra: Any) -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}
        return client.post("/v1/chat/completions", json=body)

    cheap = ask("hi", metadata={"tier": "cheap"})
    long = ask("y" * 45)
    plain = ask("hi")
    assert cheap.headers["x-keel-model"] == "testing:echo"
    assert long.json()["choices"][0]["message"]["content"] == "long one"
    assert plain.json()["choices"][0]["message"]["content"] == "primary"
    live.runtime.flush()
    routes = []
    for response in (cheap, long, plain):
        _, spans = live.runtime.store.traces.get(response.headers["x-keel-trace-id"])
        routes.append(spans[0].attributes["keel.route"])
    assert routes == ["rule 0", "rule 1", "default"]
