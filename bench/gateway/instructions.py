"""Instructions per gateway request, counted by valgrind's callgrind: a figure that, unlike
CPU time, hardly moves with the load other processes put on the machine, so two versions
can be compared on a busy machine.

`keel serve` (every feature on, as in run.py) runs under callgrind with instrumentation off;
after a warm-up of 300 requests it is switched on for N requests at concurrency C (the load
generator and the mock run natively), then the counts are dumped and summed. Threads are
included (the span writer's SQLite work too); the kernel's share of socket writes is not.

    python bench/gateway/instructions.py [--mode plain|stream] [--requests 2000]
        [--concurrency 16] [--pythonpath OTHER/src]   # another checkout's code, this venv

Under callgrind the server is ~50x slower, so timing-dependent work (span batches per
commit, requests in flight) differs from a native run; compare versions with this, and
quote run.py's CPU-ms for absolute cost.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import run
from run import ROOT, body, free_port, start_mock, wait_ready
from run import keel_env as gateway_env

PYTHON = ROOT / ".venv" / "bin" / "python"
KEEL = [str(PYTHON), str(ROOT / ".venv" / "bin" / "keel")]
LIMITS = ["--rpm", "100000000", "--tpm", "1000000000"]


def keel_env(home: Path, upstream: str, pythonpath: str | None) -> dict[str, str]:
    env = gateway_env(home, upstream)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def service_key(env: dict[str, str]) -> str:
    subprocess.run([*KEEL, "db", "upgrade"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*KEEL, "keys", "create", "bench", "--role", "service", "--json", *LIMITS],
        env=env,
        check=True,
        capture_output=True,
    )
    return str(orjson.loads(created.stdout)["key"])


def control(pid: int, *command: str) -> None:
    subprocess.run(["callgrind_control", *command, str(pid)], check=True, capture_output=True)


def total_instructions(out: Path) -> int:
    total = 0
    for part in out.parent.glob(out.name + ".*"):
        text = subprocess.run(
            ["callgrind_annotate", str(part)], check=True, capture_output=True, text=True
        ).stdout
        for line in text.splitlines():
            if "PROGRAM TOTALS" in line:
                total += int(line.split()[0].replace(",", ""))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["plain", "stream"], default="plain")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pythonpath", default=None, help="PYTHONPATH for the server")
    args = parser.parse_args()
    stream = args.mode == "stream"
    with tempfile.TemporaryDirectory() as tmp:
        home, port, mock_port = Path(tmp), free_port(), free_port()
        mock = start_mock(mock_port)
        env = keel_env(home / "keel", f"http://127.0.0.1:{mock_port}/v1", args.pythonpath)
        headers = {"authorization": f"Bearer {service_key(env)}"}
        out = home / "callgrind.out"
        callgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        server = subprocess.Popen(
            [*callgrind, f"--callgrind-out-file={out}", *KEEL, "serve", "--port", str(port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/healthz", timeout=900)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            model = "openai:gpt-4o-mini"
            concurrency = args.concurrency
            asyncio.run(run(url, body(model, stream), headers, concurrency, 3600, max_requests=300))
            control(server.pid, "-i", "on")
            done = asyncio.run(
                run(
                    url, body(model, stream), headers, concurrency, 3600, max_requests=args.requests
                )
            )
            control(server.pid, "-i", "off")
            control(server.pid, "-d")
            served = len(done.latencies_ms)
            per_request = total_instructions(out) / max(1, served)
            print(
                f"{args.mode} c={concurrency}: {served} requests ({done.errors} errors), "
                f"{per_request / 1000:,.0f}k instructions per request"
            )
        finally:
            server.terminate()
            server.wait(120)
            mock.terminate()
            mock.wait()


if __name__ == "__main__":
    main()
