"""Pipeline versions: a content hash over everything that shapes the answer, and spec diffs."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from keel.core.spec import PipelineSpec

VERSION_LENGTH = 12


def canonical_json(value: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, Unicode kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_version(spec: PipelineSpec) -> str:
    """The version of a spec: the first 12 hex digits of SHA-256 over its canonical JSON."""
    digest = hashlib.sha256(canonical_json(spec.hashable()).encode("utf-8")).hexdigest()
    return digest[:VERSION_LENGTH]


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and any(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def spec_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two stored specs, one line per change.

    Multi-line strings (templates) are shown as unified diffs of their lines.
    """
    before, after = dict(_flatten(old)), dict(_flatten(new))
    lines: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path, _MISSING), after.get(path, _MISSING)
        if a == b:
            continue
        if isinstance(a, str) and isinstance(b, str) and ("\n" in a or "\n" in b):
            lines.append(f"~ {path}:")
            body = difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=1)
            lines.extend(f"    {line}" for line in list(body)[2:])
        elif a is _MISSING:
            lines.append(f"+ {path}: {canonical_json(b)}")
        elif b is _MISSING:
            lines.append(f"- {path}: {canonical_json(a)}")
        else:
            lines.append(f"~ {path}: {canonical_json(a)} -> {canonical_json(b)}")
    return lines


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
