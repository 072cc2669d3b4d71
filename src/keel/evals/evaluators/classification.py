"""Classification: per-trial accuracy, and per-label precision/recall/F1 with a confusion
matrix over the whole run. The predicted label is the pipeline decision's label (label
pipelines) or else the answer text; the true label is the item's ``label``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keel.core.dataset import DatasetItem
from keel.core.trial import TrialResult
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    check_options,
)

NO_LABEL = "(none)"


def label_report(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Per-label precision, recall, F1 and support, macro F1 and the confusion matrix
    (``matrix[true][predicted]`` counts) from ``(true, predicted)`` pairs."""
    labels = sorted({t for t, _ in pairs} | {p for _, p in pairs})
    matrix = {t: dict.fromkeys(labels, 0) for t in labels}
    for true, guess in pairs:
        matrix[true][guess] += 1
    per_label: dict[str, dict[str, float | int | None]] = {}
    for label in labels:
        tp = matrix[label][label]
        predicted = sum(matrix[t][label] for t in labels)
        actual = sum(matrix[label].values())
        precision = tp / predicted if predicted else None
        recall = tp / actual if actual else None
        if tp == 0:  # never right: F1 is 0 (also when never predicted, as sklearn does)
            f1: float | None = 0.0 if actual else None
        else:
            assert precision is not None and recall is not None
            f1 = 2 * precision * recall / (precision + recall)
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    f1s = [v["f1"] for k, v in per_label.items() if v["support"] and v["f1"] is not None]
    accuracy = sum(matrix[t][t] for t in labels) / len(pairs) if pairs else None
    return {
        "accuracy": accuracy,
        "macro_f1": sum(f1s) / len(f1s) if f1s else None,
        "labels": per_label,
        "confusion": matrix,
    }


@dataclass(frozen=True, slots=True)
class Classification:
    name: str = "classification"
    version: str = "1"
    metrics: tuple[Metric, ...] = (Metric("accuracy", "pass", description="label == expected"),)

    async def evaluate(self, case: Case) -> Scored:
        if case.decision is not None:  # label pipelines: an unsure decision has no label
            predicted = case.decision.label or NO_LABEL
        else:
            predicted = case.answer.strip()
        if case.item.label is None:
            return Scored({"accuracy": None}, {"predicted": predicted})
        return Scored({"accuracy": float(predicted == case.item.label)}, {"predicted": predicted})

    def aggregate(
        self, items: Sequence[DatasetItem], results: Sequence[TrialResult]
    ) -> dict[str, Any]:
        truth = {item.item_id: item.label for item in items}
        pairs = Counter[tuple[str, str]]()
        for result in results:
            true = truth.get(result.item_id)
            if true is None:
                continue
            pairs[(true, str(result.details.get("predicted") or NO_LABEL))] += 1
        return label_report(list(pairs.elements()))


def _factory(options: Mapping[str, Any], context: EvalContext) -> Classification:
    check_options(options, set(), "classification")
    return Classification()


plugin = EvaluatorPlugin(
    "classification", _factory, "Accuracy, per-label precision/recall/F1, confusion matrix."
)
