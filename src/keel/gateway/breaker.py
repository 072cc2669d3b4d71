"""A circuit breaker per provider endpoint: closed, open after N failures in a window,
half-open with one probe at a time once the open period has passed."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from keel.gateway.errors import CircuitOpen
from keel.settings import BreakerSettings

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Counts retryable failures of one endpoint. Not shared across processes on purpose:
    each replica judges the endpoint from the calls it makes itself."""

    __slots__ = ("_clock", "_failures", "_opened_at", "_probing", "_settings", "name")

    def __init__(
        self, name: str, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self._settings = settings
        self._clock = clock
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._settings.open_seconds:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Raise ``CircuitOpen`` unless a call may go through now."""
        state = self.state
        if state == "closed":
            return
        if state == "half_open" and not self._probing:
            self._probing = True
            return
        assert self._opened_at is not None
        wait = max(0.0, self._settings.open_seconds - (self._clock() - self._opened_at))
        raise CircuitOpen(
            f"provider endpoint {self.name!r} failed {self._settings.failure_threshold} times "
            f"within {self._settings.window_seconds:g}s, so calls to it are paused; the next "
            f"probe goes out in {wait:.1f}s. Configure a fallback to stay available meanwhile.",
            provider=self.name,
            retry_after=max(1.0, wait),
        )

    def on_success(self) -> None:
        self._opened_at = None
        self._probing = False
        self._failures.clear()

    def on_failure(self) -> None:
        now = self._clock()
        if self._probing or self._opened_at is not None:
            self._opened_at = now
            self._probing = False
            return
        failures = self._failures
        failures.append(now)
        horizon = now - self._settings.window_seconds
        while failures and failures[0] < horizon:
            failures.popleft()
        if len(failures) >= self._settings.failure_threshold:
            self._opened_at = now
            failures.clear()

    def release_probe(self) -> None:
        """A probe ended without judging the endpoint (e.g. the client went away)."""
        self._probing = False
