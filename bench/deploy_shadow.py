"""Shadow traffic must not slow the primary answer.

A real server (uvicorn on an ephemeral port, SQLite store, span export on) serves pipeline
``triage``: stable answers after 20 ms, the candidate after 80 ms (a slow shadow). The same
sequence of invoke requests runs three times, interleaved in rounds so machine noise hits
all of them alike:

* ``off``: no deployment;
* ``shadow 100%``: every request also mirrored to the slow candidate;
* ``shadow 20%``.

Printed: p50 and p95 of the primary response time per mode with 95 % bootstrap intervals,
the difference to ``off`` with its interval, the shadow queue's counters, process CPU time
per request, and the load average (the machine is shared; read wall-clock figures with it).

    python bench/deploy_shadow.py [--requests 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from scipy.stats import bootstrap

from keel.core.messages import GenerationParams, Message
from keel.pipeline.loader import spec_from_data
from keel.providers.testing import TestingProvider
from keel.runtime import Runtime
from keel.server import create_app
from keel.settings import KeelSettings

ADMIN = "bench-admin-key-0123456789abcdef"


def pipeline(model: str, note: str) -> Any:
    return spec_from_data(
        {"name": "triage", "model": {"id": model}, "prompt": {"user": note + ": {{ text }}"}}
    )


def delayed(seconds: float, text: str) -> Any:
    async def answer(messages: list[Message], params: GenerationParams) -> str:
        await asyncio.sleep(seconds)
        return text

    return answer


def build(home: Path) -> tuple[Runtime, str]:
    settings = KeelSettings(
        home=home,
        providers={"default_model": "testing:echo", "allow_remote": False},
        server={"label_cache_seconds": 0},
        auth={"admin_key": ADMIN},
        deploy={"controller": False, "shadow_queue_size": 1000, "shadow_workers": 4},
    )
    runtime = Runtime(settings)
    provider = runtime.registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    provider.function("stable", delayed(0.020, "stable"))
    provider.function("candidate", delayed(0.080, "candidate"))
    stable = runtime.catalog.push(pipeline("testing:stable", "v1")).version
    candidate = runtime.catalog.push(pipeline("testing:candidate", "v2")).version
    runtime.catalog.set_label("triage", "production", stable)
    return runtime, candidate


class Server:
    def __init__(self, runtime: Runtime) -> None:
        config = uvicorn.Config(create_app(runtime.settings, runtime), port=0, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def timed(client: httpx.Client, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        response = client.post("/v1/pipelines/triage/invoke", json={"input": {"text": f"q{i}"}})
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return out


def ci(values: np.ndarray, q: float) -> tuple[float, float, float]:
    result = bootstrap(
        (values,),
        lambda x, axis: np.quantile(x, q, axis=axis),
        n_resamples=2000,
        method="percentile",
        random_state=1,
    )
    return (
        float(np.quantile(values, q)),
        result.confidence_interval.low,
        result.confidence_interval.high,
    )


def diff_ci(a: np.ndarray, b: np.ndarray, q: float) -> tuple[float, float, float]:
    def stat(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.quantile(x, q, axis=axis) - np.quantile(y, q, axis=axis)

    result = bootstrap(
        (a, b), stat, n_resamples=2000, method="percentile", random_state=1, vectorized=True
    )
    return float(stat(a, b, 0)), result.confidence_interval.low, result.confidence_interval.high


def set_mode(client: httpx.Client, candidate: str, mirror: float | None) -> None:
    if client.get("/api/deployments").json()["deployments"]:
        assert client.post("/api/deployments/triage/rollback").status_code == 200
    if mirror is not None:
        body = {"pipeline": "triage", "version": candidate, "strategy": "shadow", "mirror": mirror}
        assert client.post("/api/deployments", json=body).status_code == 201
    time.sleep(0.3)  # let the server's watcher apply it (it also applies at once)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="Requests per mode and round.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modes: dict[str, float | None] = {"off": None, "shadow 100%": 100.0, "shadow 20%": 20.0}
    samples: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, float] = dict.fromkeys(modes, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        runtime, candidate = build(Path(tmp) / "home")
        try:
            with (
                Server(runtime) as url,
                httpx.Client(
                    base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30
                ) as client,
            ):
                timed(client, 30)  # warm up
                for _ in range(args.rounds):
                    for mode, mirror in modes.items():
                        set_mode(client, candidate, mirror)
                        before = resource.getrusage(resource.RUSAGE_SELF)
                        samples[mode] += timed(client, args.requests)
                        after = resource.getrusage(resource.RUSAGE_SELF)
                        cpu[mode] += (after.ru_utime + after.ru_stime) - (
                            before.ru_utime + before.ru_stime
                        )
                        time.sleep(0.5)  # let queued shadow runs finish before the next mode
                stats = runtime.shadow.stats.to_dict()
        finally:
            runtime.close()
    report(samples, cpu, stats, args)
    return 0


def interval(value: float, low: float, high: float, sign: str = "") -> str:
    return f"{value:{sign}7.2f} ms [{low:{sign}.2f}, {high:{sign}.2f}]"


def report(
    samples: dict[str, list[float]],
    cpu: dict[str, float],
    stats: dict[str, int],
    args: argparse.Namespace,
) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"shadow benchmark: {args.rounds} rounds x {args.requests} sequential requests/mode")
    print(f"load average {load} on {os.cpu_count()} CPUs")
    base = np.array(samples["off"])
    for mode, values in samples.items():
        arr = np.array(values)
        per_request = cpu[mode] / len(values) * 1000
        print(
            f"  {mode:<12} p50 {interval(*ci(arr, 0.5))}  p95 {interval(*ci(arr, 0.95))}"
            f"  CPU {per_request:.2f} ms/request (server + shadow + client)"
        )
        if mode != "off":
            d50 = interval(*diff_ci(arr, base, 0.5), sign="+")
            d95 = interval(*diff_ci(arr, base, 0.95), sign="+")
            print(f"  {'':<12} vs off: p50 {d50}  p95 {d95}")
    print(f"  shadow queue: {stats}")


if __name__ == "__main__":
    sys.exit(main())
