"""Train the prompt-injection classifier shipped in ``keel/guardrails/models``.

Offline, from the development corpus (``tools/guardrail_corpus.py``) and the train-only
phrase-grammar rows (``tools/guardrail_synthetic.py``):

    python tools/train_injection_classifier.py            # writes models/injection.npz
    python tools/train_injection_classifier.py --dry-run  # validation figures only

Features: ``keel.guardrails.classifier`` (hashed word 1-3-grams and character 4-grams of the
normalized text, plus its mean WordLlama token vector; the same code scores at run time, so
only the weights ship). Model: a class-balanced logistic regression.

Only the *train* side of the split (``tools/guardrail_split.py``, by group) is read here; the
held-out side is left to ``bench/guardrails/run.py``. The train side is cut, by group, into
``FOLDS`` validation folds: each fold is scored by a model fitted without it, so every
train-side row gets a validation score from a model that never saw its group. The threshold
is chosen on those scores for the whole scanner (heuristics plus classifier, as
``InjectionScanner`` runs them): the lowest cut whose false-positive rate on benign rows stays
within ``TARGET_FPR``, together with the segment margin and the veto (how far below the cut
a logit overrules heuristics that fired) that detect the most validation attacks. The
shipped model is then fitted on the whole train side.

What is fitted: direct, jailbreak, indirect and benign rows, the segments of benign rows (the
scanner also scores long texts segment by segment), and the synthetic rows. Encoded rows are
never fitted: the scanner decodes first, so they measure decoding plus the classifier.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from typing import Any

import numpy as np
from guardrail_split import CORPUS, load, split
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from keel.guardrails.classifier import (
    CLASSIFIER_PATH,
    EMBED_DIM,
    PROBE,
    WIDTH,
    TokenEmbedder,
    rows_of,
)
from keel.guardrails.content import load_wordllama
from keel.guardrails.injection import InjectionScanner, classified
from keel.guardrails.normalize import normalize, segments, views
from keel.guardrails.verdict import ScanContext

TARGET_FPR = 0.01  # scanner false positives allowed on benign validation rows
DOC_WEIGHT = 5.0  # clean documents weigh more: they share most words with attacks
C = 4.0  # chosen on the validation folds among 2, 4, 8, 16, 32
# A segment of a long text must clear the cut by this much more than a whole text: short
# spans of an ordinary document look like instructions more often than the document does.
MARGINS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
# Heuristics that fired count only when the classifier's logit is at most this far below the
# cut: a text the classifier finds plainly ordinary ("translate 'ignore all previous messages'
# into French") is not flagged for one phrase. Descending; the first never overrules.
VETOES = (1e9, 8.0, 6.0, 5.0, 4.0, 3.0, 2.0)
# Benign kinds (by source) whose false positives must each stay within target on their own,
# not only on average: documents that merely lack an injection, and requests full of trigger
# words.
KINDS = ("without injection",)
FOLDS = 5
FITTED = ("direct", "jailbreak", "indirect", "benign")
FAMILIES = ("direct", "jailbreak", "encoded", "indirect", "benign")

Row = dict[str, str]


def fold_of(item: Row) -> int:
    family = "direct" if item["family"] == "encoded" else item["family"]
    key = f"fold:{family}:{item.get('group') or item['text']}"
    return hashlib.sha256(key.encode()).digest()[0] % FOLDS


def _parts(item: Row) -> list[tuple[str, bool, float]]:
    """(text, is attack, weight) rows one corpus row trains: the row itself; for benign rows
    each of its segments; for documents with a buried instruction the instruction on its own
    and each segment clear of it (as benign: it is the document's own text)."""
    text = normalize(item["text"])
    attack = item["label"] == "attack"
    clean_document = "without injection" in item["source"]
    parts = [(text, attack, DOC_WEIGHT if clean_document else 1.0)]
    if not attack:
        return parts + [(text[a:b], False, 1.0) for a, b in segments(text)]
    buried = normalize(item.get("injection", ""))
    where = text.find(buried) if buried else -1
    if where < 0:
        return parts
    parts.append((buried, True, 1.0))
    end = where + len(buried)
    return parts + [(text[a:b], False, 1.0) for a, b in segments(text) if b <= where or a >= end]


def training_matrix(rows: list[Row], embedder: TokenEmbedder) -> tuple[Any, Any, Any, Any]:
    """Feature rows, labels, weights and the index of the corpus row each came from."""
    blocks, labels, weights, origin = [], [], [], []
    for index, item in enumerate(rows):
        parts = _parts(item)
        blocks += [rows_of(text, [], embedder) for text, _, _ in parts]
        labels += [attack for _, attack, _ in parts]
        weights += [weight for _, _, weight in parts]
        origin += [index] * len(parts)
    return (
        sparse.vstack(blocks, format="csr"),
        np.array(labels),
        np.array(weights),
        np.array(origin),
    )


def scanner_rows(rows: list[Row], embedder: TokenEmbedder) -> list[tuple[Any, Any]]:
    """For each row, the feature rows of everything the scanner classifies for it (the whole
    text, its segments, its other views), and which of those rows are segments."""
    out = []
    for item in rows:
        texts, spans = classified(views(item["text"]))
        matrix = sparse.vstack([rows_of(texts[0], spans, embedder)] + [
            rows_of(t, [], embedder) for t in texts[1:]
        ], format="csr")  # fmt: skip
        is_span = np.zeros(matrix.shape[0], dtype=bool)
        is_span[1 : 1 + len(spans)] = True
        out.append((matrix, is_span))
    return out


def fit(matrix: Any, labels: Any, weights: Any) -> LogisticRegression:
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=3000)
    return model.fit(matrix, labels, sample_weight=weights)


