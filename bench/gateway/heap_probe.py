"""Run ``keel`` with a heap probe: on SIGUSR1 the server writes what its memory holds.

    python bench/gateway/heap_probe.py OUT_DIR serve --port 8000

Each signal appends one JSON line to ``OUT_DIR/probe.jsonl`` (RSS; anonymous, file-backed
and shared memory from ``/proc/self/smaps_rollup``; the live objects by type after a
collection) and, when ``HEAP_PROBE_FRAMES`` is set (tracemalloc's frames per allocation,
e.g. 8: it slows the server several times over), saves a tracemalloc snapshot as
``OUT_DIR/snapshot-N.pickle``. With ``HEAP_PROBE_TRIM=1`` it then calls glibc's
``malloc_trim(0)`` and records the RSS left, which shows how much of the heap is free memory
glibc kept. ``bench/gateway/heap_report.py`` compares them. Used by
``run.py --probe``; it is a diagnostic, so start-up pays for it, not the request path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import signal
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FrameType


def rollup() -> dict[str, int]:
    """The kB figures of ``/proc/self/smaps_rollup`` plus the process's VmRSS."""
    figures: dict[str, int] = {}
    for name in ("/proc/self/smaps_rollup", "/proc/self/status"):
        for line in Path(name).read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                figures[key] = int(parts[0])
    return figures


def sqlite_memory() -> dict[str, int]:
    """SQLite's own allocator figures (page caches, schemas, statements) in bytes; the
    ``sqlite3`` module links the system library, which ``ctypes`` finds under the same name."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return {}
    library = ctypes.CDLL(name)
    library.sqlite3_memory_used.restype = ctypes.c_int64
    library.sqlite3_memory_highwater.restype = ctypes.c_int64
    return {
        "used": library.sqlite3_memory_used(),
        "highwater": library.sqlite3_memory_highwater(0),
    }


def open_files() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith((".db", "-wal", "-shm")):
            counts[Path(target).name] += 1
    return dict(counts)


def python_allocator(scratch: Path) -> dict[str, int]:
    """pymalloc's arenas: bytes in use by objects, and bytes free inside arenas it keeps
    (from ``sys._debugmallocstats``, which writes to the C-level stderr)."""
    saved = os.dup(2)
    with scratch.open("w") as handle:
        os.dup2(handle.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    figures: dict[str, int] = {}
    for line in scratch.read_text().splitlines():
        name, _, value = line.partition("=")
        name = name.strip().lstrip("#").strip()
        if name == "Total":
            name = "bytes in arenas"  # the first Total; later ones are other tables
        if name in ("arenas highwater mark", "bytes in allocated blocks", "bytes in arenas"):
            figures.setdefault(name, int(value.strip().replace(",", "")))
    return figures


def object_counts(top: int = 40) -> dict[str, int]:
    counts = Counter(type(obj).__qualname__ for obj in gc.get_objects())
    return dict(counts.most_common(top))


def install(out: Path, trim: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    taken = 0

    def probe(_signum: int, _frame: FrameType | None) -> None:
        nonlocal taken
        taken += 1
        before = rollup()
        collected = gc.collect()
        record = {
            "n": taken,
            "rss_kb": before.get("VmRSS"),
            "memory_kb": {
                k: before[k]
                for k in ("Anonymous", "Rss", "Shared_Clean", "Private_Dirty")
                if k in before
            },
            "file_kb": before.get("RssFile"),
            "anon_kb": before.get("RssAnon"),
            "collected": collected,
            "gc_counts": gc.get_count(),
            "frozen": gc.get_freeze_count(),
            "sqlite": sqlite_memory(),
            "pymalloc": python_allocator(out / "mallocstats.txt"),
            "db_files": open_files(),
            "objects": object_counts(),
        }
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot()
            snapshot.dump(str(out / f"snapshot-{taken}.pickle"))
            traced, peak = tracemalloc.get_traced_memory()
            record["traced_kb"], record["traced_peak_kb"] = traced // 1024, peak // 1024
        if trim:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            record["trimmed_rss_kb"] = rollup().get("VmRSS")
        with (out / "probe.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    signal.signal(signal.SIGUSR1, probe)


def main() -> None:
    frames = int(os.environ.get("HEAP_PROBE_FRAMES", "0"))
    if frames:
        tracemalloc.start(frames)
    install(Path(sys.argv[1]), os.environ.get("HEAP_PROBE_TRIM") == "1")
    from keel.cli.app import main as keel_main

    sys.argv = ["keel", *sys.argv[2:]]
    keel_main()


if __name__ == "__main__":
    main()
