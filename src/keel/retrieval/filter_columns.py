"""Metadata filters evaluated in process, as one column of value codes per metadata key.

SQLite has no index on document metadata, so the SQL form of a filter (``filters``) reads
``json_extract`` over every document of the collection on every query: tens of
milliseconds at 100,000 chunks. The in-process cache instead keeps, per metadata key a
filter has used, the value of every chunk's document as a small integer code, and turns a
filter into a boolean mask over chunk positions with a comparison or two.

The values are the ones SQLite's ``json_extract`` returns (the cache loads them with it), and
they are compared as SQLite compares them: Python's ``==`` and hashing agree with SQLite
here (1 equals 1.0 and true, "1" equals neither, null and a missing key are both ``None``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keel.retrieval.filters import validate

UNSEEN = -1  # a position the column's load did not cover: matches no value


@dataclass(frozen=True, slots=True)
class Column:
    codes: np.ndarray  # int32 code of each position's value
    values: dict[Any, int]  # value -> code

    @classmethod
    def build(cls, positions: np.ndarray, values: Sequence[Any], size: int) -> Column:
        """``values[i]`` is the value at position ``positions[i]``; other positions are unseen."""
        table: dict[Any, int] = {}
        codes = np.full(size, UNSEEN, dtype=np.int32)
        coded = np.fromiter(
            (table.setdefault(v, len(table)) for v in values), dtype=np.int32, count=len(values)
        )
        codes[positions] = coded
        return cls(codes, table)

    def matching(self, wanted: Sequence[Any]) -> np.ndarray:
        """Positions (as a boolean mask) whose value is any of ``wanted``."""
        found = [self.values[w] for w in wanted if w in self.values]
        if not found:
            return np.zeros(len(self.codes), dtype=bool)
        mask: np.ndarray = self.codes == found[0] if len(found) == 1 else np.isin(self.codes, found)
        return mask


def filter_mask(columns: Mapping[str, Column], filters: Mapping[str, Any]) -> np.ndarray | None:
    """The positions every key of ``filters`` admits, or ``None`` when a key's column is not
    loaded (the caller falls back to SQL)."""
    mask: np.ndarray | None = None
    for key, wanted in validate(filters).items():
        column = columns.get(key)
        if column is None:
            return None
        admitted = column.matching(wanted)
        mask = admitted if mask is None else mask & admitted
    return mask
