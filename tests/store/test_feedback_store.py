"""Feedback, the shared-feedback queue, review samples and online scores, on SQLite and
Postgres: duplicates and bad input change nothing; approvals write dataset versions."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from keel.alerts.engine import AlertEngine
from keel.alerts.notify import Notifier
from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.core.tracing import SpanRecord, TraceRecord
from keel.feedback.accuracy import review_accuracy
from keel.feedback.alerting import ReviewAccuracyCondition
from keel.feedback.service import FeedbackService
from keel.feedback.verdicts import mark_sample
from keel.settings import FeedbackSettings
from keel.store import Store
from keel.store.samples import OnlineScore, ReviewSample
from keel.store.schema import metadata

SPEC = {
    "name": "triage",
    "prompt": {"user": "{{ subject }}"},
    "output": {
        "type": "label",
        "labels": {"billing": {}, "technical": {}, "account": {}},
        "default_decision": "human",
    },
}
VERSION = "a" * 64


def traced(store: Store, subject: str = "charged twice", label: str = "billing") -> str:
    """A stored run of the label pipeline ``triage`` that answered ``label``."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    decision = {"decision": f"queue:{label}", "label": label, "confidence": 0.9}
    root = SpanRecord(
        trace_id,
        span_id,
        "c" * 16,  # a caller's traceparent: the run's root is not the trace's first span
        "pipeline triage",
        1,
        2,
        layer="pipeline",
        attributes={"keel.root": True},
        input=json.dumps({"subject": subject}),
        output=json.dumps(decision),
    )
    trace = TraceRecord(
        trace_id,
        trace_id,
        "pipeline triage",
        1,
        2,
        pipeline="triage",
        pipeline_version=VERSION,
        caller="key:1:app",
    )
    store.traces.write([root], [trace])
    return trace_id


@pytest.fixture
def service(store: Store) -> FeedbackService:
    store.pipelines.put_version("triage", VERSION, SPEC)
    return FeedbackService(store, FeedbackSettings(flood_corrections_per_hour=3))


def snapshot(store: Store) -> dict[str, list[Any]]:
    """Every row of every table, to show that a refused request changed nothing."""
    with store.engine.connect() as conn:
        return {
            table.name: sorted(map(str, conn.execute(sa.select(table)).all()))
            for table in metadata.sorted_tables
        }


def test_corrections_record_whether_they_override(service: FeedbackService, store: Store) -> None:
    trace_id = traced(store)
    same = service.submit({"trace_id": trace_id, "kind": "correction", "label": "billing"}, "u1")
    other = service.submit({"trace_id": trace_id, "kind": "correction", "label": "account"}, "u2")
    assert same.feedback.overrides is False and other.feedback.overrides is True
    assert other.feedback.automated["label"] == "billing"
    thumbs = service.submit(
        {"trace_id": trace_id, "kind": "thumbs", "value": "up", "end_user": "e7"}, "u1"
    )
    assert thumbs.feedback.user_id == "u1/e7" and thumbs.feedback.overrides is None
    listed = store.feedback.list(trace_id=trace_id)
    assert {r.id for r in listed} == {same.feedback.id, other.feedback.id, thumbs.feedback.id}


def test_refused_feedback_changes_nothing(service: FeedbackService, store: Store) -> None:
    trace_id = traced(store)
    service.submit({"trace_id": trace_id, "kind": "score", "value": 0.5, "share": True}, "u1")
    before = snapshot(store)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        (
            {"trace_id": trace_id, "kind": "score", "value": 0.9},
            ConflictError,
            "feedback_duplicate",
        ),
        ({"trace_id": "f" * 32, "kind": "thumbs", "value": "up"}, NotFoundError, "trace_not_found"),
        (
            {"trace_id": trace_id, "kind": "score", "value": 7},
            InvalidInputError,
            "feedback_invalid",
        ),
        (
            {"trace_id": trace_id, "kind": "correction", "label": "x", "output": "y"},
            InvalidInputError,
            "feedback_invalid",
        ),
        (
            {"trace_id": trace_id, "kind": "correction", "label": "refunds"},
            InvalidInputError,
            "correction_label_unknown",
        ),
        (
            {"trace_id": trace_id, "kind": "correction", "output": "billing"},
            InvalidInputError,
            "correction_invalid",
        ),
        ({"trace_id": trace_id, "kind": "praise"}, InvalidInputError, "feedback_invalid"),
    ]
    for body, error, code in cases:
        with pytest.raises(error) as info:
            service.submit(body, "u1")
        assert info.value.code == code, body
    assert snapshot(store) == before


def test_shared_feedback_is_scrubbed_screened_and_approved_into_versions(
    service: FeedbackService, store: Store
) -> None:
    first = traced(store, "charged twice, mail me at ana@example.com", "billing")
    second = traced(store, "cannot log in", "technical")
    body = {
        "trace_id": first,
        "kind": "correction",
        "label": "account",
        "share": True,
        "comment": "call +1 650 253 0000",
    }
    queued = service.submit(body, "u1").queued
    assert queued is not None and queued.status == "pending" and queued.flags == []
    assert queued.input == {"subject": "charged twice, mail me at [EMAIL_ADDRESS]"}
    assert queued.comment == "call [PHONE_NUMBER]"
    assert set(queued.pii) == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    approved = service.approve(queued.id, "rev", dataset="triage-gold", note="good")
    assert (approved.status, approved.dataset, approved.dataset_version) == (
        "approved",
        "triage-gold",
        1,
    )
    [item] = store.datasets.items("triage-gold")
    assert (item.item_id, item.label, item.tags) == (first, "account", ("feedback",))
    assert item.metadata["approved_by"] == "rev"
    thumbs = service.submit(
        {"trace_id": second, "kind": "thumbs", "value": "up", "share": True}, "u2"
    ).queued
    assert thumbs is not None
    service.approve(thumbs.id, "rev", dataset="triage-gold")
    assert [i.label for i in store.datasets.items("triage-gold")] == ["account", "technical"]
    assert len(store.datasets.items("triage-gold", 1)) == 1  # version 1 is unchanged
    with pytest.raises(ConflictError) as info:
        service.reject(queued.id, "rev2")
    assert info.value.code == "queue_item_decided"
    actions = [(e.action, e.actor, e.target) for e in store.audit.list()]
    assert ("feedback.approve", "rev", queued.id) in actions


