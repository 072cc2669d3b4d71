"""Shadow traffic must not slow the primary answer.

A real server (uvicorn on an ephemeral port in this process, SQLite store, span export on)
serves pipeline ``triage``: stable answers after 20 ms, the candidate after 80 ms (a slow
shadow). The load comes from a separate process (``bench/deploy/shadow_client.py``), so
the client's own CPU never competes with the server's. It runs paired rounds: per round,
one block of sequential requests with nothing mirrored (``off``: an idle blue-green
deployment, so requests take the same routed path) and one per shadow mode (mirroring
100 % by default), in a random order drawn afresh every round.

Printed per mode: the pooled p50, p95 and p99 of the primary response time; the paired
difference to ``off`` (the mean over rounds of the block's p50 minus the same round's
``off`` p50, with a 95 % t interval, and the same for p95 and p99); how late the event loop
resumed the stable model after its 20 ms timer (mean per block, paired the same way: shadow
work on the loop would delay it); from the kernel's ``schedstat``, CPU per request of the
server process, of its event loop's thread (and how long that thread waited for a CPU),
and of the shadow worker process; the shadow queue's counters; and the load average (the
machine may be shared; read wall-clock figures with it, and prefer the CPU figures).

``--isolation`` picks where the shadow runs (``deploy.shadow_isolation``: its own worker
process, the default, or the server's loop); ``--nice-only`` keeps the worker out of the
idle scheduling class; ``--slices`` (loop isolation) also times every event-loop slice and
says which work ran when a primary request's timer was due (``bench/deploy/slices.py``).
``--modes off,0.001`` (a shadow deployment that mirrors almost nothing) checks the
benchmark itself: its paired differences should straddle zero.

    python bench/deploy_shadow.py [--rounds 30] [--per-block 40] [--modes off,100]
        [--isolation process|loop] [--nice-only] [--nice -10] [--slices]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import uvicorn
from scipy import stats

from keel.core.messages import GenerationParams, Message
from keel.deploy.mirrors import build_mirror
from keel.pipeline.loader import spec_from_data
from keel.providers.testing import TestingProvider
from keel.runtime import Runtime
from keel.server import create_app
from keel.settings import KeelSettings

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy"))
import slices

ADMIN = "bench-admin-key-0123456789abcdef"
CLIENT = Path(__file__).resolve().parent / "deploy" / "shadow_client.py"


def pipeline(model: str, note: str) -> Any:
    return spec_from_data(
        {"name": "triage", "model": {"id": model}, "prompt": {"user": note + ": {{ text }}"}}
    )


def delayed(seconds: float, text: str) -> Any:
    """A model answering after ``seconds``; its answer ends with how late the event loop
    resumed it (µs past the timer), which is where shadow steps on the loop would show."""

    async def answer(messages: list[Message], params: GenerationParams) -> str:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(seconds)
        late_us = (loop.time() - started - seconds) * 1e6
        return f"{text} {late_us:.0f}"

    return answer


def models_runtime(settings: KeelSettings, shadow_s: float) -> Runtime:
    """A runtime whose testing provider has the two models (the shadow worker process
    builds its own with this, so it must stay a module-level function)."""
    runtime = Runtime(settings)
    provider = runtime.registry.provider("testing")
    assert isinstance(provider, TestingProvider)
    provider.function("stable", delayed(0.020, "stable"))
    provider.function("candidate", delayed(shadow_s, "candidate"))
    return runtime


def build(
    home: Path, isolation: str, sched_idle: bool = True, shadow_s: float = 0.080
) -> tuple[Runtime, str]:
    settings = KeelSettings(
        home=home,
        providers={"default_model": "testing:echo", "allow_remote": False},
        server={"label_cache_seconds": 0},
        auth={"admin_key": ADMIN},
        deploy={
            "controller": False,
            "shadow_queue_size": 1000,
            "shadow_workers": 4,
            "shadow_isolation": isolation,
            "shadow_sched_idle": sched_idle,
        },
    )
    runtime = models_runtime(settings, shadow_s)
    runtime.shadow = build_mirror(runtime, functools.partial(models_runtime, settings, shadow_s))
    stable = runtime.catalog.push(pipeline("testing:stable", "v1")).version
    candidate = runtime.catalog.push(pipeline("testing:candidate", "v2")).version
    runtime.catalog.set_label("triage", "production", stable)
    return runtime, candidate


class Server:
    def __init__(self, runtime: Runtime, loop: str = "auto") -> None:
        app = create_app(runtime.settings, runtime, tune_collector=True)  # as `keel serve`
        config = uvicorn.Config(app, port=0, log_level="error", loop=loop)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def loop_tid(self) -> int:
        """The kernel's id of the thread running the server's event loop."""
        assert self.thread.native_id is not None
        return self.thread.native_id

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def drive(url: str, loop_tid: int, candidate: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(CLIENT),
        f"--url={url}",
        f"--key={ADMIN}",
        f"--server-pid={os.getpid()}",
        f"--loop-tid={loop_tid}",
        f"--candidate={candidate}",
        f"--modes={args.modes}",
        f"--rounds={args.rounds}",
        f"--per-block={args.per_block}",
    ]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the load client failed:\n{done.stderr.decode()}")
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    arr = np.array(values)
    low, high = stats.t.interval(0.95, len(arr) - 1, loc=arr.mean(), scale=stats.sem(arr))
    return float(arr.mean()), float(low), float(high)


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    modes = args.modes.split(",")
    by = {(b["round"], b["mode"]): b for b in result["blocks"]}
    loads = [b["load"] for b in result["blocks"]]
    print(
        f"shadow benchmark: {args.rounds} paired rounds x {args.per_block} sequential requests "
        f"per mode; stable 20 ms, candidate 80 ms; shadow isolation: {args.isolation}"
        f"{' (nice only)' if args.nice_only else ''}; client in its own process"
    )
    print(
        f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f} "
        f"on {os.cpu_count()} CPUs; server and client at niceness {os.nice(0)}"
    )
    rounds = range(args.rounds)
    for mode in modes:
        name = "off" if mode == "off" else f"shadow {mode}%"
        mine = [by[r, mode] for r in rounds]
        pooled = np.concatenate([b["latencies"] for b in mine])
        late = np.concatenate([b["late_us"] for b in mine])
        line = (
            f"  {name:<12} p50 {np.quantile(pooled, 0.5):6.2f} ms  "
            f"p95 {np.quantile(pooled, 0.95):6.2f} ms  "
            f"p99 {np.quantile(pooled, 0.99):6.2f} ms  "
            f"loop lateness {late.mean():5.0f} µs"
            f"\n  {'':<12} CPU per request: server process {_cpu(mine):.2f} ms "
            f"(its event loop's thread {_cpu(mine, 'loop_cpu_s'):.2f} ms, which waited "
            f"{_cpu(mine, 'loop_wait_s'):.2f} ms for a CPU), "
            f"shadow worker process {_cpu(mine, 'worker_cpu_s'):.2f} ms"
        )
        if mode != "off":
            line += "\n" + _paired(by, mode, rounds)
        print(line)
    print(f"  shadow queue: {result['shadow']}")


def _paired(by: dict[Any, Any], mode: str, rounds: range) -> str:
    diff = {
        q: mean_ci([_q(by[r, mode], q) - _q(by[r, "off"], q) for r in rounds])
        for q in (0.5, 0.95, 0.99)
    }
    dlate = mean_ci([_late(by[r, mode]) - _late(by[r, "off"]) for r in rounds])
    dcpu = mean_ci([_cpu([by[r, mode]]) - _cpu([by[r, "off"]]) for r in rounds])
    dloop = mean_ci(
        [_cpu([by[r, mode]], "loop_cpu_s") - _cpu([by[r, "off"]], "loop_cpu_s") for r in rounds]
    )
    dwait = mean_ci(
        [_cpu([by[r, mode]], "loop_wait_s") - _cpu([by[r, "off"]], "loop_wait_s") for r in rounds]
    )
    dwork = mean_ci(
        [_cpu([by[r, mode]], "worker_cpu_s") - _cpu([by[r, "off"]], "worker_cpu_s") for r in rounds]
    )
    pad = " " * 14
    return (
        f"{pad} paired vs off: p50 {_signed(diff[0.5])}  p95 {_signed(diff[0.95])}"
        f"  p99 {_signed(diff[0.99])}"
        f"\n{pad}                loop lateness {_signed(dlate, 'µs', 0)}"
        f"\n{pad}                CPU per request: server process {_signed(dcpu)} "
        f"(event loop thread {_signed(dloop)}), shadow worker {_signed(dwork)}"
        f"\n{pad}                event loop thread's wait for a CPU {_signed(dwait)}/request"
    )


def _q(block: dict[str, Any], q: float) -> float:
    return float(np.quantile(block["latencies"], q))


def _late(block: dict[str, Any]) -> float:
    return float(np.mean(block["late_us"]))


def _cpu(blocks: list[dict[str, Any]], key: str = "server_cpu_s") -> float:
    seconds = sum(b[key] for b in blocks)
    return seconds / sum(len(b["latencies"]) for b in blocks) * 1000


def _signed(ci: tuple[float, float, float], unit: str = "ms", digits: int = 2) -> str:
    value, low, high = ci
    return f"{value:+.{digits}f} {unit} [{low:+.{digits}f}, {high:+.{digits}f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-block", type=int, default=40, help="Requests per mode and round.")
    parser.add_argument("--modes", default="off,100", help="off and mirror percents.")
    parser.add_argument(
        "--isolation",
        choices=["process", "loop"],
        default="process",
        help="deploy.shadow_isolation",
    )
    parser.add_argument(
        "--nice-only",
        action="store_true",
        help="process isolation: a niced worker, without the idle scheduling class",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the server and the client at this niceness (negative needs root): on a "
        "shared machine, keeps other work's noise out of the comparison; the shadow "
        "worker's niceness is added to it",
    )
    parser.add_argument(
        "--slices",
        action="store_true",
        help="loop isolation: also time every event-loop slice (a diagnostic: serves on "
        "asyncio's loop instead of uvloop, and timing slows it)",
    )
    args = parser.parse_args()
    if "off" not in args.modes.split(",") or args.rounds < 2:
        parser.error("--modes must include off (the baseline) and --rounds must be >= 2")
    if args.nice:
        os.nice(args.nice)  # the client, started later, inherits it
    with tempfile.TemporaryDirectory() as tmp:
        runtime, candidate = build(Path(tmp) / "home", args.isolation, not args.nice_only)
        log = slices.SliceLog()
        if args.slices:
            slices.install(log, runtime.shadow)
        try:
            # The slice timer hooks asyncio's handles: uvloop (the default) has its own.
            server = Server(runtime, "asyncio" if args.slices else "auto")
            with server as url:
                result = drive(url, server.loop_tid, candidate, args)
        finally:
            runtime.close()
    report(result, args)
    if args.slices:
        slices.report(log, result["shadow"]["submitted"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
