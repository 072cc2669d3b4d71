"""Alert notifications to webhooks: generic JSON or Slack-compatible, with timeouts and retries.

Each delivery is tried up to ``attempts`` times with exponential backoff on connection
errors, timeouts, HTTP 429 and 5xx; another 4xx answer is final (the receiver refused the
payload; sending it again would not help). The outcome of every delivery is returned so the
alert's history records whether anyone was told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from keel.core.errors import TargetRefused
from keel.store.alerts import Alert
from keel.webhook_target import ALERT_SETTING, pinned_session

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("keel.alerts")
Event = Literal["firing", "resolved"]
Format = Literal["json", "slack"]
_EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    format: Format = "json"
    name: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.url


def json_payload(alert: Alert, event: Event) -> dict[str, Any]:
    return {"source": "keel", "event": event, "alert": alert.to_dict()}


def slack_payload(alert: Alert, event: Event) -> dict[str, Any]:
    """Slack's incoming-webhook shape: ``text`` (the fallback) plus Block Kit blocks."""
    title = f"[{event.upper()}] {alert.severity}: {alert.key}"
    when = alert.resolved_at if event == "resolved" and alert.resolved_at else alert.started_at
    facts = [
        f"*kind:* {alert.kind}",
        f"*pipeline:* {alert.pipeline or '-'}",
        f"*since:* {alert.started_at.isoformat(timespec='seconds')}",
    ]
    return {
        "text": f"{title} - {alert.summary}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{_EMOJI[event]} {alert.summary}"[:3000]},
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": " | ".join(facts)}],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"alert {alert.id} at {when.isoformat()}"}],
            },
        ],
    }


def payload(alert: Alert, event: Event, fmt: Format) -> dict[str, Any]:
    return slack_payload(alert, event) if fmt == "slack" else json_payload(alert, event)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class Notifier:
    def __init__(
        self,
        targets: Sequence[Target],
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        allow_private: bool = False,
    ) -> None:
        self.targets = tuple(targets)
        self._timeout = timeout_s
        self._attempts = attempts
        self._backoff = backoff_s
        self._allow_private = allow_private

    async def send(self, alert: Alert, event: Event) -> list[dict[str, Any]]:
        """Deliver to every target concurrently; one record per target."""
        deliveries = (self._deliver(t, alert, event) for t in self.targets)
        return list(await asyncio.gather(*deliveries))

    async def _deliver(self, target: Target, alert: Alert, event: Event) -> dict[str, Any]:
        record: dict[str, Any] = {
            "target": target.label,
            "event": event,
            "at": datetime.now(UTC).isoformat(),
            "ok": False,
            "attempts": 0,
        }
        body = payload(alert, event, target.format)
        try:
            session = await pinned_session(
                target.url,
                allow_private=self._allow_private,
                setting=ALERT_SETTING,
                timeout_s=self._timeout,
            )
        except TargetRefused as exc:
            log.warning("alert %s not sent to %s: %s", alert.key, target.label, exc)
            return record | {"error": exc.message}
        started = time.monotonic()
        async with session:
            for attempt in range(1, self._attempts + 1):
                record["attempts"] = attempt
                status, error = await self._post(session, target, body)
                record["status"], record["error"] = status, error
                if status is not None and status < 300:
                    record["ok"] = True
                    break
                if status is not None and not _retryable(status):
                    break
                if attempt < self._attempts:
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        record["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        if not record["ok"]:
            log.warning("alert %s not delivered to %s: %s", alert.key, target.label, record)
        return record

    @staticmethod
    async def _post(
        session: aiohttp.ClientSession, target: Target, body: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        import aiohttp  # loaded by pinned_session already

        try:
            async with session.post(
                target.url, json=body, headers=target.headers, allow_redirects=False
            ) as response:
                await response.read()
                error = None if response.status < 300 else f"HTTP {response.status}"
                return response.status, error
        except TimeoutError:
            return None, "timeout"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"
