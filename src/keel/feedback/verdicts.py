"""Reviewers' verdicts on sampled answers: correct, or incorrect with an optional correction.

A correction made in review is also recorded as ``correction`` feedback from the reviewer
(in the same transaction), so it counts as ground truth and in the reviewer's override rate
exactly like a correction sent through the feedback API.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError
from keel.feedback.answers import check_correction, label_set, overrides
from keel.store.feedback import FeedbackRecord
from keel.store.samples import ReviewSample, Verdict

if TYPE_CHECKING:
    from keel.store import Store

VERDICTS = ("correct", "incorrect")


def mark_sample(
    store: Store,
    sample_id: str,
    verdict: str,
    reviewer: str,
    *,
    label: str | None = None,
    output: Any = None,
    note: str | None = None,
) -> ReviewSample:
    if verdict not in VERDICTS:
        msg = f"unknown verdict {verdict!r}; use correct or incorrect"
        raise InvalidInputError(msg, code="verdict_invalid")
    corrected = label is not None or output is not None
    if corrected and verdict == "correct":
        msg = "a correct answer takes no correction; mark it incorrect to correct it"
        raise InvalidInputError(msg, code="correction_misplaced")
    if label is not None and output is not None:
        raise InvalidInputError(
            "correct with a label or an output, not both", code="correction_invalid"
        )
    sample = store.samples.get(sample_id)
    row = None
    correction = None
    if corrected:
        check_correction(label_set(store, sample.pipeline, sample.pipeline_version), label, output)
        correction = {"label": label} if label is not None else {"output": output}
        row = asdict(_as_feedback(sample, reviewer, label, output, correction))
    typed: Verdict = "correct" if verdict == "correct" else "incorrect"
    return store.samples.mark(
        sample_id, typed, reviewer, correction=correction, note=note, feedback_row=row
    )


def _as_feedback(
    sample: ReviewSample, reviewer: str, label: str | None, output: Any, value: dict[str, Any]
) -> FeedbackRecord:
    automated = sample.result.get("decision") or sample.result.get("output")
    return FeedbackRecord(
        id=secrets.token_hex(8),
        trace_id=sample.trace_id,
        pipeline=sample.pipeline,
        pipeline_version=sample.pipeline_version,
        kind="correction",
        value=value,
        comment=None,
        user_id=reviewer,
        caller=reviewer,
        end_user=None,
        overrides=overrides(automated, label, output),
        automated=automated,
        share=False,
        created_at=datetime.now(UTC),
    )
