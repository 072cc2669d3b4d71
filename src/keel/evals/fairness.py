"""Counterfactual fairness: rewrite inputs across demographic terms, compare the answers.

A term set maps an attribute to rows of aligned terms; column k of every row is variant k
(``gender: [[he, she], [him, her], [man, woman]]``; ``name: [[Emily, Lakisha, Wei]]``).
Every item whose input mentions a term of an attribute is rewritten into one variant per
column (whole words, case kept), and all variants are run as one ordinary eval run (traced,
resumable). The report says, per attribute:

* the *flip rate*: share of affected items whose decision (or answer) is not the same for
  every variant, with a Wilson interval — for a pipeline that ignores the attribute it is 0;
* per variant, the mean of a metric (e.g. accuracy) with its interval, and a paired
  comparison with variant 0 on the same items (difference, interval, p-value).

Term substitution is lexical: it does not fix grammar ("her" maps back to "him") and only
finds the listed words. Supply your own term sets (JSON) for your domain and languages.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from keel.core.dataset import DatasetItem
from keel.core.errors import InvalidInputError
from keel.core.trial import TrialResult
from keel.evals import stats
from keel.evals.evaluators.base import Metric, as_text
from keel.evals.summary import values_by_item

TermSets = Mapping[str, Sequence[Sequence[str]]]

DEFAULT_TERMS: Mapping[str, Sequence[Sequence[str]]] = MappingProxyType(
    {
        "gender": [
            ["he", "she"],
            ["him", "her"],
            ["his", "her"],
            ["man", "woman"],
            ["men", "women"],
            ["male", "female"],
            ["boy", "girl"],
            ["husband", "wife"],
            ["father", "mother"],
            ["son", "daughter"],
            ["brother", "sister"],
            ["mr", "ms"],
        ],
        "name": [["Emily", "Greg", "Lakisha", "Jamal", "Wei", "Priya", "José", "Fatima"]],
        "origin": [
            ["American", "Nigerian", "Mexican", "Chinese", "Indian", "Polish", "Syrian"],
        ],
        "age": [["young", "elderly"], ["25-year-old", "70-year-old"], ["junior", "senior"]],
    }
)
SEP = "|"


def check_terms(terms: TermSets) -> None:
    for attribute, rows in terms.items():
        widths = {len(row) for row in rows}
        if not rows or len(widths) != 1 or widths.pop() < 2:
            msg = f"term set {attribute!r}: rows must all have the same length, at least 2"
            raise InvalidInputError(msg, code="fairness_terms_invalid")


def _pattern(rows: Sequence[Sequence[str]]) -> tuple[re.Pattern[str], dict[str, int]]:
    row_of: dict[str, int] = {}
    for index, row in enumerate(rows):
        for term in row:
            row_of.setdefault(term.casefold(), index)
    words = sorted(row_of, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE), row_of


def _cased(source: str, target: str) -> str:
    if source.isupper() and len(source) > 1:
        return target.upper()
    return target[:1].upper() + target[1:] if source[:1].isupper() else target


@dataclass(frozen=True, slots=True)
class _Swap:
    """Replaces every listed term in a text with its column-``k`` counterpart."""

    pattern: re.Pattern[str]
    rows: Sequence[Sequence[str]]
    row_of: Mapping[str, int]
    k: int

    def __call__(self, text: str) -> str:
        return self.pattern.sub(self._one, text)

    def _one(self, match: re.Match[str]) -> str:
        word = match.group(0)
        return _cased(word, self.rows[self.row_of[word.casefold()]][self.k])


def _rewrite(value: Any, swap: Any) -> Any:
    if isinstance(value, str):
        return swap(value)
    if isinstance(value, list):
        return [_rewrite(v, swap) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite(v, swap) for k, v in value.items()}
    return value


def _mentions(value: Any, pattern: re.Pattern[str]) -> bool:
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, list | dict):
        values = value.values() if isinstance(value, dict) else value
        return any(_mentions(v, pattern) for v in values)
    return False


def counterfactuals(items: Sequence[DatasetItem], terms: TermSets) -> list[DatasetItem]:
    """One variant item per (item, attribute it mentions, column)."""
    check_terms(terms)
    out: list[DatasetItem] = []
    for attribute, rows in terms.items():
        pattern, row_of = _pattern(rows)
        for item in items:
            if not _mentions(item.input, pattern):
                continue
            for k in range(len(rows[0])):
                swap = _Swap(pattern, rows, row_of, k)
                out.append(
                    replace(
                        item,
                        item_id=f"{item.item_id}{SEP}{attribute}={k}",
                        input=_rewrite(item.input, swap),
                        metadata={"source": item.item_id, "attribute": attribute, "variant": k},
                    )
                )
    if not out:
        raise InvalidInputError(
            "no item mentions any term of the term sets; nothing to rewrite",
            code="fairness_no_terms_found",
        )
    return out


def _decision(result: TrialResult) -> str:
    if not result.ok:
        return f"error:{result.error_code}"
    output = result.output
    if isinstance(output, dict) and "decision" in output:
        return str(output["decision"])
    return as_text(output)


def _split(item_id: str) -> tuple[str, str, int]:
    source, _, tail = item_id.rpartition(SEP)
    attribute, _, k = tail.partition("=")
    return source, attribute, int(k)


def fairness_report(
    results: Sequence[TrialResult], metric: Metric, terms: TermSets
) -> dict[str, Any]:
    """Per attribute: flip rate with a Wilson interval, per-variant metric and paired tests."""
    by_attr: dict[str, list[TrialResult]] = defaultdict(list)
    for result in results:
        by_attr[_split(result.item_id)[1]].append(result)
    report: dict[str, Any] = {}
    for attribute, rows in terms.items():
        found = by_attr.get(attribute, [])
        if not found:
            continue
        report[attribute] = _attribute_report(found, metric, [str(t) for t in rows[0]])
    return {"metric": metric.name, "attributes": report}


def _attribute_report(
    results: Sequence[TrialResult], metric: Metric, columns: Sequence[str]
) -> dict[str, Any]:
    modal: dict[str, dict[int, str]] = defaultdict(dict)
    decisions: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    per_variant: dict[int, list[TrialResult]] = defaultdict(list)
    for result in results:
        source, _, k = _split(result.item_id)
        decisions[(source, k)][_decision(result)] += 1
        per_variant[k].append(replace(result, item_id=source))
    for (source, k), counts in decisions.items():
        modal[source][k] = counts.most_common(1)[0][0]
    flips = sum(1 for answers in modal.values() if len(set(answers.values())) > 1)
    n = len(modal)
    low, high = stats.wilson(flips, n)
    reference = values_by_item(per_variant[0], metric)
    variants = []
    for k in sorted(per_variant):
        values = values_by_item(per_variant[k], metric)
        est = stats.estimate(list(values.values()), binary=metric.kind == "pass")
        comparison = stats.compare(reference, values) if k else None
        variants.append(
            {
                "variant": k,
                "example_term": columns[k] if k < len(columns) else str(k),
                "estimate": est.to_dict(),
                "versus_variant_0": comparison.to_dict() if comparison else None,
            }
        )
    return {
        "items": n,
        "flips": flips,
        "flip_rate": {"mean": flips / n, "low": low, "high": high},
        "variants": variants,
    }


def markdown(pipeline: str, report: Mapping[str, Any]) -> str:
    lines = [f"### Counterfactual fairness: `{pipeline}` (metric `{report['metric']}`)", ""]
    for attribute, body in report["attributes"].items():
        rate = body["flip_rate"]
        lines.append(
            f"**{attribute}**: {body['flips']} of {body['items']} items change their answer "
            f"across variants (flip rate {rate['mean']:.3f}, 95% CI [{rate['low']:.3f}, "
            f"{rate['high']:.3f}])"
        )
        lines += ["", "| variant | e.g. | mean | 95% CI | Δ vs variant 0 | p |", "|---" * 6 + "|"]
        for v in body["variants"]:
            est, vs = v["estimate"], v["versus_variant_0"]
            ci = "-" if est["low"] is None else f"[{est['low']:.3f}, {est['high']:.3f}]"
            delta = "-" if vs is None else f"{vs['diff']:+.3f}"
            p = "-" if vs is None else f"{vs['p_value']:.3g}"
            cells = [str(v["variant"]), v["example_term"], f"{est['mean']:.3f}", ci, delta, p]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
