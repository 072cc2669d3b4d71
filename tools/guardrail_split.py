"""The development corpus and its train / held-out split, shared by training and the benchmark.

Rows are split by *group*, not by row: every row generated from the same base attack,
template or document lands on the same side, so held-out rows are never near-copies of
training rows. The side is a hash of the group (seeded), about half each. Rows whose source
is marked ``eval-only`` are always held out: they are never trained on and were never used
to tune heuristics or thresholds; rows marked ``train-only`` are never held out. The trainer
cuts the train side again, by group, into validation folds
(``tools/train_injection_classifier.py``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "bench" / "guardrails" / "corpus"
SEED = "keel-guardrails-split-1"
FAMILIES = ("direct", "jailbreak", "encoded", "indirect", "benign")
EVAL_ONLY = "eval-only"
TRAIN_ONLY = "train-only"


def load(family: str) -> list[dict[str, str]]:
    with (CORPUS / f"{family}.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def _digest(item: dict[str, str]) -> bytes:
    group = item.get("group") or item["text"]
    # Encoded rows are direct attacks in disguise: they follow their base attack's side.
    family = "direct" if item["family"] == "encoded" else item["family"]
    return hashlib.sha256(f"{SEED}:{family}:{group}".encode()).digest()


def held_out(item: dict[str, str]) -> bool:
    if TRAIN_ONLY in item["source"]:
        return False
    return EVAL_ONLY in item["source"] or _digest(item)[0] % 2 == 1


def split(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Train rows, held-out rows."""
    train, test = [], []
    for item in rows:
        (test if held_out(item) else train).append(item)
    return train, test
