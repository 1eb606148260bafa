"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

import gc
from typing import Generic, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Labelled(Generic[M]):
    """A one-label metric's children cached by value. `labels()` takes a lock and builds tuples on
    every call; the per-frame counters are hit thousands of times a second with a handful of values."""

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[str, M] = {}

    def __call__(self, value: str) -> M:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = self.metric.labels(value)
        return child


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.http_requests = Counter("canopy_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.http_latency = Histogram(
            "canopy_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.logins = Counter("canopy_logins", "Login attempts by outcome", ["outcome"], registry=r)
        self.login_throttled = Counter("canopy_login_throttled", "Login attempts refused by the throttle", registry=r)
        self.password_hashes = Counter(
            "canopy_password_hashes",
            "argon2 hashes (register, new password) and verifies run",
            ["operation"],
            registry=r,
        )
        self.ws_connections = Gauge("canopy_ws_connections", "Open WebSocket connections", registry=r)
        self.sessions_in_memory = Gauge("canopy_sessions_in_memory", "Sessions held in memory", registry=r)
        self.frames_in = Counter("canopy_ws_frames_in", "Frames received by type", ["type"], registry=r)
        self.frames_out = Counter("canopy_ws_frames_out", "Frames sent by type", ["type"], registry=r)
        self.errors = Counter("canopy_ws_errors", "Error frames by code", ["code"], registry=r)
        self.frames_in_of = Labelled(self.frames_in)  # label values come from closed sets (frame types, codes)
        self.frames_out_of = Labelled(self.frames_out)
        self.errors_of = Labelled(self.errors)
        self.turn_latency = Histogram(
            "canopy_turn_seconds", "Assistant turn duration", ["provider"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.first_update_latency = Histogram(
            "canopy_turn_first_tree_update_seconds",
            "Prompt to first tree_update",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.resumes = Counter("canopy_ws_resumes", "Session attaches by kind", ["kind"], registry=r)
        self.rate_limited = Counter("canopy_rate_limited", "Rate-limit hits", ["limit"], registry=r)
        self.evictions = Counter("canopy_session_evictions", "Idle sessions evicted from memory", registry=r)
        self.budget_refusals = Counter(
            "canopy_budget_refusals", "Requests refused or sockets closed at a budget", ["budget"], registry=r
        )
        self.budget_refusals_of = Labelled(self.budget_refusals)
        self.agent_streams = Gauge(
            "canopy_agent_streams",
            "Open agent requests by kind: MCP HTTP requests and streams, AG-UI runs",
            ["kind"],
            registry=r,
        )
        self.mcp_subscriptions = Gauge(
            "canopy_mcp_subscriptions",
            "Tree subscriptions held for MCP clients (resources/subscribe and subscriptions/listen)",
            registry=r,
        )
        self.outbox_peak_bytes = Gauge(
            "canopy_ws_outbox_peak_bytes", "Most bytes ever queued for one connection", registry=r
        )
        self._outbox_peak = 0
        self.gc_frozen = Gauge(
            "canopy_gc_frozen_objects", "Objects the worker froze out of garbage collection at startup", registry=r
        )
        self.gc_frozen.set_function(gc.get_freeze_count)

    def note_outbox(self, queued: int) -> None:
        """Records a connection's queued bytes when they set a new peak (rare: no lock on the common path)."""
        if queued > self._outbox_peak:
            self._outbox_peak = queued
            self.outbox_peak_bytes.set(queued)

    def render(self) -> bytes:
        return generate_latest(self.registry)
