"""Usage is stored per key, pipeline and model; `/api/usage` and `keel usage` report it.

Cache hits bill nothing and count what they saved. Admin keys see every key's usage,
developer keys only their own.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..cli.test_cli import keel
from ..providers.mock_upstream import MockUpstream, json_reply, openai_completion
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

PRIMARY = "/v1/chat/completions"
# gpt-4o-mini list price: 12 tokens in at $0.15/M and 3 out at $0.60/M
ONE_ANSWER = Decimal("0.0000036")


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    return {"cache": {"enabled": True, "ttl_seconds": 60}}


def ask(live: LiveServer, key: str, content: str) -> httpx.Response:
    body = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        live.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def report(live: LiveServer, key: str, **params: str) -> httpx.Response:
    return httpx.get(
        live.url + "/api/usage",
        params=params,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_usage_per_key_with_cache_savings(
    keel_home: Path, live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script(PRIMARY, json_reply(openai_completion("answer")))
    created = httpx.post(
        live.url + "/api/keys",
        json={"name": "dev-team", "role": "developer"},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    ).json()
    assert ask(live, ADMIN_KEY, "hello").status_code == 200
    assert ask(live, ADMIN_KEY, "hello").headers["x-keel-cache"] == "hit"
    assert ask(live, created["key"], "other question").status_code == 200

    rows = report(live, ADMIN_KEY, group_by="key,model").json()["usage"]
    by_key = {row["key"]: row for row in rows}
    assert set(by_key) == {"settings", created["id"]}
    admin = by_key["settings"]
    assert (admin["requests"], admin["cache_hits"]) == (2, 1)
    assert (admin["input_tokens"], admin["output_tokens"]) == (12, 3)  # the hit billed none
    assert Decimal(admin["cost_usd"]) == ONE_ANSWER
    assert Decimal(admin["saved_usd"]) == ONE_ANSWER
    assert admin["model"] == "openai:gpt-4o-mini"
    dev = by_key[created["id"]]
    assert dev["key_name"] == "dev-team" and dev["requests"] == 1
    assert Decimal(dev["cost_usd"]) == ONE_ANSWER and Decimal(dev["saved_usd"]) == 0

    own = report(live, created["key"], group_by="key").json()["usage"]
    assert [row["key"] for row in own] == [created["id"]]

    code, out, err = keel("usage", "--by", "key", "--period", "month", "--json")
    assert code == 0, err
    assert {row["key"]: row["requests"] for row in json.loads(out)} == {
        "settings": 2,
        created["id"]: 1,
    }
    code, out, err = keel("usage", "--by", "pipeline")
    assert code == 0 and "0.0000072" in out.replace("\n", "")


def test_bad_report_parameters_get_clear_errors(keel_home: Path, live: LiveServer) -> None:
    bad_group = report(live, ADMIN_KEY, group_by="team")
    assert bad_group.status_code == 422
    assert bad_group.json()["error"]["code"] == "group_invalid"
    bad_time = report(live, ADMIN_KEY, since="last tuesday")
    assert bad_time.status_code == 422 and bad_time.json()["error"]["code"] == "time_invalid"
    assert report(live, ADMIN_KEY, period="week").status_code == 422
    code, _, err = keel("usage", "--period", "week")
    assert code == 1 and "period_invalid" in err and "Traceback" not in err
