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
from ..server.conftest import LiveServer
from ..server.test_api import assert_error, invoke
from .conftest import write_corpus

pytestmark = pytest.mark.integration


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = KeelSettings(
        home=tmp_path / "home",
        providers={"default_model": "testing:echo", "allow_remote": False},
        server={"label_cache_seconds": 0},
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
    with LiveServer(runtime) as live, httpx.Client(base_url=live.url, timeout=30) as client:
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

        bad = invoke(client, "docs-qa", {"question": 42})
        assert_error(bad, 422, "input_schema_violation")

        data["name"] = "orphan"
        data["retrieval"]["collection"] = "missing"
        runtime.catalog.push(spec_from_data(data))
        assert_error(
            invoke(client, "orphan", {"question": "anything"}), 404, "collection_not_found"
        )
