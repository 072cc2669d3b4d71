"""Train the prompt-injection classifier shipped in ``keel/guardrails/models``.

Offline, from the development corpus (``tools/guardrail_corpus.py``):

    python tools/train_injection_classifier.py

Features: ``keel.guardrails.classifier.features`` (hashed word 1-3-grams and character
4-grams of the normalized text; the same code scores at run time, so only the weights ship).
Model: a class-balanced logistic regression. It sees only the *train* side of the split in
``tools/guardrail_split.py`` (by group, so held-out rows share no base attack, template or
document with training rows); the encoded family is never trained on at all: at run time the
scanner decodes first, so the benchmark measures whether decoding plus the classifier
generalize. The decision threshold is also chosen on the train side only, from out-of-fold
scores, so the held-out figures are not tuned.
"""

from __future__ import annotations

import numpy as np
from guardrail_split import load, split
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict

from keel.guardrails.classifier import CLASSIFIER_PATH, WIDTH, feature_matrix
from keel.guardrails.normalize import normalize

TARGET_FPR = 0.01  # out-of-fold false-positive rate allowed on benign training rows
DOC_WEIGHT = 5.0
C = 8.0


def training_rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for family in ("direct", "jailbreak", "indirect", "benign"):
        rows += split(load(family))[0]
    return rows


def main() -> None:
    rows = training_rows()
    features = feature_matrix([normalize(r["text"]) for r in rows])
    labels = np.array([r["label"] == "attack" for r in rows], dtype=np.int8)
    groups = [f"{r['family']}:{r.get('group') or r['text']}" for r in rows]
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000)
    # Documents without the injection weigh more: otherwise the model learns the document's
    # words (shared with every injected copy) instead of the injection.
    weights = np.array([DOC_WEIGHT if "without injection" in r["source"] else 1.0 for r in rows])
    model.fit(features, labels, sample_weight=weights)
    # Shift the cut so that at most TARGET_FPR of benign rows score >= 0.5, judged on
    # out-of-fold scores with whole groups held out per fold (in-sample scores overfit).
    logits = cross_val_predict(
        model, features, labels, cv=GroupKFold(5), groups=groups,
        method="decision_function", params={"sample_weight": weights},
    )  # fmt: skip
    benign = np.sort(logits[labels == 0])
    cut = float(benign[min(int(len(benign) * (1 - TARGET_FPR)), len(benign) - 1)]) + 1e-3
    cut = max(cut, 0.0)
    print(f"cut at logit {cut:.3f}; out-of-fold recall {(logits[labels == 1] >= cut).mean():.3f}")
    coef = model.coef_[0].astype(np.float32)
    assert coef.shape == (WIDTH,)
    CLASSIFIER_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CLASSIFIER_PATH, coef=coef, intercept=np.float32(model.intercept_[0] - cut))
    print(f"trained on {len(rows)} rows ({int(labels.sum())} attacks) -> {CLASSIFIER_PATH}")


if __name__ == "__main__":
    main()
