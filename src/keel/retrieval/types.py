"""Plain values that flow through ingestion and search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One document read from a file or a JSONL record, before cleaning and chunking."""

    source: str  # stable key: absolute path, or path#record-id for JSONL
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # access groups; empty means everyone may read it
    markdown: bool = False


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    tokens: int
    heading: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or record that could not be ingested, and why."""

    source: str
    reason: str


@dataclass(slots=True)
class Hit:
    """One retrieved chunk with the scores that ranked it."""

    chunk_id: int
    document_id: int
    source: str
    text: str
    heading: str
    metadata: dict[str, Any]
    score: float = 0.0
    vector_rank: int | None = None
    keyword_rank: int | None = None
    rerank_score: float | None = None

    def citation(self, number: int) -> dict[str, Any]:
        return {
            "n": number,
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "source": self.source,
            "heading": self.heading,
            "score": round(self.score, 6),
            "text": self.text,
        }
