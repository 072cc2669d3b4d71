"""The human review queue: held answers stored, decided by reviewers or by timeout, audited,
and announced to the caller's webhook.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from keel.core.errors import TargetRefused
from keel.guardrails.review import HeldAnswer
from keel.store import Store
from keel.store.reviews import Decision, ReviewItem
from keel.webhook_target import REVIEW_SETTING, pinned_session

log = logging.getLogger("keel.review")
RELEASED = ("approved", "edited")


def caller_view(item: ReviewItem) -> dict[str, Any]:
    """What the original caller may see: the answer only once a reviewer released it."""
    body = item.to_dict(with_result=False)
    body.pop("note", None)
    if item.status in RELEASED:
        body["result"] = item.result
    return body


class ReviewQueue:
    def __init__(
        self, store: Store, *, webhook_timeout_s: float = 5.0, allow_private_webhooks: bool = False
    ) -> None:
        self._store = store
        self._timeout = webhook_timeout_s
        self._allow_private = allow_private_webhooks

    def hold(self, held: HeldAnswer) -> None:
        self._store.reviews.create(ReviewItem(status="pending", **asdict(held)))

    def get(self, review_id: str) -> ReviewItem:
        item = self._store.reviews.get(review_id)
        if item.status == "pending" and item.deadline <= _now():
            self._store.reviews.expire()
            item = self._store.reviews.get(review_id)
        return item

    def decide(
        self,
        review_id: str,
        decision: Decision,
        reviewer: str,
        *,
        edited: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> ReviewItem:
        result = None
        if decision == "edit":
            current = self._store.reviews.get(review_id).result
            result = {**current, **(edited or {})}
        return self._store.reviews.decide(review_id, decision, reviewer, result=result, note=note)

    def expire(self) -> list[ReviewItem]:
        return self._store.reviews.expire()

    async def notify(self, item: ReviewItem) -> bool:
        """POST the caller's view of a decided item to its webhook; False if that failed."""
        if not item.webhook:
            return False
        try:
            session = await pinned_session(
                item.webhook,
                allow_private=self._allow_private,
                setting=REVIEW_SETTING,
                timeout_s=self._timeout,
            )
        except TargetRefused as exc:
            log.warning("review webhook refused: %s", exc)
            return False
        import aiohttp  # deferred: loaded with the session (keel.webhook_target)

        try:
            async with (
                session,
                session.post(
                    item.webhook, json=caller_view(item), allow_redirects=False
                ) as response,
            ):
                return 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("review webhook %s failed: %s", item.webhook, exc)
            return False

    async def sweep(self) -> list[ReviewItem]:
        """Apply default actions to overdue items and announce them."""
        expired = await asyncio.to_thread(self.expire)
        for item in expired:
            await self.notify(item)
        return expired


def _now() -> datetime:
    return datetime.now(UTC)
