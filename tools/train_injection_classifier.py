"""Train the prompt-injection classifier shipped in ``keel/guardrails/models``.

Offline, from the development corpus (``tools/guardrail_corpus.py``):

    python tools/train_injection_classifier.py

Features: hashed word 1-2-grams and character 3-5-grams of the normalized text (scikit-learn's
stateless ``HashingVectorizer``, so only the weights are shipped); a class-balanced logistic
regression. Half of each family (seeded, by row) is held out for ``bench/guardrails``; the
encoded family is never trained on at all: at run time the scanner decodes first, so the
benchmark measures whether decoding plus the classifier generalize.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from keel.guardrails.classifier import CLASSIFIER_PATH, featurize
from keel.guardrails.normalize import normalize

CORPUS = Path("bench/guardrails/corpus")
SEED = 7
TARGET_FPR = 0.1
DOC_WEIGHT = 10.0


def split(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Deterministic half split: train, held out."""
    rng = random.Random(SEED)
    train, test = [], []
    for item in rows:
        (train if rng.random() < 0.5 else test).append(item)
    return train, test


def load(family: str) -> list[dict[str, str]]:
    with (CORPUS / f"{family}.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def training_rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for family in ("direct", "jailbreak", "indirect", "benign"):
        rows += split(load(family))[0]
    return rows


def main() -> None:
    rows = training_rows()
    features = featurize([normalize(r["text"]) for r in rows])
    labels = np.array([r["label"] == "attack" for r in rows], dtype=np.int8)
    model = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
    # Documents without the injection weigh more: otherwise the model learns the document's
    # words (shared with every injected copy) instead of the injection.
    weights = np.array([DOC_WEIGHT if "without injection" in r["source"] else 1.0 for r in rows])
    model.fit(features, labels, sample_weight=weights)
    # Shift the cut so that at most TARGET_FPR of benign prompts score >= 0.5, judged on
    # out-of-fold scores (in-sample scores of a linear model on few rows are overconfident).
    logits = cross_val_predict(
        model, features, labels, cv=5, method="decision_function",
        params={"sample_weight": weights},
    )  # fmt: skip
    benign = np.sort(logits[labels == 0])
    cut = float(benign[min(int(len(benign) * (1 - TARGET_FPR)), len(benign) - 1)]) + 1e-3
    print(f"cut at logit {cut:.3f}; out-of-fold recall {(logits[labels == 1] >= cut).mean():.3f}")
    CLASSIFIER_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        CLASSIFIER_PATH,
        coef=model.coef_[0].astype(np.float32),
        intercept=np.float32(model.intercept_[0] - cut),
    )
    print(f"trained on {len(rows)} rows ({int(labels.sum())} attacks) -> {CLASSIFIER_PATH}")


if __name__ == "__main__":
    main()
