"""Event-loop slices of the server while the shadow runs on its loop (``--slices``).

A diagnostic, not a benchmark figure: it times every callback the server's event loop
runs (each step of a task is one), marks those of the shadow mirror's tasks (a context
variable set in them, inherited by every task they start), and for each timer of any
other work that fired late, records what was running when it was due. With ``gc``
callbacks it also times collections and notes whose slice they interrupted. Timing
every callback slows the loop a little; read the figures as shares, not as the
benchmark's latencies.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SHADOW: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_shadow", default=False)
LATE_US = 100.0  # a primary timer this late is attributed to what ran when it was due


@dataclass
class Slice:
    start: float
    end: float
    shadow: bool
    where: str


@dataclass
class SliceLog:
    slices: list[Slice] = field(default_factory=list)
    recent: deque[Slice] = field(default_factory=lambda: deque(maxlen=64))
    late: list[tuple[float, str]] = field(default_factory=list)  # (µs, who ran when due)
    gcs: list[tuple[int, float, str]] = field(default_factory=list)  # (gen, ms, owner)
    current: str = "idle"
    _gc_started: float = 0.0

    def record(self, piece: Slice) -> None:
        self.slices.append(piece)
        self.recent.append(piece)

    def blame(self, due: float) -> str:
        for piece in reversed(self.recent):
            if piece.start <= due < piece.end:
                return ("shadow: " if piece.shadow else "server: ") + piece.where
            if piece.end <= due:
                break
        return "idle or I/O wait"

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_started) * 1000
            self.gcs.append((info["generation"], ms, self.current))


def _where(handle: asyncio.Handle) -> str:
    task = getattr(handle._callback, "__self__", None)  # a task's step or wakeup
    if not isinstance(task, asyncio.Task):
        return getattr(handle._callback, "__qualname__", "callback")
    names, awaited = [], task.get_coro()
    while awaited is not None:  # down the chain of awaits to where the task is suspended
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            names.append(frame.f_code.co_qualname)
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " > ".join(names[-3:]) or task.get_name()


def install(log: SliceLog, mirror: Any) -> None:
    """Time every loop callback; mark the mirror's worker and flush tasks as the shadow's."""
    original = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        context = handle._context
        shadow = context is not None and context.get(SHADOW, False)
        where = _where(handle) if shadow else ""
        start = time.monotonic()  # the loop's clock
        when = getattr(handle, "_when", None)
        if when is not None and not shadow and (start - when) * 1e6 > LATE_US:
            log.late.append(((start - when) * 1e6, log.blame(when)))
        log.current = "shadow" if shadow else "server"
        try:
            original(handle)
        finally:
            log.current = "idle"
            log.record(Slice(start, time.monotonic(), shadow, where))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    gc.callbacks.append(log.on_gc)
    for name in ("_work", "_flush_every"):
        setattr(mirror, name, _marked(getattr(mirror, name)))


def _marked(method: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], Any]:
    async def run() -> None:
        SHADOW.set(True)
        await method()

    return run


def report(log: SliceLog, mirrored: int) -> None:
    shadow = [s for s in log.slices if s.shadow]
    if not shadow:
        print("  slices: no shadow slice recorded (is the shadow on the loop?)")
        return
    us = np.array([(s.end - s.start) * 1e6 for s in shadow])
    print(
        f"  shadow slices on the server loop: {len(us) / max(mirrored, 1):.1f} per mirrored "
        f"request, {us.sum() / 1000 / max(mirrored, 1):.2f} ms CPU per mirrored request; "
        f"slice p50 {np.quantile(us, 0.5):.0f} µs p99 {np.quantile(us, 0.99):.0f} µs "
        f"max {us.max():.0f} µs"
    )
    heavy: Counter[str] = Counter()
    for s, t in zip(shadow, us, strict=True):
        if t > 200:
            heavy[s.where] += int(t)
    for where, total in heavy.most_common(6):
        print(f"    slices > 200 µs resuming at {where}: {total / 1000:.1f} ms in all")
    late: Counter[str] = Counter()
    for late_us, who in log.late:
        late[who.split(" > ")[0] if who.startswith("server") else who] += int(late_us)
    print(f"  server timers late > {LATE_US:.0f} µs: {len(log.late)}; who ran when they were due:")
    for who, total in late.most_common(6):
        print(f"    {who}: {total / 1000:.1f} ms of lateness")
    by: Counter[str] = Counter()
    for gen, ms, owner in log.gcs:
        by[f"gen {gen} in a {owner} slice"] += int(ms * 1000)
    print(f"  garbage collections: {len(log.gcs)}")
    for what, total in by.most_common():
        print(f"    {what}: {total / 1000:.1f} ms")
