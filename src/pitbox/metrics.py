"""Prometheus metrics of one app: a registry of its own (no process-global state), request metrics, and
gauges read from the services at scrape time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The app's metrics. Domain services get it passed in and count what they do."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "pitbox_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "pitbox_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.coaching_latency = Histogram(
            "pitbox_coaching_latency_seconds",
            "Lap end to feedback stored, by source.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def watch(self, name: str, read: Callable[[], dict[str, Any]], documentation: str) -> None:
        """Expose numbers read at scrape time (pool sizes, hub counts, cache counters) as `pitbox_<name>_<key>`."""
        self.registry.register(_ReadAtScrape(name, read, documentation))


class _ReadAtScrape(Collector):
    def __init__(self, name: str, read: Callable[[], dict[str, Any]], documentation: str) -> None:
        self._name = name
        self._read = read
        self._doc = documentation

    def collect(self) -> Iterator[Metric]:
        for key, value in self._read().items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            full = f"pitbox_{self._name}_{key}"
            if key.endswith("_total"):
                yield CounterMetricFamily(full.removesuffix("_total"), self._doc, value=value)
            else:
                yield GaugeMetricFamily(full, self._doc, value=value)

    def describe(self) -> Iterator[Metric]:
        return iter(())


class RequestMetricsMiddleware:
    """Counts requests and their latency by route template (`/api/teams/{team_id}`), never by raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.http_requests.labels(template, method, str(status)).inc()
            self.metrics.http_latency.labels(template, method).observe(time.perf_counter() - started)
