"""Console output shared by the commands: one stdout and one stderr console per call."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

_PIPE_WIDTH = 240  # rich assumes 80 columns when not on a terminal; trees need more


def stdout() -> Console:
    width = None if sys.stdout.isatty() else _PIPE_WIDTH
    return Console(highlight=False, soft_wrap=True, width=width)


def stderr() -> Console:
    width = None if sys.stderr.isatty() else _PIPE_WIDTH
    return Console(stderr=True, highlight=False, soft_wrap=True, width=width)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def shorten(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if limit <= 0 or len(flat) <= limit else flat[: limit - 1] + "…"
