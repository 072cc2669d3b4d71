"""Feedback use cases, shared by the HTTP API and the CLI: submit feedback on a trace, and
move shared conversations through the queue into evaluation datasets."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from keel.core.dataset import DatasetItem
from keel.core.errors import InvalidInputError
from keel.feedback.answers import TracedAnswer, check_correction, label_set, load_answer, overrides
from keel.feedback.payloads import FEEDBACK_TYPES, Correction, Thumbs, parse_feedback
from keel.feedback.screening import Conversation, FeedbackScreen
from keel.store.feedback import Approval, FeedbackRecord, QueueItem

if TYPE_CHECKING:
    from keel.core.tracing import TraceRecord
    from keel.settings import FeedbackSettings
    from keel.store import Store

FEEDBACK_TAG = "feedback"


@dataclass(frozen=True, slots=True)
class Submitted:
    feedback: FeedbackRecord
    queued: QueueItem | None

    def to_dict(self) -> dict[str, Any]:
        body = self.feedback.to_dict()
        if self.queued is not None:
            body["queue"] = {
                "queue_id": self.queued.id,
                "status": self.queued.status,
                "flags": self.queued.flags,
            }
        return body


def user_id(caller: str, end_user: str | None) -> str:
    return f"{caller}/{end_user}" if end_user else caller


def default_screen(settings: FeedbackSettings) -> FeedbackScreen:
    from keel.guardrails.content import ToxicityScanner  # deferred: loads a model on first use
    from keel.guardrails.sanitizer import PiiSanitizer

    return FeedbackScreen(PiiSanitizer().scrub, ToxicityScanner(), settings.toxicity_threshold)


class FeedbackService:
    def __init__(
        self,
        store: Store,
        settings: FeedbackSettings,
        screen: Callable[[], FeedbackScreen] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._screen_factory = screen or (lambda: default_screen(settings))
        self._screen: FeedbackScreen | None = None

    @property
    def screen(self) -> FeedbackScreen:
        if self._screen is None:
            self._screen = self._screen_factory()
        return self._screen

    def submit(
        self,
        data: Any,
        caller: str,
        *,
        authorize: Callable[[TraceRecord], None] | None = None,
    ) -> Submitted:
        """Validate and store one submission; nothing is stored when anything is wrong."""
        payload = data if isinstance(data, FEEDBACK_TYPES) else parse_feedback(data)
        answered = load_answer(self._store, payload.trace_id)
        if authorize is not None:
            authorize(answered.trace)
        trace = answered.trace
        overrode: bool | None = None
        if isinstance(payload, Correction):
            labels = label_set(self._store, trace.pipeline, trace.pipeline_version)
            check_correction(labels, payload.label, payload.output)
            overrode = overrides(answered.answer, payload.label, payload.output)
        record = FeedbackRecord(
            id=secrets.token_hex(8),
            trace_id=trace.trace_id,
            pipeline=trace.pipeline,
            pipeline_version=trace.pipeline_version,
            kind=payload.kind,
            value=payload.stored_value(),
            comment=payload.comment,
            user_id=user_id(caller, payload.end_user),
            caller=caller,
            end_user=payload.end_user,
            overrides=overrode,
            automated=answered.answer if overrode is not None else None,
            share=payload.share,
            created_at=datetime.now(UTC),
        )
        queued = self._queue_item(record, payload, answered) if payload.share else None
        return Submitted(self._store.feedback.add(record, queued), queued)

    def _queue_item(
        self, record: FeedbackRecord, payload: Any, answered: TracedAnswer
    ) -> QueueItem:
        if answered.input is None:
            msg = (
                f"trace {record.trace_id} kept no input (content capture is off or its logging "
                "policy drops it), so it cannot be shared; send the feedback without share"
            )
            raise InvalidInputError(msg, code="feedback_share_unavailable")
        label, expected = ground_truth(payload, answered)
        since = datetime.now(UTC) - timedelta(hours=1)
        flooding = (
            isinstance(payload, Correction)
            and self._store.feedback.count_corrections(record.user_id, since)
            >= self._settings.flood_corrections_per_hour
        )
        screened = self.screen.screen(
            Conversation(answered.input, answered.answer, label, expected, payload.comment),
            flooding=flooding,
        )
        clean = screened.conversation
        return QueueItem(
            id=secrets.token_hex(8),
            feedback_id=record.id,
            trace_id=record.trace_id,
            pipeline=record.pipeline,
            pipeline_version=record.pipeline_version,
            input=clean.input,
            output=clean.output,
            label=clean.label,
            expected=clean.expected,
            comment=clean.comment,
            status="filtered" if screened.flags else "pending",
            flags=list(screened.flags),
            pii=list(screened.pii),
            submitted_by=record.user_id,
            created_at=record.created_at,
        )

    def approve(
        self, queue_id: str, reviewer: str, *, dataset: str | None = None, note: str | None = None
    ) -> QueueItem:
        """Add a pending queue item to the next version of ``dataset``, audited."""
        item = self._store.feedback.queued(queue_id)
        name = dataset or f"{item.pipeline or 'traces'}-feedback"
        metadata = {
            "trace_id": item.trace_id,
            "pipeline": item.pipeline,
            "pipeline_version": item.pipeline_version,
            "feedback_id": item.feedback_id,
            "approved_by": reviewer,
        }
        entry = DatasetItem(
            item_id=item.trace_id,
            input=item.input,
            expected=item.expected,
            label=item.label,
            tags=(FEEDBACK_TAG,),
            metadata=metadata,
        )
        return self._store.feedback.approve(queue_id, Approval(name, entry, reviewer, note))

    def reject(self, queue_id: str, reviewer: str, note: str | None = None) -> QueueItem:
        return self._store.feedback.reject(queue_id, reviewer, note)


def ground_truth(payload: Any, answered: TracedAnswer) -> tuple[str | None, Any]:
    """``(label, expected)`` a shared conversation teaches: the correction; for a thumbs up,
    the automated answer the user confirmed; otherwise nothing (input-only example)."""
    if isinstance(payload, Correction):
        return payload.label, payload.output
    if isinstance(payload, Thumbs) and payload.value == "up":
        if answered.label is not None:
            return answered.label, None
        return None, answered.answer
    return None, None
