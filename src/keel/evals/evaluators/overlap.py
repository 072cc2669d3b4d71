"""Reference overlap: ROUGE (``rouge-score``), BLEU and chrF (``sacrebleu``), all 0..1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sacrebleu
from rouge_score import rouge_scorer

from keel.core.errors import ConfigError
from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    check_options,
    expected_text,
)

_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@dataclass(frozen=True, slots=True)
class Rouge:
    """ROUGE F-measure per type, with Porter stemming."""

    types: tuple[str, ...]
    scorer: Any = field(repr=False)
    name: str = "rouge"
    version: str = "1"

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(Metric(t, "score") for t in self.types)

    async def evaluate(self, case: Case) -> Scored:
        reference = expected_text(case.item)
        if reference is None:
            return Scored(dict.fromkeys(self.types))
        scores = self.scorer.score(reference, case.answer)
        return Scored({t: float(scores[t].fmeasure) for t in self.types})


@dataclass(frozen=True, slots=True)
class SentenceBleu:
    name: str = "bleu"
    version: str = f"1+sacrebleu{sacrebleu.__version__}"
    metrics: tuple[Metric, ...] = (Metric("bleu", "score"),)

    async def evaluate(self, case: Case) -> Scored:
        reference = expected_text(case.item)
        if reference is None:
            return Scored({"bleu": None})
        return Scored({"bleu": sacrebleu.sentence_bleu(case.answer, [reference]).score / 100})


@dataclass(frozen=True, slots=True)
class SentenceChrf:
    name: str = "chrf"
    version: str = f"1+sacrebleu{sacrebleu.__version__}"
    metrics: tuple[Metric, ...] = (Metric("chrf", "score"),)

    async def evaluate(self, case: Case) -> Scored:
        reference = expected_text(case.item)
        if reference is None:
            return Scored({"chrf": None})
        return Scored({"chrf": sacrebleu.sentence_chrf(case.answer, [reference]).score / 100})


def _rouge(options: Mapping[str, Any], context: EvalContext) -> Rouge:
    check_options(options, {"types"}, "rouge")
    raw = options.get("types", "rouge1;rougeL")
    types = tuple(t.strip() for t in (raw.split(";") if isinstance(raw, str) else raw) if t)
    bad = [t for t in types if t not in _ROUGE_TYPES]
    if bad or not types:
        msg = f"rouge evaluator: types must be among {', '.join(_ROUGE_TYPES)}; got {bad}"
        raise ConfigError(msg, code="evaluator_options_invalid")
    return Rouge(types, rouge_scorer.RougeScorer(list(types), use_stemmer=True))


def _bleu(options: Mapping[str, Any], context: EvalContext) -> SentenceBleu:
    check_options(options, set(), "bleu")
    return SentenceBleu()


def _chrf(options: Mapping[str, Any], context: EvalContext) -> SentenceChrf:
    check_options(options, set(), "chrf")
    return SentenceChrf()


rouge = EvaluatorPlugin("rouge", _rouge, "ROUGE F-measure against the expected answer.")
bleu = EvaluatorPlugin("bleu", _bleu, "Sentence BLEU against the expected answer (0..1).")
chrf = EvaluatorPlugin("chrf", _chrf, "Sentence chrF against the expected answer (0..1).")
