"""The lightweight prompt-injection classifier: hashed n-grams and a linear model.

Weights ship in the package (``models/injection.npz``, trained offline by
``tools/train_injection_classifier.py``); hashing needs no vocabulary, so nothing is fetched
and loading takes milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLASSIFIER_PATH = Path(__file__).with_name("models") / "injection.npz"
_BITS = 16


def featurize(texts: list[str]) -> Any:
    """Hashed word/punctuation 1-3-grams and char 4-grams (stateless: same on every machine)."""
    from scipy import sparse  # heavy imports: only when a pipeline uses the classifier
    from sklearn.feature_extraction.text import HashingVectorizer

    common: dict[str, Any] = {"n_features": 2**_BITS, "alternate_sign": False, "lowercase": False}
    words = HashingVectorizer(ngram_range=(1, 3), token_pattern=r"(?u)\b\w+\b|[^\w\s]", **common)  # noqa: S106
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(4, 4), **common)
    return sparse.hstack([words.transform(texts), chars.transform(texts)]).tocsr()


@dataclass(frozen=True, slots=True)
class InjectionClassifier:
    coef: Any  # numpy float32 vector, one weight per hashed feature
    intercept: float  # already shifted so that 0.5 is the cut chosen at training

    @classmethod
    def load(cls, path: Path = CLASSIFIER_PATH) -> InjectionClassifier:
        import numpy as np

        with np.load(path) as data:
            return cls(data["coef"], float(data["intercept"]))

    def probabilities(self, texts: list[str]) -> list[float]:
        logits = featurize(texts) @ self.coef + self.intercept
        return [1.0 / (1.0 + math.exp(-float(z))) for z in logits]