def test_pranks_are_filtered_and_cannot_be_approved(service: FeedbackService, store: Store) -> None:
    trace_id = traced(store)
    body = {
        "trace_id": trace_id,
        "kind": "correction",
        "label": "account",
        "share": True,
        "comment": "lol jk asdfghjkl",
    }
    queued = service.submit(body, "u1").queued
    assert queued is not None and queued.status == "filtered"
    assert {"joke", "gibberish"} <= set(queued.flags)
    with pytest.raises(ConflictError) as info:
        service.approve(queued.id, "rev")
    assert info.value.code == "queue_item_flagged"
    assert service.reject(queued.id, "rev").status == "rejected"
    with pytest.raises(NotFoundError):
        store.datasets.get("triage-feedback")


def test_a_user_flooding_corrections_is_flagged(service: FeedbackService, store: Store) -> None:
    flags = []
    for _ in range(4):
        body = {"trace_id": traced(store), "kind": "correction", "label": "account", "share": True}
        queued = service.submit(body, "flood").queued
        assert queued is not None
        flags.append("flooding" in queued.flags)
    assert flags == [False, False, False, True]


def _sample(store: Store, version: str = VERSION, minutes_ago: float = 0) -> ReviewSample:
    trace_id = traced(store)
    sample = ReviewSample(
        id=secrets.token_hex(8),
        trace_id=trace_id,
        pipeline="triage",
        pipeline_version=version,
        input={"subject": "x"},
        result={"decision": {"label": "billing"}},
        status="pending",
        created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )
    store.samples.add(sample)
    store.samples.add(sample)  # the same trace twice is kept once
    return sample


def test_samples_are_marked_once_and_corrections_become_feedback(
    service: FeedbackService, store: Store
) -> None:
    right, wrong, old = _sample(store), _sample(store), _sample(store, minutes_ago=120)
    mark_sample(store, right.id, "correct", "rev")
    marked = mark_sample(store, wrong.id, "incorrect", "rev", label="account")
    mark_sample(store, old.id, "incorrect", "rev")
    assert marked.correction == {"label": "account"} and marked.reviewed_by == "rev"
    [feedback] = store.feedback.list(trace_id=wrong.trace_id)
    assert (feedback.kind, feedback.user_id, feedback.overrides) == ("correction", "rev", True)
    with pytest.raises(ConflictError) as info:
        mark_sample(store, right.id, "incorrect", "other")
    assert info.value.code == "sample_reviewed"
    with pytest.raises(InvalidInputError):
        mark_sample(store, _sample(store).id, "incorrect", "rev", label="refunds")
    estimate = review_accuracy(store, "triage", timedelta(hours=1), target=0.9)
    assert (estimate.n, estimate.correct) == (2, 1)
    assert len(store.samples.list(status="pending")) == 1


def test_online_scores_are_stored_once_per_trace_and_metric(store: Store) -> None:
    now = datetime.now(UTC)
    score = OnlineScore("t" * 32, "latency_ms", "triage", VERSION, "latency", "score", 12.5, now)
    store.samples.add_scores(
        [score, OnlineScore("t" * 32, "ok", "triage", VERSION, "x", "pass", None, now)]
    )
    store.samples.add_scores([score])
    found = store.samples.scores(trace_id="t" * 32)
    assert [(s.metric, s.value) for s in found] == [("latency_ms", 12.5), ("ok", None)]
    assert store.samples.scores(pipeline="triage", version="other") == []


def test_review_accuracy_below_target_fires_an_alert_and_resolves(store: Store) -> None:
    store.pipelines.put_version("triage", VERSION, SPEC)
    condition = ReviewAccuracyCondition(store, FeedbackSettings(accuracy_targets={"triage": 0.9}))
    engine = AlertEngine(store, Notifier([]), [condition])
    now = datetime.now(UTC)
    assert engine.evaluate(now) == []  # nothing reviewed: no evidence, no alert
    for _ in range(10):  # 2/10 correct: Wilson 95 % upper bound 0.51 < 0.9
        mark_sample(store, _sample(store).id, "incorrect", "rev")
    for _ in range(2):
        mark_sample(store, _sample(store).id, "correct", "rev")
    [fired] = engine.evaluate(now + timedelta(seconds=1))
    assert fired.event == "firing" and fired.alert.kind == "review_accuracy"
    assert fired.alert.details["reviewed"] == 12 and fired.alert.details["correct"] == 2
    for _ in range(60):  # 62/72 correct: the interval now reaches the target
        mark_sample(store, _sample(store).id, "correct", "rev")
    [resolved] = engine.evaluate(now + timedelta(seconds=2))
    assert resolved.event == "resolved" and resolved.alert.id == fired.alert.id


def test_dataset_items_come_from_the_run_root_under_a_callers_traceparent(store: Store) -> None:
    from keel.evals.from_traces import items_from_traces

    trace_id = traced(store, subject="card billed twice", label="billing")
    items = items_from_traces(store, pipeline="triage")
    assert [(i.item_id, i.input, i.label) for i in items] == [
        (trace_id, {"subject": "card billed twice"}, "billing")
    ]
