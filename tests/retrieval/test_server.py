"""A retrieval pipeline behind the HTTP API: citations in the invoke response, restricted
documents never served to a caller without groups, errors in the JSON envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keel.pipeline.loader import load_spec_dir, spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings

from ..conftest import EXAMPLES
from ..server.conftest import ADMIN_KEY, LiveServer
from ..server.test_api import assert_error, invoke
from .conftest import write_corpus

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = KeelSettings(
        home=tmp_path / "home",
        providers={"default_model": "testing:echo", "allow_remote": False},
        server={"label_cache_seconds": 0},
        auth={"admin_key": ADMIN_KEY},
    )
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def test_invoke_returns_citations_and_never_restricted_passages(
    runtime: Runtime, tmp_path: Path
) -> None:
    write_corpus(tmp_path)
    service = runtime.retrieval
    asyncio.run(service.ingest("keel-docs", tmp_path / "docs"))
    asyncio.run(service.ingest("keel-docs", tmp_path / "hr", ("hr",)))
    data = load_spec_dir(EXAMPLES / "docs-qa").model_dump(mode="json", by_alias=True)
    data["model"]["id"] = "testing:echo"
    runtime.catalog.push(spec_from_data(data))
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with (
        LiveServer(runtime) as live,
        httpx.Client(base_url=live.url, timeout=30, headers=admin) as admin_client,
    ):
        plain = admin_client.post("/api/keys", json={"name": "support-bot"}).json()["key"]
        hr = admin_client.post("/api/keys", json={"name": "hr-bot", "groups": ["hr"]}).json()
        as_hr = httpx.Client(
            base_url=live.url, timeout=30, headers={"authorization": f"Bearer {hr['key']}"}
        )
        client = httpx.Client(
            base_url=live.url, timeout=30, headers={"authorization": f"Bearer {plain}"}
        )
        ok = invoke(client, "docs-qa", {"question": "How long do refunds take?"})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["retrieval"] == {"collection": "keel-docs", "version": 2}
        assert body["citations"][0]["source"].endswith("billing.md")
        assert "five business days" in body["text"]

        secret = invoke(client, "docs-qa", {"question": "What is the executive base salary?"})
        assert secret.status_code == 200
        assert "742,000" not in secret.json()["text"]
        assert all("compensation" not in c["source"] for c in secret.json()["citations"])
        # the same question from a key in the `hr` group does reach the restricted document
        allowed = invoke(as_hr, "docs-qa", {"question": "What is the executive base salary?"})
        assert allowed.status_code == 200, allowed.text
        assert any("compensation" in c["source"] for c in allowed.json()["citations"])

        bad = invoke(client, "docs-qa", {"question": 42})
        assert_error(bad, 422, "input_schema_violation")

        data["name"] = "orphan"
        data["retrieval"]["collection"] = "missing"
        runtime.catalog.push(spec_from_data(data))
        assert_error(
            invoke(client, "orphan", {"question": "anything"}), 404, "collection_not_found"
        )
        client.close()
        as_hr.close()


def test_cached_pipeline_answers_never_cross_group_lines(tmp_path: Path) -> None:
    """With the response cache on, a restricted answer cached for an `hr` key is never
    served to a key without the group, and the cache still serves repeats within a group."""
    settings = KeelSettings(
        home=tmp_path / "cache-home",
        providers={"default_model": "testing:echo", "allow_remote": False},
        auth={"admin_key": ADMIN_KEY},
        gateway={"cache": {"enabled": True}},
    )
    runtime = Runtime(settings)
    try:
        write_corpus(tmp_path)
        asyncio.run(runtime.retrieval.ingest("keel-docs", tmp_path / "docs"))
        asyncio.run(runtime.retrieval.ingest("keel-docs", tmp_path / "hr", ("hr",)))
        data = load_spec_dir(EXAMPLES / "docs-qa").model_dump(mode="json", by_alias=True)
        data["model"]["id"] = "testing:echo"
        runtime.catalog.push(spec_from_data(data))
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        body = {
            "model": "pipeline/docs-qa",
            "messages": [{"role": "user", "content": "What is the executive base salary?"}],
            "input": {"question": "What is the executive base salary?"},
        }
        with LiveServer(runtime) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            keys = {
                name: http.post(
                    "/api/keys", json={"name": name, "groups": groups}, headers=admin
                ).json()["key"]
                for name, groups in (("hr-bot", ["hr"]), ("support-bot", []))
            }

            def ask(key: str) -> str:
                response = http.post(
                    "/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                )
                assert response.status_code == 200, response.text
                return response.json()["choices"][0]["message"]["content"]

            first_hr = ask(keys["hr-bot"])
            assert "742,000" in first_hr  # the hr key reaches the restricted passage
            assert ask(keys["hr-bot"]) == first_hr  # served again (from cache or not)
            assert "742,000" not in ask(keys["support-bot"])  # never from the hr cache entry
            hits = http.get("/metrics", headers=admin).text
        assert 'keel_cache_lookups_total{result="hit"} 1.0' in hits, (
            "the second hr request should have been a cache hit"
        )
    finally:
        runtime.close()
