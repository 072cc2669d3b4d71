"""The instance pool lends each instance to one borrower at a time and never loses one."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from keel.core.errors import ProviderUnavailable
from keel.providers.instance_pool import InstancePool


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Fake:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def counting_loader() -> tuple[Callable[[], Fake], list[Fake]]:
    made: list[Fake] = []
    numbers = itertools.count()
    lock = threading.Lock()

    def load() -> Fake:
        with lock:
            made.append(Fake(next(numbers)))
            return made[-1]

    return load, made


@pytest.mark.anyio
async def test_loads_lazily_and_never_more_than_size(executor: ThreadPoolExecutor) -> None:
    load, made = counting_loader()
    pool = InstancePool("t", 2, load, executor)
    assert made == []
    first, second = await pool.acquire(), await pool.acquire()
    third = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.05)
    assert not third.done()
    assert len(made) == 2
    pool.release(first)
    assert await third is first
    pool.release(second)
    pool.release(first)
    assert pool.created == 2


@pytest.mark.anyio
async def test_instances_are_never_shared(executor: ThreadPoolExecutor) -> None:
    load, _ = counting_loader()
    pool = InstancePool("t", 2, load, executor)
    in_use: set[int] = set()

    async def borrow() -> None:
        instance = await pool.acquire()
        assert instance.number not in in_use
        in_use.add(instance.number)
        await asyncio.sleep(0.001)
        in_use.discard(instance.number)
        # give it back from a worker thread, as a generation does
        await asyncio.to_thread(pool.release, instance)

    await asyncio.gather(*(borrow() for _ in range(50)))


@pytest.mark.anyio
async def test_a_cancelled_waiter_does_not_lose_the_instance(executor: ThreadPoolExecutor) -> None:
    load, _ = counting_loader()
    pool = InstancePool("t", 1, load, executor)
    held = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    pool.release(held)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await asyncio.wait_for(pool.acquire(), 1) is held


@pytest.mark.anyio
async def test_a_failed_load_reaches_the_waiter_and_can_be_retried(
    executor: ThreadPoolExecutor,
) -> None:
    attempts = itertools.count()

    def flaky() -> Fake:
        if next(attempts) == 0:
            raise ProviderUnavailable("disk on fire", code="local_model_load_failed")
        return Fake(1)

    pool = InstancePool("t", 1, flaky, executor)
    with pytest.raises(ProviderUnavailable, match="disk on fire"):
        await pool.acquire()
    assert (await pool.acquire()).number == 1


@pytest.mark.anyio
async def test_close_fails_waiters_and_frees_everything(executor: ThreadPoolExecutor) -> None:
    load, made = counting_loader()
    pool = InstancePool("t", 1, load, executor)
    lent = await pool.acquire()
    waiter = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.01)
    assert pool.close() == []
    with pytest.raises(ProviderUnavailable) as caught:
        await waiter
    assert caught.value.code == "provider_closed"
    pool.release(lent)
    assert lent.closed
    with pytest.raises(ProviderUnavailable):
        await pool.acquire()
    assert made == [lent]


def test_one_pool_serves_several_event_loops(executor: ThreadPoolExecutor) -> None:
    load, made = counting_loader()
    pool = InstancePool("t", 1, load, executor)

    async def borrow_and_return() -> int:
        instance = await pool.acquire()
        pool.release(instance)
        return instance.number

    assert asyncio.run(borrow_and_return()) == asyncio.run(borrow_and_return()) == 0
    assert len(made) == 1