def detections(scores: Any, fired: Any, cut: float, veto: float) -> Any:
    """What the scanner flags: a classifier logit at or over ``cut``, or heuristics that fired
    on a text whose logit is at least ``cut - veto`` (below it the classifier overrules them)."""
    return (scores >= cut) | (fired & (scores >= cut - veto))


def choose_cut(scores: Any, fired: Any, benign: Any, veto: float) -> float:
    """The lowest logit cut (at least 0) keeping scanner false positives on benign rows within
    target."""
    allowed = int(TARGET_FPR * benign.sum())
    candidates = np.unique(np.concatenate([[0.0], scores[benign] + 1e-3,
                                           scores[benign & fired] + veto + 1e-3]))  # fmt: skip
    for cut in candidates[candidates >= 0.0]:
        if int(detections(scores[benign], fired[benign], cut, veto).sum()) <= allowed:
            return float(cut)
    return float(candidates[-1])


def choose_operating_point(
    whole: Any, span: Any, fired: Any, benign_sets: list[Any]
) -> tuple[float, float, float, Any]:
    """The segment margin (from ``MARGINS``), heuristic veto (from ``VETOES``) and cut that
    detect the most validation attacks while false positives stay within target on each
    benign set (all benign rows first, then each kind of ``KINDS`` alone); ties go to the
    larger margin and the larger veto (heuristics overruled less). Returns (cut, margin, veto,
    combined scores)."""
    best: tuple[int, float, float, float, Any] | None = None
    for margin in MARGINS:
        combined = np.maximum(whole, span - margin)
        for veto in sorted(VETOES):
            cuts = [choose_cut(combined, fired, rows, veto) for rows in benign_sets]
            cut = max(cuts)
            detected = int(detections(combined, fired, cut, veto)[~benign_sets[0]].sum())
            if best is None or detected >= best[0]:
                best = (detected, cut, margin, veto, combined)
            per_set = ", ".join(f"{c:.2f}" for c in cuts)
            print(f"  segment margin {margin:.1f}, veto {veto:4.1f}: cut {cut:.3f} (per benign "
                  f"set {per_set}), {detected} attacks detected")  # fmt: skip
    assert best is not None
    return best[1], best[2], best[3], best[4]


def _kind(source: str) -> str:
    """A short name for a row's source, for the per-source validation lines."""
    if "hand-written" in source:
        return "hand-written, train-only" + (", round 5" if "round 5" in source else "")
    return source.split(") ", 1)[-1][:50]


