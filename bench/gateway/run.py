"""Gateway benchmark, side by side in one run against one fast mock OpenAI upstream:

* direct    — the load generator talks to the mock itself;
* keel      — `keel serve` with every feature on: API key auth, per-key limits (rpm/tpm,
              in-process), a trace per request persisted to SQLite, Prometheus metrics,
              retries/breaker around the call, and the response cache (in memory) looked
              up on every request; each request's prompt is different, so every lookup
              misses and every request reaches the upstream;
* bare      — calibration: a ~80-line aiohttp pass-through proxy (bare_proxy.py) that only
              forwards bytes; what plain Python reaches on this machine, the floor for Keel;
* litellm   — LiteLLM proxy from its own venv (.venv-bench-litellm), offline cost map, no
              database, master key auth; skipped with a note when that venv is missing.

Scenarios: plain JSON at concurrency 1, 16 and 64, and SSE streaming at 16. Prints req/s,
p50/p99 latency, p50 added over direct, the gateway's CPU-ms per request (utime+stime of
its process) and its RSS after the scenario.

    python bench/gateway/run.py [--seconds 5] [--soak N] [--targets keel] [--scenarios c=16]

``--soak N`` then sends N more requests through Keel at c=16 and prints its RSS after a
warm-up (N/10 requests, and more until the server has run 75 s, so each periodic job has run
once), every further tenth, and the growth since the warm-up. With ``--probe DIR`` the server
runs under ``heap_probe.py`` and records its memory at each of those points
(``heap_report.py DIR`` summarises them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import Result, run

ROOT = Path(__file__).resolve().parents[2]
KEEL = ROOT / ".venv" / "bin" / "keel"
LITELLM_VENV = ROOT / ".venv-bench-litellm"
ADMIN = "bench-admin-key-0123456789abcdef"
SCENARIOS = [
    ("plain c=1", 1, False),
    ("plain c=16", 16, False),
    ("plain c=64", 64, False),
    ("stream c=16", 16, True),
]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, headers: dict[str, str] | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_start(pid: int) -> float:
    """When process ``pid`` started, in seconds since the epoch."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - boot + ticks / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_mock(port: int) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("mock_openai.py")
    proc = subprocess.Popen([sys.executable, str(script), str(port)])
    time.sleep(0.5)
    return proc


def start_bare(port: int, upstream: str) -> subprocess.Popen[bytes]:
    script = Path(__file__).with_name("bare_proxy.py")
    proc = subprocess.Popen([sys.executable, str(script), str(port), upstream])
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return proc


def keel_env(home: Path, upstream: str, exporters: str = '["store"]') -> dict[str, str]:
    """The environment of a benchmarked `keel serve`: every feature on, the mock upstream."""
    return {
        **os.environ,
        "KEEL_HOME": str(home),
        "KEEL_AUTH__ADMIN_KEY": ADMIN,
        "KEEL_PROVIDERS__OPENAI__BASE_URL": upstream,
        "KEEL_PROVIDERS__OPENAI__API_KEY": "sk-bench",
        "KEEL_PROVIDERS__ALLOW_REMOTE": "false",
        "KEEL_TELEMETRY__EXPORTERS": exporters,
        "KEEL_LOG_LEVEL": "warning",
        "KEEL_GATEWAY__CACHE__ENABLED": "true",
    }


