"""Gate reports for people and CI: a rich table, a markdown summary, JUnit XML."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

from rich.table import Table

from keel.evals.gate import GateReport, MetricVerdict


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"


def _interval(est: dict[str, Any]) -> str:
    if est.get("low") is None:
        return "-"
    return f"[{_num(est['low'])}, {_num(est['high'])}]"


def _delta(m: MetricVerdict) -> str:
    c = m.comparison
    if c is None or c.n_pairs == 0:
        return "-"
    interval = f" [{_num(c.low)}, {_num(c.high)}]" if c.low is not None else ""
    adjusted = ""
    if m.adjusted_p is not None and m.adjusted_p != c.p_value:
        adjusted = f" (Holm {m.adjusted_p:.3g})"
    return f"{c.diff:+.3f}{interval} p={c.p_value:.3g}{adjusted}"


def _row(m: MetricVerdict) -> list[str]:
    est = m.estimate
    arrow = "↑" if m.metric.higher_is_better else "↓"
    notes = []
    if "pass_at_k" in est:
        k = est["k"]
        notes.append(f"pass@{k} {_num(est['pass_at_k'])} · pass^{k} {_num(est['pass_hat_k'])}")
    if m.sample_size_hint is not None and m.comparison is not None:
        notes.append(f"~{m.sample_size_hint} items to detect {m.comparison.diff:+.3f}")
    extra = " · ".join(notes)
    return [
        f"{m.metric.name} {arrow}",
        _num(est.get("mean")),
        _interval(est),
        str(est.get("n_items", 0)),
        _delta(m),
        "-" if m.threshold is None else _num(m.threshold),
        m.status,
        extra,
    ]


def _subject(report: GateReport, quote: str = "") -> str:
    run = report.run
    pipeline = f"{run.pipeline}@{run.pipeline_version[:12]}"
    dataset = f"{run.dataset}@{run.dataset_version}"
    return f"{quote}{pipeline}{quote} on {quote}{dataset}{quote}"


HEADERS = ("metric", "mean", "95% CI", "items", "Δ vs baseline", "threshold", "status", "notes")


def table(report: GateReport) -> Table:
    run = report.run
    title = f"eval {run.run_id}  {_subject(report)}"
    if report.baseline is not None:
        title += f"  vs {report.baseline.run_id}"
    out = Table(*HEADERS, title=title)
    for m in report.metrics:
        style = "red" if m.failed else ("green" if "improved" in m.verdicts else None)
        out.add_row(*_row(m), style=style)
    return out


def markdown(report: GateReport) -> str:
    run = report.run
    summary = run.summary or {}
    verdict = (
        "❌ **gate failed**: " + "; ".join(report.failures()) if report.failed else "✅ gate passed"
    )
    lines = [
        f"### Keel eval {_subject(report, '`')}",
        "",
        verdict,
        "",
        f"run `{run.run_id}` · {summary.get('trials', 0)} trials ({run.repeats} per item) · "
        f"{summary.get('errors', 0)} errors · cost ${summary.get('cost_usd', '0')} · "
        f"judge ${summary.get('judge_cost_usd', '0')}"
        + (f" · baseline `{report.baseline.run_id}`" if report.baseline else ""),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_row(m)) + " |" for m in report.metrics]
    return "\n".join(lines) + "\n"


def junit(report: GateReport) -> str:
    """One test case per metric; a failed gate check is a <failure>."""
    run = report.run
    suite = ET.Element(
        "testsuite",
        name=f"keel-eval.{run.pipeline}",
        tests=str(len(report.metrics)),
        failures=str(sum(1 for m in report.metrics if m.failed)),
        errors="0",
    )
    for m in report.metrics:
        case = ET.SubElement(
            suite, "testcase", classname=f"{run.pipeline}.{run.dataset}", name=m.metric.name
        )
        ET.SubElement(case, "system-out").text = " ".join(
            f"{h}={v}" for h, v in zip(HEADERS[1:], _row(m)[1:], strict=True)
        )
        if m.failed:
            failure = ET.SubElement(case, "failure", message=m.status, type=m.status)
            failure.text = f"{m.metric.name}: mean {_num(m.estimate.get('mean'))}, {_delta(m)}"
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
