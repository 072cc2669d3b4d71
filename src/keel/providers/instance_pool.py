"""A pool that lends objects which are not thread-safe (model instances) to one user at a time.

Used by in-process providers: each borrower gets an instance for the duration of one
generation, which runs in a worker thread. At most ``size`` instances exist; they are loaded
on demand in the caller's executor, never on the event loop. Waiting is one asyncio future
per waiter, created in the waiter's own loop, so a pool works across event loops (tests that
each call ``asyncio.run``) and instances can be given back from any thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Generic, Protocol, TypeVar

from keel.core.errors import ProviderUnavailable


class Closeable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=Closeable)


class InstancePool(Generic[T]):
    """Lends at most ``size`` instances built by ``load``; waiters are served in order."""

    def __init__(self, name: str, size: int, load: Callable[[], T], executor: Executor) -> None:
        self.name = name
        self._size = size
        self._load = load
        self._executor = executor
        self._lock = threading.Lock()
        self._idle: list[T] = []
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._created = 0
        self._closed = False

    @property
    def created(self) -> int:
        return self._created

    async def acquire(self) -> T:
        """An instance for the caller alone, until it is handed back with ``release``."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise self.closed_error()
            if self._idle:
                return self._idle.pop()
            self._waiters.append(waiter)
            must_load = self._created < self._size
            if must_load:
                self._created += 1
        if must_load:
            try:
                self._executor.submit(self._load_one)
            except RuntimeError:  # the executor was shut down under us
                self._fail_waiters(self.closed_error(), uncreate=True)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed to us just as we were cancelled
            raise

    def release(self, instance: T) -> None:
        """Give ``instance`` to the oldest waiter, or keep it idle. Safe from any thread."""
        while True:
            with self._lock:
                if not self._waiters:
                    if self._closed:
                        break
                    self._idle.append(instance)
                    return
                waiter = self._waiters.popleft()
            if _call_in_loop(waiter, self._deliver, waiter, instance):
                return
        instance.close()  # the pool is closed: nobody will borrow it again

    def close(self) -> list[T]:
        """Refuse new borrowers and fail waiting ones; returns the idle instances to free.

        Instances still lent out are closed when they are given back.
        """
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        self._fail_waiters(self.closed_error(), uncreate=False)
        return idle

    def _load_one(self) -> None:
        try:
            instance = self._load()
        except BaseException as exc:  # every waiter learns why; a later call may retry
            self._fail_waiters(exc, uncreate=True)
            return
        self.release(instance)

    def _fail_waiters(self, exc: BaseException, *, uncreate: bool) -> None:
        with self._lock:
            if uncreate:
                self._created -= 1
            waiters = list(self._waiters)
            self._waiters.clear()
        for waiter in waiters:
            _call_in_loop(waiter, _set_exception, waiter, exc)

    def _deliver(self, waiter: asyncio.Future[T], instance: T) -> None:
        if waiter.done():  # the waiter gave up in the meantime
            self.release(instance)
        else:
            waiter.set_result(instance)

    def closed_error(self) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"provider {self.name!r} was closed; create a new one to run its models",
            code="provider_closed",
            provider=self.name,
        )


def _call_in_loop(future: asyncio.Future[Any], callback: Callable[..., None], *args: Any) -> bool:
    try:
        future.get_loop().call_soon_threadsafe(callback, *args)
    except RuntimeError:  # that event loop is closed
        return False
    return True


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
