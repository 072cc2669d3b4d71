"""Two real `keel serve` processes on one store: a deployment change made through one
replica's API is applied by the other within a second, over each announcement path —
Redis pub/sub, Postgres LISTEN/NOTIFY, and plain polling when neither is there."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.catalog import PipelineCatalog
from keel.store import Store
from tests import serving
from tests.deploy.conftest import PostgresServer, spec

pytestmark = pytest.mark.integration

ADMIN = "replica-deploy-admin-0123456789"
REDIS = "redis://127.0.0.1:6379/0"
AUTH = {"authorization": f"Bearer {ADMIN}"}


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["redis", "postgres", "polling"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    env = {
        **os.environ,
        "KEEL_HOME": str(tmp_path / "home"),
        "KEEL_AUTH__ADMIN_KEY": ADMIN,
        "KEEL_PROVIDERS__DEFAULT_MODEL": "testing:echo",
        "KEEL_LOG_LEVEL": "warning",
        "KEEL_DEPLOY__CONTROLLER": "false",
        # Only the announcement under test may deliver the change in time.
        "KEEL_DEPLOY__POLL_SECONDS": "30",
        "KEEL_DEPLOY__RESYNC_SECONDS": "30",
    }
    env.pop("KEEL_REDIS_URL", None)
    url = f"sqlite:///{tmp_path / 'home' / 'keel.db'}"
    if request.param == "redis":
        if not redis_reachable():
            pytest.skip(f"Redis not reachable at {REDIS}")
        env["KEEL_REDIS_URL"] = REDIS
        env["KEEL_DEPLOY__CHANNEL"] = f"keel-test:{secrets.token_hex(6)}:deployments"
    elif request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()
        env["KEEL_DATABASE_URL"] = url
    else:
        env["KEEL_DEPLOY__POLL_SECONDS"] = "0.5"
    return url, env


@pytest.fixture
def versions(setup: tuple[str, dict[str, str]]) -> tuple[str, str, str]:
    """(stable, candidate, a second candidate)."""
    store = Store.open(setup[0])
    try:
        catalog = PipelineCatalog(store, label_ttl=0)
        stable = catalog.push(spec(note="v1")).version
        candidate = catalog.push(spec(note="v2")).version
        second = catalog.push(spec(note="v3")).version
        catalog.set_label("triage", "production", stable)
    finally:
        store.close()
    return stable, candidate, second


@pytest.fixture
def replicas(
    setup: tuple[str, dict[str, str]], versions: tuple[str, str, str]
) -> Iterator[list[str]]:
    with serving.replicas(setup[1]) as urls:
        yield urls


def delay(url: str, change: dict[str, Any], gone: bool = False, limit: float = 10.0) -> float:
    """Seconds from a change's commit (its ``updated_at``) until the replica at ``url``
    applied it, by the replica's own clock of when it swapped its routing table in (the
    same machine's clock). ``gone``: the change ended the deployment."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        view = httpx.get(url + "/api/deployments/triage/routing", headers=AUTH, timeout=5).json()
        seen = view["deployment"]["revision"] if view["deployment"] else None
        if seen == (None if gone else change["revision"]):
            committed = datetime.fromisoformat(change["updated_at"]).timestamp()
            return float(view["applied_at"]) - committed
        time.sleep(0.02)
    return float("inf")


def answers(url: str, count: int = 10) -> set[str]:
    return {
        httpx.post(
            url + "/v1/pipelines/triage/invoke",
            json={"input": {"text": "hi"}},
            headers=AUTH,
            timeout=20,
        ).json()["version"]
        for _ in range(count)
    }


def test_a_change_through_one_replica_reaches_the_other_within_a_second(
    replicas: list[str], versions: tuple[str, str, str]
) -> None:
    first, second = replicas
    stable, candidate, other = versions
    started = httpx.post(
        first + "/api/deployments",
        json={
            "pipeline": "triage",
            "version": [candidate, other],
            "steps": "50,100",
            "interval": "1h",
        },
        headers=AUTH,
    )
    assert started.status_code == 201, started.text
    assert delay(second, started.json()) < 1.0
    # one candidate rolled back through the first replica: the second stops routing to it
    dropped = httpx.post(
        first + "/api/deployments/triage/rollback", json={"version": other}, headers=AUTH
    )
    assert dropped.status_code == 200, dropped.text
    assert delay(second, dropped.json()) < 1.0
    assert other not in answers(second, 30)
    paused = httpx.post(first + "/api/deployments/triage/pause", headers=AUTH).json()
    assert delay(second, paused) < 1.0
    rolled = httpx.post(first + "/api/deployments/triage/rollback", headers=AUTH)
    assert rolled.status_code == 200
    assert delay(second, rolled.json(), gone=True) < 1.0
    # Rolled back everywhere: the other replica answers from stable only.
    assert answers(second) == {stable}