def load_rows() -> tuple[list[Row], list[Row]]:
    corpus = [r for family in FAMILIES for r in split(load(family))[0]]
    with (CORPUS / "train_synthetic.jsonl").open() as handle:
        synthetic = [json.loads(line) for line in handle]
    # Hand-written train-only rows are validated too: they are the rows most like the
    # ordinary prompts a false positive would hurt, and the least templated attacks.
    written = [r for r in synthetic if "hand-written" in r["source"]]
    return corpus + written, [r for r in synthetic if "hand-written" not in r["source"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="print validation figures only")
    parser.add_argument("--show", action="store_true", help="list validation misses and FPs")
    args = parser.parse_args()
    embedder = TokenEmbedder.of(load_wordllama())
    corpus, synthetic = load_rows()
    fitted = [r for r in corpus if r["family"] in FITTED]
    matrix, labels, weights, origin = training_matrix(fitted + synthetic, embedder)
    folds = np.array([fold_of(r) for r in fitted] + [-1] * len(synthetic))[origin]
    candidates = scanner_rows(corpus, embedder)
    whole, span = np.zeros(len(corpus)), np.full(len(corpus), -np.inf)
    for k in range(FOLDS):
        model = fit(matrix[folds != k], labels[folds != k], weights[folds != k])
        for index, item in enumerate(corpus):
            if fold_of(item) == k:
                rows, is_span = candidates[index]
                logits = model.decision_function(rows)
                whole[index] = logits[~is_span].max()
                if is_span.any():
                    span[index] = logits[is_span].max()
    heuristics = InjectionScanner(None)
    fired = np.array([heuristics.scan(r["text"], ScanContext()).score >= 0.5 for r in corpus])
    benign = np.array([r["label"] == "benign" for r in corpus])
    kinds = [benign & np.array([kind in r["source"] for r in corpus]) for kind in KINDS]
    print(
        f"{len(corpus)} train-side rows in {FOLDS} validation folds; benign {benign.sum()}, "
        + ", ".join(f"{k} {m.sum()}" for k, m in zip(KINDS, kinds, strict=True))
    )
    cut, margin, veto, scores = choose_operating_point(whole, span, fired, [benign, *kinds])
    print(f"cut at logit {cut:.3f}, segments {margin:.1f} above it, heuristics overruled "
          f"{veto:.1f} below it")  # fmt: skip
    hits_all = detections(scores, fired, cut, veto)
    overruled = fired & ~hits_all
    print(f"  heuristics overruled on {int((overruled & ~benign).sum())} attacks and "
          f"{int((overruled & benign).sum())} benign rows")  # fmt: skip
    for family in FAMILIES:
        mask = np.array([r["family"] == family for r in corpus])
        hits = hits_all[mask]
        alone = (fired & mask).sum()
        what = "false positives" if family == "benign" else "detected"
        print(f"  validation {family:<10} {what} {hits.sum()}/{mask.sum()} = {hits.mean():.3f}"
              f"  (heuristics alone {alone})")  # fmt: skip
    by_source: dict[str, list[bool]] = {}
    for item, hit in zip(corpus, hits_all, strict=True):
        if item["family"] in ("direct", "benign"):
            key = f"{item['family']}: {_kind(item['source'])}"
            by_source.setdefault(key, []).append(bool(hit))
    for key, hits_of in sorted(by_source.items()):
        print(f"    {key:<60} {sum(hits_of):>4}/{len(hits_of):<4}")
    if args.show:
        for item, hit, score in zip(corpus, hits_all, scores, strict=True):
            if hit != (item["label"] == "attack"):
                print(f"  {item['family']:<9} {score - cut:+6.2f} {item['text'][:110]!r}")
    if args.dry_run:
        return
    model = fit(matrix, labels, weights)
    coef = model.coef_[0].astype(np.float32)
    CLASSIFIER_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        CLASSIFIER_PATH,
        coef=coef[:WIDTH],
        dense=coef[WIDTH : WIDTH + EMBED_DIM],
        intercept=np.float32(model.intercept_[0] - cut),
        span_margin=np.float32(margin),
        heuristic_veto=np.float32(min(veto, 1e4)),
        probe=embedder.pooled(PROBE)[0].astype(np.float32),
    )
    print(f"fitted on {matrix.shape[0]} feature rows ({int(labels.sum())} attacks) -> "
          f"{CLASSIFIER_PATH}")  # fmt: skip


if __name__ == "__main__":
    main()
