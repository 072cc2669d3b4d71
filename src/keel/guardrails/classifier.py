"""The lightweight prompt-injection classifier: hashed n-grams and a linear model.

Weights ship in the package (``models/injection.npz``, trained offline by
``tools/train_injection_classifier.py``); hashing needs no vocabulary, so nothing is fetched
and loading takes milliseconds. The same ``features`` function is used to train and to score,
and it is plain numpy: a 500-token prompt is featurized in well under a millisecond.

Features: word and punctuation 1-3-grams, and character 4-grams, each block L2-normalized
(counts / their Euclidean norm), hashed into ``2**BITS`` slots per block.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CLASSIFIER_PATH = Path(__file__).with_name("models") / "injection.npz"
BITS = 17
WIDTH = 2 * 2**BITS  # words block, then characters block
_MASK = np.uint64(2**BITS - 1)
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Odd 64-bit multipliers (from splitmix64) that mix n-gram positions and orders apart.
_K = (
    np.uint64(0x9E3779B97F4A7C15),
    np.uint64(0xBF58476D1CE4E5B9),
    np.uint64(0x94D049BB133111EB),
)


def _mix(values: Any) -> Any:
    """A splitmix64 finalizer: spreads nearby integers over the whole hash range."""
    values = values ^ (values >> np.uint64(31))
    values = values * _K[1]
    values = values ^ (values >> np.uint64(29))
    values = values * _K[2]
    return values ^ (values >> np.uint64(32))


def _grams(ids: Any, n_max: int, start: int) -> Any:
    """Hashes of every 1..n_max-gram of ``ids`` (uint64), order ``n`` salted by ``n``."""
    parts = []
    for n in range(start, n_max + 1):
        if len(ids) < n:
            break
        combined = ids[: len(ids) - n + 1].copy()
        for offset in range(1, n):
            combined = combined * _K[0] + ids[offset : len(ids) - n + 1 + offset]
        parts.append(_mix(combined + np.uint64(n)))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _block(hashes: Any, offset: int) -> tuple[Any, Any]:
    """Slot indices and L2-normalized counts of one block."""
    if not len(hashes):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    slots, counts = np.unique((hashes & _MASK).astype(np.int64), return_counts=True)
    values = counts.astype(np.float32)
    values /= math.sqrt(float(values @ values))
    return slots + offset, values


def features(text: str) -> tuple[Any, Any]:
    """Sparse features of one (normalized) text: slot indices and their values."""
    with np.errstate(over="ignore"):
        tokens = _TOKEN.findall(text)
        ids = np.fromiter((zlib.crc32(t.encode()) for t in tokens), np.uint64, len(tokens))
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        word_slots, word_values = _block(_grams(ids, 3, 1), 0)
        char_slots, char_values = _block(_grams(codes, 4, 4), 2**BITS)
    return np.concatenate([word_slots, char_slots]), np.concatenate([word_values, char_values])


def feature_matrix(texts: list[str]) -> Any:
    """Rows of ``features`` as a scipy CSR matrix (for training)."""
    from scipy import sparse

    indices, values, pointers = [], [], [0]
    for text in texts:
        slots, found = features(text)
        indices.append(slots)
        values.append(found)
        pointers.append(pointers[-1] + len(slots))
    return sparse.csr_matrix(
        (np.concatenate(values), np.concatenate(indices), np.array(pointers)),
        shape=(len(texts), WIDTH),
    )


@dataclass(frozen=True, slots=True)
class InjectionClassifier:
    coef: Any  # numpy float32 vector, one weight per hashed feature
    intercept: float  # already shifted so that 0.5 is the cut chosen at training

    @classmethod
    def load(cls, path: Path = CLASSIFIER_PATH) -> InjectionClassifier:
        with np.load(path) as data:
            coef = data["coef"]
            if coef.shape != (WIDTH,):
                raise ValueError(f"{path}: expected {WIDTH} weights, found {coef.shape}")
            return cls(coef, float(data["intercept"]))

    def probability(self, text: str) -> float:
        slots, values = features(text)
        logit = float(self.coef[slots] @ values) + self.intercept
        return 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))

    def probabilities(self, texts: list[str]) -> list[float]:
        return [self.probability(t) for t in texts]