def start_keel(
    keel: Path,
    home: Path,
    port: int,
    upstream: str,
    exporters: str = '["store"]',
    queue: int | None = None,
    probe: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    env = keel_env(home, upstream, exporters)
    if queue is not None:
        env["KEEL_TELEMETRY__MAX_QUEUE_SIZE"] = str(queue)
    subprocess.run([str(keel), "db", "upgrade"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [
            str(keel),
            "keys",
            "create",
            "bench",
            "--role",
            "service",
            "--json",
            "--rpm",
            "100000000",
            "--tpm",
            "1000000000",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    key = orjson.loads(created.stdout)["key"]
    command = [str(keel), "serve", "--port", str(port)]
    if probe is not None:
        command = [sys.executable, str(Path(__file__).with_name("heap_probe.py")), str(probe)]
        command += ["serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env)
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return proc, key


def start_litellm(home: Path, port: int, upstream: str) -> subprocess.Popen[bytes] | None:
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        return None
    config = home / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-bench\n"
        "general_settings:\n"
        f"  master_key: sk-{ADMIN}\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(binary), "--config", str(config), "--port", str(port), "--num_workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=240)
    return proc


def body(model: str, stream: bool) -> Callable[[int], bytes]:
    """Request bodies that differ by a sequence number and a random tag drawn per call, so no
    two requests of a run (warm-up, scenarios and soak included) hit the same cache entry."""
    extra = b',"stream":true,"stream_options":{"include_usage":true}' if stream else b""
    tag = os.urandom(6).hex().encode()
    head = (
        b'{"model":'
        + orjson.dumps(model)
        + b',"messages":[{"role":"user","content":"Say hello '
        + tag
    )
    return lambda n: head + b' #%d."}]' % n + extra + b"}"


def measure(
    url: str, model: str, key: str, pid: int | None, seconds: float, scenarios: list[str]
) -> list[tuple[str, Result, float, float]]:
    rows = []
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    for name, concurrency, stream in SCENARIOS:
        if not any(wanted in name for wanted in scenarios):
            continue
        warm = body(model, stream)
        asyncio.run(run(url, warm, headers, concurrency, min(1.0, seconds)))  # warm-up
        data = body(model, stream)
        before = cpu_seconds(pid) if pid else 0.0
        result = asyncio.run(run(url, data, headers, concurrency, seconds))
        cpu_ms = (cpu_seconds(pid) - before) * 1000 / max(1, len(result.latencies_ms)) if pid else 0
        rows.append((name, result, cpu_ms, rss_mb(pid) if pid else 0.0))
    return rows


def report(table: dict[str, list[tuple[str, Result, float, float]]]) -> None:
    direct = {name: result for name, result, _, _ in table.get("direct", [])}
    print(
        f"\n{'target':8} {'scenario':12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'added p50':>10} {'cpu ms/req':>11} {'RSS MB':>7} {'errors':>6}"
    )
    for target, rows in table.items():
        for name, result, cpu_ms, rss in rows:
            added = (
                result.percentile(0.5) - direct[name].percentile(0.5)
                if name in direct
                else float("nan")
            )
            print(
                f"{target:8} {name:12} {result.rps:9.0f} {result.percentile(0.5):8.2f} "
                f"{result.percentile(0.99):8.2f} {added:10.2f} "
                f"{cpu_ms if target != 'direct' else float('nan'):11.3f} "
                f"{rss if target != 'direct' else float('nan'):7.1f} {result.errors:6d}"
            )


def span_queue(url: str) -> str:
    """Span export queue depth and drops, from Keel's /metrics."""
    text = httpx.get(url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10).text
    found = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith(("keel_span_queue_depth", "keel_spans_dropped"))
    }
    return (
        f"span queue {found.get('keel_span_queue_depth', 0):.0f}, "
        f"dropped {found.get('keel_spans_dropped', 0):.0f}"
    )


def soak(
    url: str, key: str, pid: int, total: int, probe: bool = False, warmup_s: float = 75.0
) -> None:
    """``total`` requests at c=16 after a warm-up of ``total // 10``; RSS at each tenth.
    With ``probe`` the server (started by ``heap_probe.py``) records its heap at each tenth."""
    metrics_url = url.replace("/v1/chat/completions", "/metrics")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    make = body("openai:gpt-4o-mini", False)
    sent = 0

    def batch(count: int) -> Result:
        nonlocal sent
        offset = sent
        result = asyncio.run(
            run(url, lambda n: make(offset + n), headers, 16, 3600.0, max_requests=count)
        )
        sent += count
        return result

    warmup = max(1, total // 10)
    print(
        f"\nsoak: {warmup} warm-up requests (and more until the server has run {warmup_s:.0f} s), "
        f"then {total} at c=16 through keel"
    )
    batch(warmup)
    # The server's periodic jobs (alert evaluation every 60 s by default, usage flushes, the
    # rollout controller) set themselves up on their first run; until each has run once,
    # growth is start-up, not steady state.
    while time.time() - process_start(pid) < warmup_s:
        batch(1000)
    after_warmup = rss_mb(pid)
    if probe:
        os.kill(pid, signal.SIGUSR1)
    print(f"  after warm-up ({sent:>7} requests): RSS {after_warmup:6.1f} MB")
    step, done, errors = max(1, total // 10), 0, 0
    cpu_before = cpu_seconds(pid)
    while done < total:
        result = batch(min(step, total - done))
        done += len(result.latencies_ms) + result.errors
        errors += result.errors
        if probe:
            os.kill(pid, signal.SIGUSR1)
        print(
            f"  after {sent:>7} requests: RSS {rss_mb(pid):6.1f} MB, "
            f"{result.rps:6.0f} req/s, {span_queue(metrics_url)}"
        )
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, done)
    end = rss_mb(pid)
    print(
        f"  end: RSS {end:.1f} MB, growth after warm-up {end - after_warmup:+.1f} MB, "
        f"cpu {cpu_ms:.3f} ms/request, errors {errors}, load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--soak", type=int, default=0, help="requests for the RSS soak")
    parser.add_argument(
        "--exporters", default='["store"]', help="Keel's span exporters (JSON list)"
    )
    parser.add_argument(
        "--targets",
        default="direct,bare,keel,litellm",
        help="comma-separated: direct,bare,keel,litellm",
    )
    parser.add_argument(
        "--scenarios", default="", help="comma-separated parts of scenario names; empty: all"
    )
    parser.add_argument("--queue", type=int, default=None, help="Keel's span queue size")
    parser.add_argument(
        "--probe", type=Path, default=None, help="soak: record Keel's heap here at each tenth"
    )
    parser.add_argument("--keel-bin", default=str(KEEL), help="the `keel` console script")
    args = parser.parse_args()
    targets = set(args.targets.split(","))
    scenarios = args.scenarios.split(",") if args.scenarios else [""]
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
        "(shared with other work; figures are indicative)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        mock_port, keel_port, lite_port, bare_port = (free_port() for _ in range(4))
        upstream = f"http://127.0.0.1:{mock_port}/v1"
        procs = [start_mock(mock_port)]
        try:
            keel, key = start_keel(
                Path(args.keel_bin),
                home / "keel",
                keel_port,
                upstream,
                args.exporters,
                args.queue,
                args.probe,
            )
            procs.append(keel)
            table = {}
            if "direct" in targets:
                direct_url = upstream + "/chat/completions"
                table["direct"] = measure(
                    direct_url, "gpt-4o-mini", "x", None, args.seconds, scenarios
                )
            if "bare" in targets:
                bare = start_bare(bare_port, upstream)
                procs.append(bare)
                table["bare"] = measure(
                    f"http://127.0.0.1:{bare_port}/v1/chat/completions",
                    "gpt-4o-mini",
                    "x",
                    bare.pid,
                    args.seconds,
                    scenarios,
                )
            keel_url = f"http://127.0.0.1:{keel_port}/v1/chat/completions"
            if "keel" in targets:
                table["keel"] = measure(
                    keel_url, "openai:gpt-4o-mini", key, keel.pid, args.seconds, scenarios
                )
            litellm = None if "litellm" not in targets else start_litellm(home, lite_port, upstream)
            if litellm is None and "litellm" in targets:
                print(
                    f"(litellm skipped: create {LITELLM_VENV} with "
                    "`python -m venv .venv-bench-litellm && "
                    ".venv-bench-litellm/bin/pip install 'litellm[proxy]'`)"
                )
            elif litellm is not None:
                procs.append(litellm)
                lite_url = f"http://127.0.0.1:{lite_port}/v1/chat/completions"
                table["litellm"] = measure(
                    lite_url, "gpt-4o-mini", f"sk-{ADMIN}", litellm.pid, args.seconds, scenarios
                )
            report(table)
            print(f"load average after the run: {os.getloadavg()[0]:.2f}")
            if args.soak:
                soak(keel_url, key, keel.pid, args.soak, args.probe is not None)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)


if __name__ == "__main__":
    main()
