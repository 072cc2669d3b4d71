"""Train-only benign rows from the text of installed, permissively licensed Python packages.

Technical prose is dense with the words injections use ("ignore", "override", "system",
"previous", "prompt", "execute") for ordinary ends, and package READMEs are documents: long
texts the scanner also scores sentence run by sentence run. Docstrings are read with ``ast``
(nothing is imported); READMEs are the long descriptions in each wheel's ``METADATA``.

Used by ``tools/guardrail_synthetic.py``; the rows are never part of the benchmark. Seeded, so
the same package versions (the project's lock) give the same rows.
"""

from __future__ import annotations

import ast
import importlib.metadata
import random
import re
from pathlib import Path

# Distribution -> import package, all under BSD, MIT or Apache-2.0 licences.
PACKAGES = {
    "click": "click", "jinja2": "jinja2", "sqlalchemy": "sqlalchemy", "pydantic": "pydantic",
    "httpx": "httpx", "alembic": "alembic", "requests": "requests", "rich": "rich",
    "typer": "typer", "starlette": "starlette", "mako": "mako", "pygments": "pygments",
    "markdown-it-py": "markdown_it", "nltk": "nltk", "redis": "redis", "psycopg": "psycopg",
    "urllib3": "urllib3", "pluggy": "pluggy", "anyio": "anyio", "attrs": "attr",
}  # fmt: skip
TRIGGERS = re.compile(
    r"\b(?:ignor|overrid|previous|instruction|system|prompt|bypass|disabl|forget|reveal|secret|"
    r"password|rules?\b|print|output|repeat|execut|inject|escape|decod|encod|command|admin)",
    re.IGNORECASE,
)
FRAMES = ("{}", "{}", "What does this mean? {}", "Explain this documentation simply: {}",
          "Is this right? {}", "Summarize: {}", "Rewrite this more clearly:\n\n{}",
          "Here is part of the docs:\n{}\nWhich option should I use?")  # fmt: skip
_MARKUP = re.compile(r"[`*_#>|\[\]]+|\(https?://[^)]*\)|<[^>]+>")


def _clean(paragraph: str) -> str:
    return " ".join(_MARKUP.sub(" ", paragraph).split())


def _prose(paragraphs: list[str]) -> list[str]:
    """Paragraphs that read as prose: not code, tables or link lists."""
    out = []
    for raw in paragraphs:
        if raw.lstrip().startswith((">>>", "$ ", "..", "```", "    ", "|", "+-", "pip ")):
            continue
        text = _clean(raw)
        words = text.split()
        wordy = sum(w.isalpha() for w in words) > 0.6 * len(words)
        if 60 <= len(text) <= 900 and len(words) >= 10 and wordy:
            out.append(text)
    return out


def docstrings(package: str) -> list[str]:
    """Prose paragraphs of every docstring in the package's source files."""
    root = Path(importlib.util.find_spec(package).origin or "").parent  # type: ignore[union-attr]
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc:
                    found += _prose(doc.split("\n\n"))
    return found


def readme(distribution: str) -> list[str]:
    """Prose paragraphs of the distribution's long description, in order."""
    body = importlib.metadata.metadata(distribution).get_payload()  # type: ignore[attr-defined]
    return _prose(str(body or "").split("\n\n"))


def spacy_sentences() -> dict[str, list[str]]:
    """spaCy's example sentences (``spacy/lang/*/examples.py``, MIT), by language: ordinary
    text in some sixty languages, read with ``ast`` (nothing is imported)."""
    root = Path(importlib.util.find_spec("spacy").origin or "").parent / "lang"  # type: ignore[union-attr]
    found: dict[str, list[str]] = {}
    for path in sorted(root.glob("*/examples.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
                texts = [ast.literal_eval(e) for e in node.value.elts]
                found[path.parent.name] = [t for t in texts if isinstance(t, str) and t.strip()]
    return found


LANGUAGE_FRAMES = ("{}", "{}", "{}", "Translate into English: {}", "What does this mean? {}",
                   "Is this sentence grammatical? {}", "{}\n\nSummarize this.")  # fmt: skip


def foreign(rng: random.Random) -> list[dict[str, str]]:
    """Benign rows in other languages: each of spaCy's example sentences (English excluded),
    alone or with the next one or two, some framed as a request."""
    version = importlib.metadata.version("spacy")
    source = f"spacy {version} example sentences (MIT), train-only"
    out: list[dict[str, str]] = []
    for language, sentences in spacy_sentences().items():
        if language == "en":
            continue
        for index in range(len(sentences)):
            text = " ".join(sentences[index : index + rng.randint(1, 3)])
            text = rng.choice(LANGUAGE_FRAMES).format(text)
            out.append({"text": text, "family": "benign", "label": "benign", "source": source})
    return out


def rows(rng: random.Random, per_package: int = 30, documents: int = 4) -> list[dict[str, str]]:
    """Per package: docstring paragraphs with trigger words (and a few without), framed as a
    developer's question, and README documents of three to six consecutive paragraphs."""
    out: list[dict[str, str]] = []
    for distribution, package in PACKAGES.items():
        version = importlib.metadata.version(distribution)
        source = f"{distribution} {version} docstrings and README, train-only"
        paragraphs = list(dict.fromkeys(docstrings(package)))
        triggered = [p for p in paragraphs if TRIGGERS.search(p)]
        plain = [p for p in paragraphs if not TRIGGERS.search(p)]
        picked = rng.sample(triggered, min(per_package, len(triggered)))
        picked += rng.sample(plain, min(per_package // 5, len(plain)))
        texts = [rng.choice(FRAMES).format(p) for p in picked]
        prose = readme(distribution)
        for _ in range(documents if len(prose) >= 3 else 0):
            size = rng.randint(3, min(6, len(prose)))
            start = rng.randrange(len(prose) - size + 1)
            texts.append("\n\n".join(prose[start : start + size]))
        out += [{"text": t, "family": "benign", "label": "benign", "source": source} for t in texts]
    return out
