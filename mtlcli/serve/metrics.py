"""Prometheus metrics of one service (GET /metrics): requests and errors per route, latency, batches, queue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()  # per app, so that tests and several apps in one process stay apart
        self.requests = Counter(
            "mtl_requests", "Requests answered, by route and status code", ["route", "code"], registry=self.registry
        )
        self.errors = Counter(
            "mtl_errors", "Requests answered with 4xx or 5xx, by route", ["route"], registry=self.registry
        )
        self.latency = Histogram(
            "mtl_request_seconds",
            "Time from request to answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_inputs = Histogram(
            "mtl_batch_inputs", "Inputs per batch the worker ran", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.queue_inputs = Gauge("mtl_queue_inputs", "Inputs accepted and not answered yet", registry=self.registry)

    def observe(self, route: str, code: int, seconds: float) -> None:
        self.requests.labels(route, str(code)).inc()
        if code >= 400:
            self.errors.labels(route).inc()
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
