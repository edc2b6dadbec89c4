"""Prometheus metrics (prometheus-client): requests by route template and status, latency,
and what the apps' collectors add (tenants by status: tenants/metrics.py; WebSocket log
clients, log lines published and dropped: logstream/metrics.py).

Under a multi-process server set `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's own
variable) so every worker's counters are summed at scrape time.
"""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from config.errors import error_response
from config.middleware import HybridMiddleware
from config.network import client_ip, ip_in

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# Every label value comes from a bounded set, whatever a client sends: a method outside
# KNOWN_METHODS is "other", a path that no URL pattern matched is UNRESOLVED_ROUTE, a route
# is the pattern (never the literal path), and a status is an HTTP status code.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNRESOLVED_ROUTE = "<unresolved>"


def method_of(request) -> str:
    method = request.method
    return method if method in KNOWN_METHODS else OTHER_METHOD


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNRESOLVED_ROUTE
    return "/" + match.route


def status_of(response) -> str:
    code = response.status_code
    return str(code) if isinstance(code, int) and 100 <= code <= 599 else "other"


class MetricsMiddleware(HybridMiddleware):
    """Counts every request under its URL pattern (not its literal path, which would make
    one series per contact id)."""

    def before(self, request):
        request._metrics_started = time.perf_counter()
        return None

    def after(self, request, response):
        route = route_of(request)
        REQUESTS.labels(method_of(request), route, status_of(response)).inc()
        started = getattr(request, "_metrics_started", None)
        if started is not None:
            LATENCY.labels(route).observe(time.perf_counter() - started)
        return response


# Collectors the apps register from `AppConfig.ready()`: values read at scrape time.
_COLLECTORS: list = []


def register_collector(collector) -> None:
    """Add an app's collector to the process registry (and to the per-scrape registry of
    a multi-process server). A second collector of the same class is ignored."""
    if any(type(known) is type(collector) for known in _COLLECTORS):
        return
    _COLLECTORS.append(collector)
    REGISTRY.register(collector)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _COLLECTORS:
            registry.register(collector)
        return registry
    return REGISTRY


def metrics_view(request):
    """Prometheus text. With `METRICS_ALLOWED_IPS` set only those networks may scrape; in
    production with it unset, only loopback."""
    allowed = settings.METRICS_ALLOWED_IPS or (
        ["127.0.0.0/8", "::1/128"] if settings.PRODUCTION else []
    )
    if allowed and not ip_in(client_ip(request), allowed):
        return error_response(403, "Access from this network is not allowed")
    if request.method != "GET":
        return error_response(405, "Method not allowed", headers={"Allow": "GET"})
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
