"""Synthetic traffic for calibrating drift checks: support tickets, with knobs to inject drift,
and a writer that stores them as runs (trace, root span, model span) the way the runner does.

Used by the false-alarm benchmark and the detection tests: draw many no-drift window pairs
from one distribution and count how often a check flags one (it should be at most
``alpha``), then move one knob at a time and check the drift is found.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np

from keel.core.monitoring import TraceSample
from keel.core.tracing import SpanRecord, TraceRecord
from keel.drift.check import WindowFeatures
from keel.store import Store

_SUBJECTS = (
    "Charged twice for {product}", "Cannot log in to {product}", "Refund for {product}",
    "{product} crashes on start", "Invoice for {product} is wrong",
    "How do I export from {product}", "{product} is very slow today",
    "Change the email on my {product} account",
)  # fmt: skip
_BODIES = (
    "My card was billed two times for the same {product} order last {day}.",
    "Since {day} the {product} app shows an error when I open it.",
    "I would like my money back for {product}, it did not work as described.",
    "The password reset email for {product} never arrives, I tried on {day}.",
    "Could you tell me how to download all my data from {product}?",
    "Every page in {product} takes a minute to load since {day}.",
)  # fmt: skip
_PRODUCTS = ("Keel Cloud", "the mobile app", "Pro plan", "the desktop client", "Team plan")
_DAYS = ("Monday", "Tuesday", "week", "month", "Friday")
_GERMAN = (
    "Meine Karte wurde zweimal für dieselbe Bestellung belastet, bitte prüfen Sie das.",
    "Seit Montag zeigt die App beim Öffnen einen Fehler an und stürzt ab.",
    "Ich möchte mein Geld zurück, das Produkt funktioniert nicht wie beschrieben.",
    "Die E-Mail zum Zurücksetzen des Passworts kommt nie an, was kann ich tun?",
)
_MEDICAL = (
    "What dose of ibuprofen is safe for a child with a fever of 39 degrees?",
    "My doctor prescribed two medicines that interact, should I stop one of them?",
    "Is it normal to feel dizzy after the second vaccine shot, and for how long?",
    "Can I take antibiotics together with my blood pressure tablets in the morning?",
)
LABELS = ("billing", "technical", "account", "other")
_REFUSAL = "I'm sorry, but I can't help with that request."


@dataclass(frozen=True, slots=True)
class Traffic:
    """One window's generating distribution; the defaults are the reference traffic."""

    german_share: float = 0.0
    medical_share: float = 0.0
    label_weights: tuple[float, ...] = (0.4, 0.35, 0.15, 0.1)
    refusal_rate: float = 0.02
    answer_words: float = 20.0
    model_version: str = "gpt-4o-2024-08-06"

    def ticket(self, rng: np.random.Generator) -> str:
        draw = rng.random()
        if draw < self.german_share:
            return str(rng.choice(_GERMAN))
        if draw < self.german_share + self.medical_share:
            return str(rng.choice(_MEDICAL))
        fill = {"product": rng.choice(_PRODUCTS), "day": rng.choice(_DAYS)}
        subject = str(rng.choice(_SUBJECTS)).format(**fill)
        return subject + "\n" + str(rng.choice(_BODIES)).format(**fill)

    def answer(self, rng: np.random.Generator) -> str:
        if rng.random() < self.refusal_rate:
            return _REFUSAL
        words = max(1, int(rng.poisson(self.answer_words)))
        return " ".join(["ok"] * words)

    def samples(self, rng: np.random.Generator, n: int, start_ns: int = 0) -> list[TraceSample]:
        weights = np.asarray(self.label_weights) / sum(self.label_weights)
        labels = rng.choice(len(LABELS), size=n, p=weights)
        return [
            TraceSample(
                trace_id=f"{start_ns + i:032x}",
                start_ns=start_ns + i,
                input_text=self.ticket(rng),
                label=LABELS[int(labels[i])],
                answer=self.answer(rng),
                model_version=self.model_version,
            )
            for i in range(n)
        ]


def take(pool: WindowFeatures, indices: np.ndarray) -> WindowFeatures:
    """The window made of some runs of a pool whose features were computed once (every run
    of the pool has an input and an answer, so all feature lists align)."""
    picked = [int(i) for i in indices]
    embeddings = pool.embeddings[indices] if pool.embeddings is not None else None
    return WindowFeatures(
        embeddings=embeddings,
        input_lengths=[pool.input_lengths[i] for i in picked],
        languages=[pool.languages[i] for i in picked] if pool.languages else [],
        labels=[pool.labels[i] for i in picked],
        refusals=[pool.refusals[i] for i in picked],
        output_lengths=[pool.output_lengths[i] for i in picked],
        model_versions=Counter(pool.model_versions),  # the pool's versions, as a set
        traces=len(picked),
    )


NS = 1_000_000_000


def run_records(
    sample: TraceSample,
    pipeline: str,
    *,
    duration_ms: float = 50.0,
    status: str = "ok",
    error_code: str | None = None,
    cost_usd: Decimal = Decimal(0),
) -> tuple[TraceRecord, list[SpanRecord]]:
    trace_id = secrets.token_hex(16)
    root, child = secrets.token_hex(8), secrets.token_hex(8)
    start, end = sample.start_ns, sample.start_ns + int(duration_ms * 1e6)
    decision: dict[str, Any] | None = None
    if sample.label:
        decision = {"decision": f"queue:{sample.label}", "label": sample.label,
                    "confidence": 0.9, "reason": "confident"}  # fmt: skip
    trace = TraceRecord(
        trace_id=trace_id,
        correlation_id=trace_id,
        name=f"pipeline {pipeline}",
        start_ns=start,
        end_ns=end,
        status="error" if status == "error" else "ok",
        error_code=error_code,
        pipeline=pipeline,
        pipeline_version="v1",
        decision=str(decision["decision"]) if decision else None,
        cost_usd=cost_usd,
    )
    spans = [
        SpanRecord(
            trace_id=trace_id, span_id=root, parent_span_id=None, name=f"pipeline {pipeline}",
            start_ns=start, end_ns=end, layer="pipeline",
            input=json.dumps({"ticket": sample.input_text}) if sample.input_text else None,
            output=json.dumps(decision) if decision else None,
        ),
        SpanRecord(
            trace_id=trace_id, span_id=child, parent_span_id=root, name="chat openai:gpt-4o",
            start_ns=start + 1, end_ns=end - 1, layer="model",
            output=json.dumps(sample.answer) if sample.answer is not None else None,
            model="openai:gpt-4o", model_version=sample.model_version,
        ),
    ]  # fmt: skip
    return trace, spans


def store_runs(store: Store, samples: Sequence[TraceSample], pipeline: str, **outcome: Any) -> None:
    traces, spans = [], []
    for sample in samples:
        trace, records = run_records(sample, pipeline, **outcome)
        traces.append(trace)
        spans.extend(records)
    store.traces.write(spans, traces)


def spread(samples: Sequence[TraceSample], start_ns: int, end_ns: int) -> list[TraceSample]:
    """The samples with start times evenly spread over ``[start_ns, end_ns)``."""
    step = (end_ns - start_ns) // max(len(samples), 1)
    return [replace(s, start_ns=start_ns + i * step) for i, s in enumerate(samples)]
