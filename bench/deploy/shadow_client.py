"""The load client of ``bench/deploy_shadow.py``, run as its own process.

It drives the server it is given in paired rounds: each round runs one block of sequential
invoke requests per mode (``off``: a deployment that mirrors nothing; a number: a shadow
deployment mirroring that percent), in a random order drawn afresh every round, so slow
drifts of a shared machine hit every mode alike. Before each block the mode is set through
the deployments API; after it the client waits until the shadow queue has finished every
mirrored run, so the CPU read from ``/proc`` around the block includes the shadow's work:
the server process's own, and that of the processes it started (the shadow worker). The
server's is read after the same settle time in every mode, before polling for the drain,
so the polls' own cost does not count against the mode that needs more of them.

Prints one JSON object: per block its round, mode, latencies (ms), how late the loop
resumed the stable model (µs), server CPU seconds and the load average when it ended; and
the server's final shadow counters.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

import httpx
import orjson

PIPELINE = "triage"
SETTLE_S = 0.5  # after a block: the last shadow runs (80 ms), a pair flush (0.2 s), spans


def schedstat(pid: int, tid: int) -> tuple[float, float]:
    """Seconds thread ``tid`` of ``pid`` ran, and waited runnable for a CPU (Linux, ns
    precision; the scheduler's own accounting)."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        ran, waited, _ = f.read().split()
    return int(ran) / 1e9, int(waited) / 1e9


def process_cpu(pid: int) -> float:
    """CPU seconds of every thread of ``pid`` still alive."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += schedstat(pid, int(tid))[0]
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return total


def worker_cpu(pid: int) -> float:
    """CPU seconds of the processes ``pid`` started (the shadow worker), recursively."""
    total = 0.0
    for child in children(pid):
        if child == os.getpid():  # the bench started this client too
            continue
        try:
            total += process_cpu(child) + worker_cpu(child)
        except FileNotFoundError:  # it exited meanwhile
            continue
    return total


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        except FileNotFoundError:
            continue
    return found


def counters(args: argparse.Namespace) -> tuple[float, float, float, float]:
    """Seconds so far: the server process's CPU, its event loop thread's CPU and wait for a
    CPU, and the shadow worker's CPU."""
    pid = args.server_pid
    loop_ran, loop_waited = schedstat(pid, args.loop_tid)
    return process_cpu(pid), loop_ran, loop_waited, worker_cpu(pid)


def set_mode(client: httpx.Client, candidate: str, mode: str) -> None:
    """``off`` is a blue-green deployment with its candidate idle: requests take the same
    routed path as under a shadow deployment, and nothing is mirrored."""
    if client.get("/api/deployments").json()["deployments"]:
        response = client.post(f"/api/deployments/{PIPELINE}/rollback")
        assert response.status_code == 200, response.text
    body: dict[str, object] = {"pipeline": PIPELINE, "version": candidate}
    if mode == "off":
        body["strategy"] = "blue-green"
    else:
        body |= {"strategy": "shadow", "mirror": float(mode)}
    response = client.post("/api/deployments", json=body)
    assert response.status_code == 201, response.text


def shadow_counters(client: httpx.Client) -> dict[str, int]:
    counters: dict[str, int] = client.get(f"/api/deployments/{PIPELINE}/routing").json()["shadow"]
    return counters


def drain(client: httpx.Client) -> None:
    """Wait until every mirrored request was run, failed or dropped."""
    for _ in range(400):
        c = shadow_counters(client)
        if c["completed"] + c["failed"] + c["dropped"] >= c["submitted"]:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the shadow queue did not drain: {c}")


def block(client: httpx.Client, n: int, tag: str) -> tuple[list[float], list[float]]:
    """Latencies (ms) and the stable model's loop lateness (µs, the answer's last word)."""
    latencies, late = [], []
    for i in range(n):
        body = {"input": {"text": f"{tag} question {i}"}}
        started = time.perf_counter()
        response = client.post(f"/v1/pipelines/{PIPELINE}/invoke", json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        late.append(float(response.json()["text"].rsplit(" ", 1)[1]))
    return latencies, late


def run(args: argparse.Namespace) -> dict[str, Any]:
    modes = args.modes.split(",")
    headers = {"authorization": f"Bearer {args.key}"}
    blocks = []
    rng = random.Random(args.seed)
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
        for mode in modes:  # a shadow mode also starts the worker process, if any
            set_mode(client, args.candidate, mode)
            block(client, 40, "warm-up")
            drain(client)
        for r in range(args.rounds):
            for mode in rng.sample(modes, len(modes)):  # a fresh order every round
                set_mode(client, args.candidate, mode)
                time.sleep(0.05)  # let the watcher's own refresh settle before timing
                cpu = counters(args)
                latencies, late = block(client, args.per_block, f"r{r}")
                # The server's CPU is read after the same settle time in every mode, before
                # polling for the drain: the polls' own cost would count against the mode
                # that needs more of them. The worker's is read once it has drained.
                time.sleep(SETTLE_S)
                used, loop_used, loop_waited, _ = (
                    b - a for a, b in zip(cpu, counters(args), strict=True)
                )
                drain(client)
                worker = counters(args)[3] - cpu[3]
                blocks.append(
                    {
                        "round": r,
                        "mode": mode,
                        "latencies": latencies,
                        "late_us": late,
                        "server_cpu_s": used,
                        "loop_cpu_s": loop_used,
                        "loop_wait_s": loop_waited,
                        "worker_cpu_s": worker,
                        "load": os.getloadavg()[0],
                    }
                )
        return {"blocks": blocks, "shadow": shadow_counters(client)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--loop-tid", type=int, required=True, help="the event loop's thread")
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--modes", default="off,100")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-block", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1, help="of the modes' order per round")
    sys.stdout.buffer.write(orjson.dumps(run(parser.parse_args())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
