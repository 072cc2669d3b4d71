"""The shadow worker process: mirrored requests in, shadow traces and stored pairs out.

Started by :class:`keel.deploy.shadow_process.ProcessMirror`. It lowers its own priority
first (:func:`lower_priority`; before it imports Keel or builds anything, so its start-up
yields to the server too), builds a runtime of its own from the factory it was given, and
runs an in-loop :class:`~keel.deploy.shadow.ShadowMirror` on it, with no foreground to
step aside for. Jobs arrive on a pipe (:mod:`keel.deploy.shadow_wire`); its counters are
published to shared memory while it has work. At the end of its input it finishes queued
jobs for up to the shutdown budget, drops and counts the rest, and closes its runtime
(flushing its spans).

Module-level imports are the standard library only: the child imports this module before
:func:`run_worker` can lower its priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import pickle
import signal
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from keel.deploy.foreground import Foreground  # standard library only, like this module

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from keel.deploy.shadow import MirrorJob, ShadowMirror
    from keel.runtime import Runtime

PUBLISH_S = 0.05  # how often counters are published while jobs are outstanding


class Counter(IntEnum):
    """Slots of the shared counter array the worker writes and the server reads."""

    RECEIVED = 0
    COMPLETED = 1
    FAILED = 2
    DROPPED = 3
    PENDING = 4
    FORCED = 5


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    factory: Callable[[], Runtime]  # picklable: builds the worker's runtime
    workers: int
    queue_size: int
    shutdown_s: float
    nice: int
    sched_idle: bool = True


def run_worker(config: bytes, reader: Connection, counters: MutableSequence[int]) -> None:
    """The worker process's entry point; ``config`` is a pickled :class:`WorkerConfig`."""
    # The server's Ctrl-C reaches the whole process group; the worker stops when its input
    # ends instead, after finishing what it can.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings: WorkerConfig = pickle.loads(config)  # noqa: S301 - written by our parent
    lower_priority(settings)
    asyncio.run(_serve(settings, reader, counters))


def lower_priority(config: WorkerConfig) -> None:
    """Niceness first; then, where the kernel has it, the idle scheduling class: a task the
    kernel preempts as soon as any other wakes, and whose CPU counts as idle when it places
    a woken task (a nice task can finish its time slice first)."""
    if config.nice:
        os.nice(config.nice)
    if config.sched_idle and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


class _Jobs(asyncio.Protocol):
    """The pipe's read end: decodes frames and hands each job over."""

    def __init__(self, accept: Callable[[MirrorJob], None], ended: asyncio.Event) -> None:
        from keel.deploy.shadow_wire import Decoder  # deferred: imported after os.nice

        self._accept = accept
        self._ended = ended
        self._decoder = Decoder()

    def data_received(self, data: bytes) -> None:
        for job in self._decoder.feed(data):
            self._accept(job)

    def eof_received(self) -> bool:
        self._ended.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended.set()


class _Worker:
    def __init__(self, mirror: ShadowMirror, counters: MutableSequence[int]) -> None:
        self.mirror = mirror
        self.counters = counters
        self.received = 0
        self.arrived = asyncio.Event()

    def accept(self, job: MirrorJob) -> None:
        self.received += 1
        self.mirror.submit(job)
        self.arrived.set()

    def publish(self, *, final: bool = False) -> None:
        stats, c = self.mirror.stats, self.counters
        done = stats.completed + stats.failed
        # Jobs neither stored nor failed when the worker stops were dropped (or never ran).
        dropped = self.received - done if final else stats.dropped
        c[Counter.RECEIVED] = self.received
        c[Counter.COMPLETED] = stats.completed
        c[Counter.FAILED] = stats.failed
        c[Counter.PENDING] = stats.pending_pairs
        c[Counter.FORCED] = stats.forced_turns
        c[Counter.DROPPED] = dropped

    def outstanding(self) -> bool:
        stats = self.mirror.stats
        return self.received > stats.completed + stats.failed + stats.dropped

    async def publish_while_busy(self) -> None:
        while True:
            self.publish()  # then, with no await in between, the check: the last state is out
            if self.outstanding():
                await asyncio.sleep(PUBLISH_S)
            else:
                self.arrived.clear()
                await self.arrived.wait()


async def _serve(config: WorkerConfig, reader: Connection, counters: MutableSequence[int]) -> None:
    from keel.deploy.mirrors import loop_mirror  # deferred: imported after os.nice

    runtime = config.factory()
    gc.collect()  # what start-up made is never garbage: keep full collections off it
    gc.freeze()
    try:
        mirror = loop_mirror(runtime, _Unhindered(), config.queue_size, config.workers)
        worker = _Worker(mirror, counters)
        ended = asyncio.Event()
        loop = asyncio.get_running_loop()
        async with mirror.running():
            transport, _ = await loop.connect_read_pipe(lambda: _Jobs(worker.accept, ended), reader)
            publisher = asyncio.create_task(worker.publish_while_busy())
            await ended.wait()
            transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(mirror.drain(), config.shutdown_s)
            publisher.cancel()
        worker.publish(final=True)
    finally:
        runtime.close()


class _Unhindered(Foreground):
    """In the worker process nothing is foreground: every turn is taken at once."""

    async def turn(self) -> None:
        return None
