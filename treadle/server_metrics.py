"""Prometheus metrics: requests and latency by operation and status, jobs by
state and finished jobs by runner, endpoints loaded. Each server keeps its own registry so several apps
in one process (tests, the in-process mode) never collide.

With several HTTP worker processes, prometheus_client's multiprocess mode
keeps every worker's values in files under one directory, and a scrape of
any worker reads them all. That mode is chosen when prometheus_client is
first imported, from PROMETHEUS_MULTIPROC_DIR (`treadle.workers` sets it).
"""
from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .store.tables import jobs

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _JobsCollector:
    """Read at scrape time, so the figures are never stale."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def collect(self):
        by_state = GaugeMetricFamily("treadle_jobs", "Jobs in the durable queue by state", labels=["kind", "state"])
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.kind, jobs.c.state, sa.func.count())
                                .group_by(jobs.c.kind, jobs.c.state)).all()
        for kind, state, count in rows:
            by_state.add_metric([kind, state], count)
        yield by_state


class Metrics:
    def __init__(self, engine: sa.Engine, multiprocess_dir: str | None = None):
        if multiprocess_dir and prometheus_values.ValueClass is prometheus_values.MutexValue:
            raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported")
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        self.requests = Counter("treadle_requests", "API requests by operation and HTTP status",
                                ["operation", "status"], registry=self.registry)
        self.latency = Histogram("treadle_request_seconds", "API request latency by operation",
                                 ["operation"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.endpoints_loaded = Gauge(
            "treadle_endpoints_loaded",
            "Real-time models held in memory (with several HTTP workers: by the worker holding the most)",
            registry=self.registry, multiprocess_mode="livemax")
        self.jobs_finished = Counter("treadle_jobs_finished", "Jobs this server ran to their end, by runner "
                                     "(local processes or a Dask cluster), kind and outcome",
                                     ["runner", "kind", "status"], registry=self.registry)
        self._jobs = _JobsCollector(engine)
        self.registry.register(self._jobs)
        # labels() takes a lock and builds a key on every call; the children
        # never change once made, so each pair is looked up once.
        self._children: dict[tuple[str, int], tuple] = {}

    def observe(self, operation: str, status: int, seconds: float) -> None:
        children = self._children.get((operation, status))
        if children is None:
            children = self._children[(operation, status)] = (
                self.requests.labels(operation, str(status)), self.latency.labels(operation))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self._jobs)
        return generate_latest(registry)
