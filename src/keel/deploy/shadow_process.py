"""Shadow traffic in a worker process of its own, at low priority.

On the server's event loop a shadow run competes with the requests it mirrors: each of its
steps, its span and pair writes and the garbage it leaves behind can land while a primary
request is ready to run. :class:`ProcessMirror` takes all of that off the server process.
``submit`` admits the job; right after, once the request that mirrored it has sent its
answer, the job is encoded (:mod:`keel.deploy.shadow_wire`) and written to a pipe without
waiting (the loop's transport buffers what the pipe cannot take yet). A worker process
(:mod:`keel.deploy.shadow_worker`) runs the candidate, scores and stores the pairs with a
runtime of its own, at the niceness ``deploy.shadow_nice`` above the server's and, on
Linux, in the idle scheduling class (``deploy.shadow_sched_idle``), so the kernel serves
the server first.

* The queue stays bounded: a job is accepted only while fewer than ``queue_size`` accepted
  jobs are unfinished; otherwise it is dropped and counted.
* The worker starts with the first mirrored request (a server that never mirrors pays
  nothing), in a thread, so no request waits for it.
* Its counters (runs stored, failed, dropped at shutdown) live in shared memory that the
  server reads only when asked (``stats``): nothing comes back to the event loop per run.
* Shutdown closes the pipe: the worker finishes what it has for up to
  ``deploy.shadow_shutdown_seconds``, drops and counts the rest, writes its last pairs and
  spans, and exits.
* A worker found gone (the pipe broke) has its unfinished jobs counted as dropped; the
  first mirrored request ``RESTART_AFTER_S`` later starts a new one (until then they are
  dropped and counted), so a crash costs some shadow traffic, never the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from keel.deploy.foreground import Foreground
from keel.deploy.shadow import MirrorJob, MirrorStats
from keel.deploy.shadow_wire import Encoder
from keel.deploy.shadow_worker import Counter, WorkerConfig, run_worker

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from keel.runtime import Runtime

log = logging.getLogger("keel.deploy.shadow")
EXIT_GRACE_S = 10.0  # past the worker's own shutdown budget, before it is killed
RESTART_AFTER_S = 5.0  # a worker that died is replaced by the first job after this long


class _Pipe(asyncio.Protocol):
    """The write end's protocol: notes when the worker stopped reading."""

    def __init__(self, closed: Callable[[], None]) -> None:
        self._closed = closed

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()


