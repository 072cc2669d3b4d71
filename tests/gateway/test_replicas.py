"""Two real `keel serve` processes sharing one SQLite store and the machine's Redis: a key's
rate limit and budget hold exactly across both."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from keel.gateway.keys import KeyService
from keel.settings import KeelSettings
from keel.store import Store

from .. import serving

pytestmark = pytest.mark.integration

ADMIN = "replica-admin-key-0123456789"
REDIS = "redis://127.0.0.1:6379/0"
HELLO = {"model": "testing:echo", "messages": [{"role": "user", "content": "hello there"}]}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_HOME": str(tmp_path / "home"),
        "KEEL_REDIS_URL": REDIS,
        "KEEL_AUTH__ADMIN_KEY": ADMIN,
        "KEEL_AUTH__KEY_CACHE_SECONDS": "0",
        "KEEL_PROVIDERS__DEFAULT_MODEL": "testing:echo",
        "KEEL_LOG_LEVEL": "warning",
    }


@pytest.fixture
def keys(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyService]:
    monkeypatch.setenv("KEEL_HOME", env["KEEL_HOME"])
    settings = KeelSettings()
    store = Store.open(settings.resolved_database_url)
    yield KeyService(store, settings.auth)
    store.close()


@pytest.fixture
def replicas(env: dict[str, str], keys: KeyService) -> Iterator[list[str]]:
    with serving.replicas(env) as urls:
        yield urls


def chat(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json=HELLO,
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )


def test_requests_per_minute_hold_exactly_across_replicas(
    replicas: list[str], keys: KeyService
) -> None:
    if time.time() % 60 > 50:  # keep the burst inside one minute window
        time.sleep(61 - time.time() % 60)
    _, key = keys.create("burst", "service", actor="test", limits={"rpm": 7})
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: chat(replicas[i % 2], key).status_code, range(20)))
    assert statuses.count(200) == 7
    assert statuses.count(429) == 13


def test_token_budget_holds_across_replicas(replicas: list[str], keys: KeyService) -> None:
    tokens = chat(replicas[0], ADMIN).json()["usage"]["total_tokens"]
    _, key = keys.create("budget", "service", actor="test", limits={"budget_tokens": 3 * tokens})
    statuses = [chat(replicas[i % 2], key).status_code for i in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
