"""BM25 over an in-process sparse term matrix: the keyword half of the SQLite collection cache.

SQLite's FTS5 finds matching rows quickly, but its ``bm25()`` costs a few microseconds per
*matching* row, and a query of several common words matches tens of thousands of chunks at
100k. Here every (chunk, term) weight is computed once when the cache loads, so a query sums
a few sparse columns (about a millisecond) and the caller masks and takes the top-k.

Tokens are lower-cased runs of word characters, stemmed with the original Porter algorithm
(PyStemmer's ``porter``), as FTS5's ``porter unicode61`` tokenizer does. Weights follow
FTS5's ``bm25()`` (Robertson & Zaragoza 2009): k1 = 1.2, b = 0.75,
idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6, with N and n counted over every row
the cache holds (FTS5 counts every row of its table, too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import Stemmer

if TYPE_CHECKING:
    from scipy import sparse

K1 = 1.2
B = 0.75
_WORD = re.compile(r"\w+")


def stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("porter")


@dataclass(frozen=True, slots=True)
class KeywordIndex:
    terms: dict[str, int]  # stem -> column
    weights: sparse.csc_matrix  # rows: chunk positions, columns: terms, values: BM25 weights

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        from scipy import sparse  # deferred: scipy is large and only built indexes need it

        words: list[str] = []
        lengths = np.zeros(len(texts), dtype=np.int64)
        for position, text in enumerate(texts):
            found = _WORD.findall(text.lower())
            lengths[position] = len(found)
            words += found
        raw = {w: i for i, w in enumerate(dict.fromkeys(words))}
        stems = stemmer().stemWords(list(raw))
        terms = {s: i for i, s in enumerate(dict.fromkeys(stems))}
        term_of_raw = np.fromiter((terms[s] for s in stems), dtype=np.int32, count=len(stems))
        raw_ids = np.fromiter(map(raw.__getitem__, words), dtype=np.int32, count=len(words))
        rows = np.repeat(np.arange(len(texts), dtype=np.int32), lengths)
        counts = sparse.coo_matrix(
            (np.ones(len(words), dtype=np.float32), (rows, term_of_raw[raw_ids])),
            shape=(len(texts), max(1, len(terms))),
        ).tocsc()  # duplicates summed: term frequencies
        counts.sum_duplicates()
        df = np.diff(counts.indptr).astype(np.float64)
        n = float(len(texts))
        idf = np.maximum(np.log((n - df + 0.5) / (df + 0.5)), 1e-6)
        average = max(float(lengths.mean()) if len(texts) else 0.0, 1e-9)
        norm = K1 * (1.0 - B + B * lengths / average)
        tf = counts.data.astype(np.float64)
        columns = np.repeat(np.arange(counts.shape[1]), np.diff(counts.indptr))
        counts.data = (idf[columns] * tf * (K1 + 1.0) / (tf + norm[counts.indices])).astype(
            np.float32
        )
        return cls(terms, counts)

    def scores(self, words: Sequence[str]) -> np.ndarray | None:
        """BM25 of every row for these query words (a row matching none scores 0), or
        ``None`` when no word occurs in the index."""
        stems = stemmer().stemWords([w.lower() for w in words])
        columns = sorted({self.terms[s] for s in stems if s in self.terms})
        if not columns:
            return None
        return np.asarray(self.weights[:, columns].sum(axis=1)).ravel()