class ProcessMirror:
    """The server side of the shadow worker process (see the module docstring)."""

    def __init__(
        self,
        factory: Callable[[], Runtime],
        *,
        queue_size: int,
        workers: int,
        nice: int = 19,
        sched_idle: bool = True,
        shutdown_s: float = 5.0,
        restart_after_s: float = RESTART_AFTER_S,
        foreground: Foreground | None = None,
    ) -> None:
        self._config = WorkerConfig(factory, workers, queue_size, shutdown_s, nice, sched_idle)
        self._size = queue_size
        self.foreground = foreground or Foreground()  # counted by the server; unused here
        self._context = multiprocessing.get_context("spawn")
        self._counters = self._context.RawArray("q", len(Counter))
        self._submitted = 0
        self._dropped = 0  # by this side: queue full, not running, worker gone
        self._accepted = 0
        self._live = False
        self._backlog: list[bytes] | None = None  # accepted while the worker starts
        self._transport: asyncio.WriteTransport | None = None
        self._process: BaseProcess | None = None
        self._starting: asyncio.Task[None] | None = None
        self._encoder = Encoder()
        self._restart_after_s = restart_after_s
        self._lost_at = float("-inf")  # when the last worker was found gone
        self._before = (0, 0, 0)  # completed, failed, dropped by workers since retired

    @property
    def stats(self) -> MirrorStats:
        c, (completed, failed, dropped) = self._counters, self._before
        return MirrorStats(
            submitted=self._submitted,
            dropped=self._dropped + dropped + c[Counter.DROPPED],
            completed=completed + c[Counter.COMPLETED],
            failed=failed + c[Counter.FAILED],
            pending_pairs=c[Counter.PENDING],
            forced_turns=c[Counter.FORCED],
        )

    @property
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _finished(self) -> int:
        """Jobs the current worker has finished (stored, failed or dropped)."""
        c = self._counters
        return int(c[Counter.COMPLETED] + c[Counter.FAILED] + c[Counter.DROPPED])

    def submit(self, job: MirrorJob) -> bool:
        """Hand a mirrored request to the worker without waiting; False (counted) when it
        is dropped: the queue is full, the mirror is not running or the worker is gone.

        Only the admission happens here. Encoding and writing the job (a few hundred µs of
        CPU on a busy machine, measured) wait for the next turn of the event loop, so the
        request that mirrored it sends its answer first."""
        self._submitted += 1
        if not self._live or self._accepted - self._finished() >= self._size:
            self._dropped += 1
            return False
        self._accepted += 1
        asyncio.get_running_loop().call_soon(self._send, job)
        return True

    def _send(self, job: MirrorJob) -> None:
        try:
            data = self._encoder.encode(job)
        except Exception:
            log.exception("a mirrored request for %s cannot be sent", job.deployment.id)
            self._lost(1)
            return
        if self._transport is not None:
            self._transport.write(data)
        elif self._backlog is not None:
            self._backlog.append(data)
        elif self._live and time.monotonic() - self._lost_at >= self._restart_after_s:
            self._backlog = [data]
            self._starting = asyncio.get_running_loop().create_task(self._start())
        else:  # stopped, or a worker died moments ago
            self._lost(1)

    async def _start(self) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        try:
            # Pickled here, so the worker can lower its priority before importing Keel.
            config = pickle.dumps(self._config, protocol=pickle.HIGHEST_PROTOCOL)
            process = self._context.Process(
                target=run_worker,
                args=(config, reader, self._counters),
                name="keel-shadow",
                daemon=True,
            )
            await asyncio.to_thread(process.start)
        except Exception:
            log.exception("the shadow worker process did not start")
            writer.close()
            self._lost(len(self._backlog or ()))
            self._backlog = None
            self._lost_at = time.monotonic()
            return
        finally:
            reader.close()
        self._process = process
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(lambda: _Pipe(self._worker_gone), writer)
        backlog, self._backlog = self._backlog or [], None
        if self._live:
            transport.writelines(backlog)
            self._transport = transport
        else:  # stopped while starting: the worker gets the backlog, then end of input
            transport.writelines(backlog)
            transport.close()

    def _worker_gone(self) -> None:
        self._transport = None
        if not self._live:  # (our own close at shutdown)
            return
        log.error(
            "the shadow worker process stopped reading; its jobs are counted as dropped and "
            "a new worker starts with a mirrored request %.0f s from now",
            self._restart_after_s,
        )
        self._lost_at = time.monotonic()
        process, self._process = self._process, None
        if process is not None:
            process.kill()  # if it is not dead yet, it is past use
        self._retire()

    def _retire(self) -> None:
        """Fold the current worker's counters into the totals, for a new worker to start
        from zero; whatever it had accepted and not finished is dropped."""
        c, (completed, failed, dropped) = self._counters, self._before
        unfinished = max(0, self._accepted - self._finished())
        self._before = (
            completed + c[Counter.COMPLETED],
            failed + c[Counter.FAILED],
            dropped + c[Counter.DROPPED],
        )
        self._lost(unfinished)
        self._accepted = 0
        self._counters = self._context.RawArray("q", len(Counter))
        self._encoder = Encoder()

    def _lost(self, jobs: int) -> None:
        """Accepted jobs that will never reach a worker: counted as dropped."""
        self._dropped += jobs
        self._accepted -= jobs

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._live = True
        try:
            yield
        finally:
            await self._stop()

    async def _stop(self) -> None:
        await asyncio.sleep(0)  # jobs admitted just before are sent first
        self._live = False
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        if self._transport is not None:
            self._transport.close()  # end of input: the worker drains and exits
            self._transport = None
        process = self._process
        if process is None:
            return
        await asyncio.to_thread(process.join, self._config.shutdown_s + EXIT_GRACE_S)
        if process.is_alive():
            log.error("the shadow worker did not exit in time; killing it")
            process.kill()
            await asyncio.to_thread(process.join, EXIT_GRACE_S)
        self._process = None
        self._retire()  # jobs it died with are counted as dropped

    async def drain(self) -> None:
        """Wait until every accepted job is finished and its pair stored (tests, benches)."""
        while self._accepted > self._finished():
            process = self._process
            if self._backlog is None and process is not None and not process.is_alive():
                return
            await asyncio.sleep(0.01)
