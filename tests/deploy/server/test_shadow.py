"""Shadow traffic through a real server: callers only ever get stable's answer; mirrored
requests run the candidate off the hot path and are stored as scored, linked pairs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx
import pytest

from keel.deploy.service import DeploymentService
from keel.deploy.shadow import MirrorJob, ShadowMirror
from keel.store.deployments import Pair

from .conftest import Deployed, build_runtime, invoke, start

pytestmark = pytest.mark.integration


@pytest.fixture(params=["process", "loop"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployed]:
    """Each test runs with the shadow in its worker process and on the server's loop."""
    built = build_runtime(tmp_path / "home", shadow_isolation=request.param)
    yield built
    built.runtime.close()


def wait_for_pairs(deployed: Deployed, deployment_id: str, count: int) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + 20
    while True:
        pairs = deployed.runtime.store.deployments.pairs(deployment_id)
        if len(pairs) >= count or time.monotonic() > deadline:
            return pairs
        time.sleep(0.05)


def test_shadow_answers_from_stable_and_stores_linked_pairs(
    client: httpx.Client, deployed: Deployed
) -> None:
    created = start(
        client,
        deployed.candidate,
        strategy="shadow",
        mirror=100,
        evaluator="contains:value=candidate",
    )
    assert created.status_code == 201, created.text
    deployment_id = created.json()["id"]
    answers = [invoke(client, f"q{i}").json() for i in range(12)]
    assert {a["version"] for a in answers} == {deployed.stable}
    assert {a["text"] for a in answers} == {"stable says hi"}  # never the shadow's output
    pairs = wait_for_pairs(deployed, deployment_id, 12)
    assert len(pairs) == 12
    assert {p.baseline_trace_id for p in pairs} == {a["trace_id"] for a in answers}
    assert all(p.baseline_score == 0.0 and p.candidate_score == 1.0 for p in pairs)
    deployed.runtime.flush()
    pair = pairs[0]
    traces = deployed.runtime.store.traces
    _, baseline = traces.get(pair.baseline_trace_id)
    deadline = time.monotonic() + 10  # a worker process writes the shadow's spans itself
    while traces.get(pair.candidate_trace_id)[0] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _, shadow = traces.get(pair.candidate_trace_id)
    b_root = next(s for s in baseline if s.layer == "pipeline")
    s_root = next(s for s in shadow if s.layer == "pipeline")
    assert b_root.attributes["keel.deploy.pair_id"] == s_root.attributes["keel.deploy.pair_id"]
    assert (b_root.attributes["keel.deploy.role"], s_root.attributes["keel.deploy.role"]) == (
        "stable",
        "shadow",
    )
    assert s_root.attributes["keel.pipeline.version"] == deployed.candidate


def test_a_failing_shadow_never_touches_the_primary_answer(
    client: httpx.Client, deployed: Deployed
) -> None:
    deployed.arms["candidate"].error_rate = 1.0
    created = client.post(
        "/api/deployments",
        json={
            "pipeline": "triage",
            "version": deployed.candidate,
            "strategy": "shadow",
            "mirror": 100,
        },
    )
    responses = [invoke(client) for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    pairs = wait_for_pairs(deployed, created.json()["id"], 5)
    assert {p.candidate_error for p in pairs} == {"provider_server_error"}


@pytest.mark.anyio
async def test_a_full_queue_drops_and_counts(deployed: Deployed) -> None:
    runtime = deployed.runtime
    mirror = ShadowMirror(runtime.runner, runtime.catalog, runtime.store, queue_size=2, workers=1)
    deployment = DeploymentService(runtime.store).start(
        "triage", deployed.candidate, {"strategy": "shadow", "mirror": 50.0}, "t"
    )
    deployed.arms["candidate"].latency_s = 0.2
    async with mirror.running():
        results = [
            mirror.submit(MirrorJob(deployment, f"p{i}", {"text": "x"}, None)) for i in range(10)
        ]
        assert results.count(True) == 2  # nothing ran yet: the queue holds two
        assert mirror.stats.dropped == 8
        await mirror.drain()
    assert mirror.stats.completed == 2


@pytest.mark.anyio
async def test_every_run_is_stored_while_batches_are_written(deployed: Deployed) -> None:
    """Runs finish while earlier pairs are being written; none is lost or stored twice."""
    runtime = deployed.runtime
    mirror = ShadowMirror(runtime.runner, runtime.catalog, runtime.store, queue_size=100, workers=4)
    deployment = DeploymentService(runtime.store).start(
        "triage", deployed.candidate, {"strategy": "shadow", "mirror": 100.0}, "t"
    )
    deployed.arms["candidate"].latency_s = 0.02
    deployed.arms["candidate"].jitter_s = 0.06
    async with mirror.running():
        for i in range(60):
            assert mirror.submit(MirrorJob(deployment, f"p{i}", {"text": f"x{i}"}, None))
        await mirror.drain()
        assert mirror.stats.completed == 60 and mirror.stats.pending_pairs == 0
    pairs = runtime.store.deployments.pairs(deployment.id)
    assert sorted(p.pair_id for p in pairs) == sorted(f"p{i}" for i in range(60))


def test_the_server_counts_requests_until_answered(
    client: httpx.Client, deployed: Deployed
) -> None:
    """What the shadow mirror steps aside for: requests in flight on this replica."""
    foreground = deployed.runtime.shadow.foreground
    deployed.arms["stable"].latency_s = 0.3
    seen: list[int] = []
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(invoke, client)
        time.sleep(0.15)
        seen.append(foreground.active)
        assert answer.result().status_code == 200
    seen.append(foreground.active)
    assert seen == [1, 0]


@pytest.mark.anyio
async def test_drain_waits_for_a_batch_the_periodic_flush_is_writing(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow store write started by the periodic flush: drain returns only once it is stored."""
    runtime = deployed.runtime
    pairs_store = runtime.store.deployments
    write = pairs_store.add_pairs
    started = threading.Event()

    def slow_write(batch: list[Pair]) -> None:
        started.set()
        time.sleep(0.5)
        write(batch)

    monkeypatch.setattr(pairs_store, "add_pairs", slow_write)
    mirror = ShadowMirror(runtime.runner, runtime.catalog, runtime.store, queue_size=4, workers=1)
    deployment = DeploymentService(runtime.store).start(
        "triage", deployed.candidate, {"strategy": "shadow", "mirror": 100.0}, "t"
    )
    async with mirror.running():
        assert mirror.submit(MirrorJob(deployment, "p0", {"text": "x"}, None))
        # the periodic flush has taken the batch and is writing it
        assert await anyio.to_thread.run_sync(started.wait, 5.0)
        await mirror.drain()
        assert mirror.stats.completed == 1
    assert [p.pair_id for p in runtime.store.deployments.pairs(deployment.id)] == ["p0"]
