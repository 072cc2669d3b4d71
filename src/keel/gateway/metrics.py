"""Prometheus metrics of one process, on a registry of its own (no global state).

Counters and histograms are updated on the hot path with pre-resolved label children
where the label set is small; gauges that mirror other objects (circuit state, the span
queue) are read only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from keel.core.usage import Usage
from keel.gateway.breaker import STATE_VALUES, CircuitBreaker

_MAX_CACHED_CHILDREN = 4096  # label sets remembered; rarer ones are looked up each time
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


GuardrailCounts = Callable[[], list[dict[str, Any]]]


class _Mirror(Collector):
    """Read at scrape time: circuit states, the span export queue, guardrail rules fired."""

    def __init__(
        self,
        breakers: Callable[[], dict[str, CircuitBreaker]],
        tracer_provider: Any,
        guardrails: GuardrailCounts | None = None,
    ) -> None:
        self._breakers = breakers
        self._tracer_provider = tracer_provider
        self._guardrails = guardrails

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self._guardrails is not None:
            fired = CounterMetricFamily(
                "keel_guardrail_rules_fired",
                "Guardrail rules that fired, by pipeline, rule and action (this process).",
                labels=["pipeline", "rule", "action"],
            )
            for row in self._guardrails():
                fired.add_metric([row["pipeline"], row["rule"], row["action"]], row["count"])
            yield fired
        circuit = GaugeMetricFamily(
            "keel_circuit_state",
            "Circuit per provider endpoint: 0 closed, 1 half-open, 2 open.",
            labels=["provider"],
        )
        for name, breaker in sorted(self._breakers().items()):
            circuit.add_metric([name], STATE_VALUES[breaker.state])
        yield circuit
        provider = self._tracer_provider
        yield GaugeMetricFamily(
            "keel_span_queue_depth",
            "Spans waiting in the export queue.",
            value=getattr(provider, "queued_spans", 0),
        )
        yield GaugeMetricFamily(
            "keel_spans_dropped",
            "Spans dropped because the export queue was full (since start).",
            value=getattr(provider, "dropped_spans", 0),
        )


class GatewayMetrics:
    def __init__(
        self,
        breakers: Callable[[], dict[str, CircuitBreaker]],
        tracer_provider: Any,
        guardrails: GuardrailCounts | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ["route", "model", "pipeline", "version", "status"]
        self.requests = Counter("keel_requests", "HTTP requests.", labels, registry=r)
        self.latency = Histogram(
            "keel_request_seconds",
            "HTTP request latency.",
            labels,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.ttft = Histogram(
            "keel_time_to_first_token_seconds",
            "Time to a stream's first token.",
            ["model"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.tokens = Counter(
            "keel_tokens", "Tokens in and out.", ["direction", "model", "pipeline"], registry=r
        )
        self.cost = Counter(
            "keel_cost_usd", "Cost in US dollars.", ["key", "model", "pipeline"], registry=r
        )
        self.cache = Counter(
            "keel_cache_lookups", "Response cache lookups.", ["result"], registry=r
        )
        self.cache_saved = Counter(
            "keel_cache_saved_usd",
            "What cache hits saved: the cost of the original answers, in US dollars.",
            ["key", "model", "pipeline"],
            registry=r,
        )
        self.retries = Counter("keel_retries", "Model call retries.", ["model", "code"], registry=r)
        self.fallbacks = Counter(
            "keel_fallbacks",
            "Fallbacks to the next model of a chain.",
            ["model", "code"],
            registry=r,
        )
        self.rejections = Counter(
            "keel_rate_limit_rejections",
            "Requests refused by a key's limits.",
            ["code"],
            registry=r,
        )
        r.register(_Mirror(breakers, tracer_provider, guardrails))
        # Label children resolved once per label set: ``labels()`` locks and checks each call.
        self._request_children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._usage_children: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}

    def record_request(
        self, route: str, model: str, pipeline: str, version: str, status: int, seconds: float
    ) -> None:
        """One finished HTTP request: its count and latency."""
        values = (route, model, pipeline, version, str(status))
        children = self._request_children.get(values)
        if children is None:
            children = (self.requests.labels(*values), self.latency.labels(*values))
            if len(self._request_children) < _MAX_CACHED_CHILDREN:
                self._request_children[values] = children
        children[0].inc()
        children[1].observe(seconds)

    def usage(
        self, usage: Usage, cost: Decimal, *, key: str, model: str, pipeline: str = ""
    ) -> None:
        values = (key, model, pipeline)
        children = self._usage_children.get(values)
        if children is None:
            children = (
                self.tokens.labels("in", model, pipeline),
                self.tokens.labels("out", model, pipeline),
                self.cost.labels(key, model, pipeline),
            )
            if len(self._usage_children) < _MAX_CACHED_CHILDREN:
                self._usage_children[values] = children
        children[0].inc(usage.input_tokens)
        children[1].inc(usage.output_tokens)
        if cost:
            children[2].inc(float(cost))

    def saved(self, cost: Decimal, *, key: str, model: str, pipeline: str = "") -> None:
        self.cache_saved.labels(key, model, pipeline).inc(float(cost))

    def render(self) -> bytes:
        return generate_latest(self.registry)
