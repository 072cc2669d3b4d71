"""RAG metrics: context relevance, faithfulness and answer relevance, each 0..1.

With a judge model (``-e 'rag:model=provider:model'`` or ``evals.judge_model``) each is a
judge question on a 1-5 scale. Without one, a lexical fallback measures content-word
overlap: context relevance = share of question words found in the contexts, faithfulness =
share of answer words found in the contexts, answer relevance = overlap of answer and
question words relative to the shorter of the two. The fallback is crude (it rewards
copying) but needs nothing and is deterministic; the details say which mode scored.

Contexts come from the item's ``metadata.contexts`` (a list of strings) or from a
``contexts`` field of the pipeline output; without contexts only answer relevance is scored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from keel.core.errors import KeelError
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    as_text,
    check_options,
)
from keel.evals.evaluators.judge import JudgeCall, judge_call, parse_score

_WORD = re.compile(r"\w+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "what",
        "which",
        "who",
        "how",
        "why",
        "when",
        "where",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "my",
        "your",
        "our",
        "their",
        "its",
        "as",
        "at",
        "by",
        "from",
        "about",
        "into",
        "than",
        "then",
        "there",
        "here",
        "not",
        "no",
        "yes",
    ]
)
_QUESTIONS = MappingProxyType(
    {
        "context_relevance": "How relevant are the contexts to the question?",
        "faithfulness": "Is every claim in the answer supported by the contexts?",
        "answer_relevance": "How directly does the answer address the question?",
    }
)
METRICS = tuple(Metric(name, "score", description=q) for name, q in _QUESTIONS.items())


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if len(w) > 2 and w not in _STOP}


def lexical_scores(question: str, answer: str, contexts: Sequence[str]) -> dict[str, float | None]:
    q, a = content_words(question), content_words(answer)
    c = content_words(" ".join(contexts)) if contexts else set()
    return {
        "context_relevance": len(q & c) / len(q) if contexts and q else None,
        "faithfulness": len(a & c) / len(a) if contexts and a else None,
        "answer_relevance": len(a & q) / min(len(a), len(q)) if a and q else None,
    }


def contexts_of(case: Case) -> list[str]:
    found = case.item.metadata.get("contexts")
    if found is None and isinstance(case.output, dict):
        found = case.output.get("contexts")
    if isinstance(found, str):
        return [found]
    return [as_text(c) for c in found] if isinstance(found, list) else []


@dataclass(frozen=True, slots=True)
class RagMetrics:
    call: JudgeCall | None
    name: str = "rag"
    version: str = "1"
    metrics: tuple[Metric, ...] = METRICS

    async def evaluate(self, case: Case) -> Scored:
        question, contexts = as_text(case.item.input), contexts_of(case)
        if self.call is None:
            return Scored(lexical_scores(question, case.answer, contexts), {"rag_mode": "lexical"})
        scores: dict[str, float | None] = {}
        details: dict[str, Any] = {"rag_mode": "judge", "judge_cost_usd": "0"}
        for metric, ask in _QUESTIONS.items():
            if metric != "answer_relevance" and not contexts:
                scores[metric] = None
                continue
            user = f"Question:\n{question}\n\nContexts:\n" + "\n---\n".join(contexts)
            user += f"\n\nAnswer:\n{case.answer}\n\n{ask}"
            system = 'Score 1 (worst) to 5 (best). Reply with JSON only: {"score": <1-5>}'
            try:
                reply, cost = await self.call.ask(system, user)
            except KeelError as exc:
                scores[metric] = None
                details["judge_error"] = exc.code
                continue
            raw = parse_score(reply, 1, 5)
            scores[metric] = None if raw is None else (raw - 1) / 4
            details = _add_cost(details, cost)
        return Scored(scores, details)


def _add_cost(details: dict[str, Any], cost: Mapping[str, Any]) -> dict[str, Any]:
    from decimal import Decimal

    merged = dict(details)
    for key in ("judge_input_tokens", "judge_output_tokens"):
        merged[key] = int(merged.get(key, 0)) + int(cost[key])
    merged["judge_cost_usd"] = str(
        Decimal(merged["judge_cost_usd"]) + Decimal(cost["judge_cost_usd"])
    )
    merged["judge_model"] = cost["judge_model"]
    return merged


def _factory(options: Mapping[str, Any], context: EvalContext) -> RagMetrics:
    check_options(options, {"model", "mode"}, "rag")
    if options.get("mode") == "lexical" or not (options.get("model") or context.judge_model):
        return RagMetrics(None)
    return RagMetrics(judge_call(options, context, "rag"))


plugin = EvaluatorPlugin("rag", _factory, "RAG: context relevance, faithfulness, answer relevance.")
