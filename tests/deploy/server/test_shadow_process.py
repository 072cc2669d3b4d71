"""The shadow worker process (``deploy.shadow_isolation = "process"``): pairs and shadow
traces stored by the worker, a bounded queue that drops and counts, a primary that never
waits on the worker (even a stalled one), and a shutdown that drains or drops cleanly."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keel.deploy.model import Deployment
from keel.deploy.service import DeploymentService
from keel.deploy.shadow import MirrorJob, MirrorStats, ShadowMirror
from keel.deploy.shadow_process import ProcessMirror
from keel.runtime import Runtime
from tests.deploy.conftest import spec
from tests.server.conftest import server_settings

from .conftest import (
    ADMIN_KEY,
    Deployed,
    LiveServer,
    arms_runtime,
    build_runtime,
    invoke,
    start,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    built = build_runtime(tmp_path / "home", shadow_isolation="process")
    yield built
    built.runtime.close()


def mirror_for(deployed: Deployed, **options: float) -> ProcessMirror:
    runtime = deployed.runtime
    factory = functools.partial(arms_runtime, runtime.settings, deployed.arms)
    settings = {"queue_size": 100, "workers": 2, "shutdown_s": 5.0, "restart": 5.0} | options
    return ProcessMirror(
        factory,
        queue_size=int(settings["queue_size"]),
        workers=int(settings["workers"]),
        shutdown_s=settings["shutdown_s"],
        restart_after_s=settings["restart"],
    )


def shadow_deployment(deployed: Deployed) -> Deployment:
    return DeploymentService(deployed.runtime.store).start(
        "triage", deployed.candidate, {"strategy": "shadow", "mirror": 100.0}, "t"
    )


def job(deployment: Deployment, i: int, text: str = "x") -> MirrorJob:
    return MirrorJob(deployment, f"p{i}", {"text": text}, None)


def accounted(stats: MirrorStats) -> bool:
    """Every submitted job is stored, failed or dropped: none is silently lost."""
    return stats.completed + stats.failed + stats.dropped == stats.submitted


def wait_until(check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_the_worker_stores_pairs_and_shadow_traces(
    client: httpx.Client, deployed: Deployed
) -> None:
    assert isinstance(deployed.runtime.shadow, ProcessMirror)
    created = start(
        client,
        deployed.candidate,
        strategy="shadow",
        mirror=100,
        evaluator="contains:value=candidate",
    )
    assert created.status_code == 201, created.text
    answers = [invoke(client, f"q{i}").json() for i in range(8)]
    assert {a["text"] for a in answers} == {"stable says hi"}  # never the shadow's output
    store = deployed.runtime.store
    wait_until(lambda: len(store.deployments.pairs(created.json()["id"])) == 8)
    pairs = store.deployments.pairs(created.json()["id"])
    assert {p.baseline_trace_id for p in pairs} == {a["trace_id"] for a in answers}
    assert all(p.baseline_score == 0.0 and p.candidate_score == 1.0 for p in pairs)
    shadow = deployed.runtime.shadow
    assert shadow.worker_pid not in (None, os.getpid())
    # The worker's own span processor writes the shadow traces.
    wait_until(lambda: store.traces.get(pairs[0].candidate_trace_id)[0] is not None)
    _, spans = store.traces.get(pairs[0].candidate_trace_id)
    root = next(s for s in spans if s.layer == "pipeline")
    assert root.attributes["keel.deploy.role"] == "shadow"
    assert root.attributes["keel.pipeline.version"] == deployed.candidate

    def counters() -> dict[str, int]:  # published by the worker every few tens of ms
        shadow: dict[str, int] = client.get("/api/deployments/triage/routing").json()["shadow"]
        return shadow

    wait_until(lambda: counters()["completed"] == 8)
    assert counters()["submitted"] == 8
    assert counters()["dropped"] == counters()["failed"] == 0


@pytest.mark.anyio
async def test_a_full_queue_drops_and_counts(deployed: Deployed) -> None:
    deployed.arms["candidate"].latency_s = 0.3
    mirror = mirror_for(deployed, queue_size=2, workers=1)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        results = [mirror.submit(job(deployment, i)) for i in range(10)]
        assert results.count(True) == 2  # the worker has not even started: two are held
        assert mirror.stats.dropped == 8
        await mirror.drain()
        assert mirror.submit(job(deployment, 10))  # room again once those finished
        await mirror.drain()
    assert mirror.stats.completed == 3 and accounted(mirror.stats)
    assert len(deployed.runtime.store.deployments.pairs(deployment.id)) == 3


@pytest.mark.anyio
async def test_a_stalled_worker_never_blocks_the_submitter(deployed: Deployed) -> None:
    """Jobs larger than the pipe's buffer, to a worker that reads nothing: ``submit`` still
    returns at once (the transport buffers), and the worker catches up when resumed."""
    mirror = mirror_for(deployed, queue_size=500, workers=4)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        assert mirror.submit(job(deployment, 0))
        await mirror.drain()  # the worker is up
        assert mirror.worker_pid is not None
        os.kill(mirror.worker_pid, signal.SIGSTOP)
        try:
            big = "y" * 50_000
            assert all(mirror.submit(job(deployment, i, big)) for i in range(1, 101))
            await asyncio.sleep(0.2)  # the jobs are written (5 MB) while the worker is stopped
            assert mirror.stats.completed == 1
        finally:
            os.kill(mirror.worker_pid, signal.SIGCONT)
        await mirror.drain()
    assert mirror.stats.completed == 101 and accounted(mirror.stats)


@pytest.mark.anyio
async def test_shutdown_finishes_queued_jobs_within_its_budget(deployed: Deployed) -> None:
    deployed.arms["candidate"].latency_s = 0.05
    mirror = mirror_for(deployed, workers=1)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        for i in range(6):
            assert mirror.submit(job(deployment, i))
    # No drain: leaving ``running`` ends the worker's input; it finished what it had.
    assert mirror.stats.completed == 6 and accounted(mirror.stats)
    pairs = deployed.runtime.store.deployments.pairs(deployment.id)
    assert sorted(p.pair_id for p in pairs) == [f"p{i}" for i in range(6)]


@pytest.mark.anyio
async def test_shutdown_drops_and_counts_what_the_budget_cannot_finish(
    deployed: Deployed,
) -> None:
    deployed.arms["candidate"].latency_s = 0.4
    mirror = mirror_for(deployed, workers=1, shutdown_s=0.6)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        for i in range(8):
            assert mirror.submit(job(deployment, i))
    stats = mirror.stats
    # 8 runs of 0.4 s one at a time cannot fit in 0.6 s (how many do depends on the machine)
    assert stats.completed < 8 and stats.dropped == 8 - stats.completed
    assert accounted(stats)
    assert len(deployed.runtime.store.deployments.pairs(deployment.id)) == stats.completed
    assert mirror.worker_pid is None  # the worker exited


@pytest.mark.anyio
async def test_a_dead_worker_loses_nothing_silently(deployed: Deployed) -> None:
    mirror = mirror_for(deployed)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        assert mirror.submit(job(deployment, 0))
        await mirror.drain()
        assert mirror.worker_pid is not None
        os.kill(mirror.worker_pid, signal.SIGKILL)
        for i in range(1, 40):
            mirror.submit(job(deployment, i))
            await mirror.drain()  # returns: the worker is gone
    stats = mirror.stats
    assert stats.completed == 1 and stats.submitted == 40
    assert accounted(stats)  # the rest counted as dropped


@pytest.mark.anyio
async def test_a_dead_worker_is_replaced(deployed: Deployed) -> None:
    mirror = mirror_for(deployed, restart=0.3)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        assert mirror.submit(job(deployment, 0))
        await mirror.drain()
        first = mirror.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        while mirror.worker_pid == first:  # found gone when a job meets the broken pipe
            mirror.submit(job(deployment, 1))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.4)
        assert all(mirror.submit(job(deployment, i)) for i in range(2, 5))
        await mirror.drain()
        assert mirror.worker_pid not in (None, first)
    stats = mirror.stats
    assert stats.completed == 4 and accounted(stats)
    stored = {p.pair_id for p in deployed.runtime.store.deployments.pairs(deployment.id)}
    assert {"p0", "p2", "p3", "p4"} <= stored


def test_a_mirror_that_is_not_running_drops_and_counts(deployed: Deployed) -> None:
    mirror = mirror_for(deployed)
    assert not mirror.submit(job(shadow_deployment(deployed), 0))
    assert (mirror.stats.submitted, mirror.stats.dropped) == (1, 1)


def test_loop_isolation_takes_its_turns_as_configured(tmp_path: Path) -> None:
    built = build_runtime(
        tmp_path / "home",
        shadow_isolation="loop",
        shadow_quiet_ms=2.0,
        shadow_recheck_ms=0.5,
        shadow_max_wait_ms=300.0,
    )
    try:
        mirror = built.runtime.shadow
        assert isinstance(mirror, ShadowMirror)
        foreground = mirror.foreground
        assert (foreground.quiet_s, foreground.poll_s, foreground.max_wait_s) == (
            0.002,
            0.0005,
            0.3,
        )
    finally:
        built.runtime.close()


def broken_runtime() -> Runtime:
    raise RuntimeError("this worker cannot build its runtime")


@pytest.mark.anyio
async def test_a_worker_that_cannot_start_drops_and_counts(deployed: Deployed) -> None:
    mirror = ProcessMirror(broken_runtime, queue_size=10, workers=1)
    deployment = shadow_deployment(deployed)
    async with mirror.running():
        assert all(mirror.submit(job(deployment, i)) for i in range(3))
        await mirror.drain()  # returns once the worker has died
        assert mirror.stats.completed == 0
    stats = mirror.stats
    assert (stats.submitted, stats.dropped) == (3, 3) and accounted(stats)


def test_a_server_built_from_settings_alone_shadows_in_its_worker(tmp_path: Path) -> None:
    """The default path: the worker rebuilds the runtime from the server's settings (both
    versions on ``testing:echo``, which needs nothing registered in code)."""
    runtime = Runtime(server_settings(tmp_path / "home"))
    try:
        stable = runtime.catalog.push(spec("testing:echo", "v1")).version
        candidate = runtime.catalog.push(spec("testing:echo", "v2")).version
        runtime.catalog.set_label("triage", "production", stable)
        assert isinstance(runtime.shadow, ProcessMirror)
        headers = {"authorization": f"Bearer {ADMIN_KEY}"}
        with (
            LiveServer(runtime) as live,
            httpx.Client(base_url=live.url, headers=headers, timeout=30) as http,
        ):
            created = http.post(
                "/api/deployments",
                json={"pipeline": "triage", "version": candidate, "strategy": "shadow",
                      "mirror": 100},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            answers = [invoke(http, f"q{i}").json() for i in range(4)]
            assert {a["text"] for a in answers} == {f"v1: q{i}" for i in range(4)}
            store = runtime.store
            wait_until(lambda: len(store.deployments.pairs(created.json()["id"])) == 4)
            pair = store.deployments.pairs(created.json()["id"])[0]
            wait_until(lambda: store.traces.get(pair.candidate_trace_id)[0] is not None)
            _, spans = store.traces.get(pair.candidate_trace_id)
            root = next(s for s in spans if s.layer == "pipeline")
            assert root.attributes["keel.pipeline.version"] == candidate
    finally:
        runtime.close()
