"""Reading sources: files and folders (Markdown, text, HTML, PDF) and JSONL records.

Each file becomes one ``SourceDocument`` keyed by its absolute path; each JSONL line one
keyed by ``path#id`` (the record's ``id`` field, else its line number). A file that cannot
be read or parsed is reported as ``Skipped`` and the rest go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from keel.retrieval.types import Skipped, SourceDocument

MARKDOWN = frozenset({".md", ".markdown", ".mdx"})
TEXT = frozenset({".txt", ".text", ".rst"})
HTML = frozenset({".html", ".htm"})
PDF = frozenset({".pdf"})
JSONL = frozenset({".jsonl", ".ndjson"})
SUPPORTED = MARKDOWN | TEXT | HTML | PDF | JSONL


def discover(root: Path) -> list[Path]:
    """The files under ``root`` (or ``root`` itself), hidden ones left out, in stable order."""
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def read_html(raw: bytes) -> str:
    from bs4 import BeautifulSoup  # deferred: only HTML needs it

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript"]):
        tag.decompose()
    return soup.get_text("\n")


def read_pdf(path: Path) -> str:
    from pypdf import PdfReader  # deferred: only PDFs need it

    reader = PdfReader(path)
    return "\n\n".join(page.extract_text() or "" for page in reader.pages)


def _record(path: Path, number: int, line: str, groups: Sequence[str]) -> SourceDocument:
    data: Any = json.loads(line)
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("a record must be an object with a string 'text' field")
    record_groups = data.pop("groups", None)
    if record_groups is not None and not (
        isinstance(record_groups, list) and all(isinstance(g, str) for g in record_groups)
    ):
        raise ValueError("'groups' must be a list of strings")
    text = data.pop("text")
    key = str(data.get("id", number))
    metadata = {k: v for k, v in data.items() if k != "metadata"} | dict(data.get("metadata") or {})
    chosen = tuple(record_groups) if record_groups is not None else tuple(groups)
    return SourceDocument(f"{path}#{key}", text, metadata, chosen, markdown=False)


def read_jsonl(path: Path, groups: Sequence[str]) -> Iterator[SourceDocument | Skipped]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield _record(path, number, line, groups)
            except (ValueError, TypeError) as exc:
                yield Skipped(f"{path}:{number}", f"bad record: {exc}")


def read_file(path: Path, groups: Sequence[str]) -> Iterator[SourceDocument | Skipped]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        yield Skipped(str(path), f"unsupported file type {suffix or '(none)'}")
        return
    try:
        if suffix in JSONL:
            yield from read_jsonl(path, groups)
            return
        meta: dict[str, Any] = {"path": path.name, "type": suffix.lstrip(".")}
        if suffix in PDF:
            text = read_pdf(path)
        elif suffix in HTML:
            text = read_html(path.read_bytes())
        else:
            text = path.read_text(encoding="utf-8")
    except Exception as exc:  # any parser failure: report the file, keep ingesting the rest
        yield Skipped(str(path), f"cannot read: {type(exc).__name__}: {exc}"[:300])
        return
    if not text.strip():
        yield Skipped(str(path), "no text found")
        return
    yield SourceDocument(str(path), text, meta, tuple(groups), markdown=suffix in MARKDOWN)
