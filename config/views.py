"""Operations endpoints and the project's JSON error handlers."""

import asyncio
import uuid
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import error_response
from config.openapi import HealthSerializer, ReadinessSerializer


class OperationsView(APIView):
    """GET only, JSON whatever the Accept header, no authentication (probes and load
    balancers call these)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    http_method_names = ["get"]


class HealthView(OperationsView):
    """200 while the process serves; touches nothing else."""

    @extend_schema(
        operation_id="health", tags=["operations"], auth=[], responses={200: HealthSerializer}
    )
    def get(self, request):
        return Response({"status": "ok"})


health = HealthView.as_view()


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_caches() -> str:
    probe = uuid.uuid4().hex
    for alias in settings.CACHES:
        backend = caches[alias]
        backend.set(f"ready:{probe}", probe, 5)
        if backend.get(f"ready:{probe}") != probe:
            return "unavailable"
        backend.delete(f"ready:{probe}")
    return "ok"


def _check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        return "unavailable"

    async def roundtrip():
        channel = await layer.new_channel("ready.")
        await layer.send(channel, {"type": "ready.probe"})
        return await asyncio.wait_for(layer.receive(channel), timeout=1)

    message = async_to_sync(roundtrip)()
    return "ok" if message.get("type") == "ready.probe" else "unavailable"


# What /ready checks, by name: each answers "ok" or "unavailable" (raising counts as
# unavailable), and every one must be "ok" for the process to be ready.
READY_CHECKS: dict[str, Callable[[], str]] = {
    "database": _check_database,
    "cache": _check_caches,
    "channel_layer": _check_channel_layer,
}
# What /ready reports beside the checks, by name: a JSON object each, that does not make
# the process unready. Apps add theirs (the tenants app its count of unavailable tenant
# databases) from `AppConfig.ready()`, so this module imports no app.
READY_REPORTS: dict[str, Callable[[], dict]] = {}


def register_readiness_check(name: str, check: Callable[[], str]) -> None:
    """Make /ready depend on `check` too, listed under `checks[name]`."""
    READY_CHECKS[name] = check


def register_readiness_report(name: str, report: Callable[[], dict]) -> None:
    """Add `report()` to /ready's answer as `name`, without it deciding the status."""
    READY_REPORTS[name] = report


class ReadyView(OperationsView):
    """200 when the main database, every cache and the channel layer (and any check an app
    registered) answer, else 503 naming what failed; with every registered report."""

    @extend_schema(
        operation_id="ready",
        tags=["operations"],
        auth=[],
        responses={200: ReadinessSerializer, 503: ReadinessSerializer},
    )
    def get(self, request):
        checks = {}
        for name, probe in READY_CHECKS.items():
            try:
                checks[name] = probe()
            except Exception:
                checks[name] = "unavailable"
        healthy = all(value == "ok" for value in checks.values())
        body = {"status": "ok" if healthy else "unavailable", "checks": checks}
        body.update((name, report()) for name, report in READY_REPORTS.items())
        return Response(body, status=200 if healthy else 503)


ready = ReadyView.as_view()


LANDING = {
    "name": "tenantkit",
    "tagline": "Multi-tenant SaaS API",
    "description": (
        "tenantkit serves a REST API for multi-tenant SaaS: every tenant has its own "
        "database, chosen from the request's host; users sign up and log in with JSON Web "
        "Tokens bound to their tenant, keep an address book, and stream their application's "
        "logs over WebSocket. Platform staff provision, migrate and suspend tenants in the "
        "admin or through the platform API."
    ),
    "links": [
        ("docs", "/api/docs/", "API documentation (Swagger UI)"),
        ("schema", "/api/schema/", "OpenAPI 3 schema (?format=json for JSON)"),
        ("admin", "/admin/", "Django admin, for platform staff"),
        ("health", "/health", "liveness probe"),
        ("ready", "/ready", "readiness probe: database, cache, channel layer"),
    ],
}


def landing(request):
    """The root page, on any host: what this service is and where to go. It is the same
    for everyone and shows nothing of any tenant. JSON to a client that prefers it."""
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "Method not allowed", headers={"Allow": "GET, HEAD"})
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        links = {key: href for key, href, _title in LANDING["links"]}
        return JsonResponse({**{k: LANDING[k] for k in ("name", "description")}, "links": links})
    links = [{"href": href, "title": title} for _key, href, title in LANDING["links"]]
    return render(request, "landing.html", {**LANDING, "links": links})


def bad_request(request, exception=None):
    return error_response(400, "Bad request")


def permission_denied(request, exception=None):
    return error_response(403, "Forbidden")


def page_not_found(request, exception=None):
    return error_response(404, "Not found")


def server_error(request):
    return error_response(500, "Internal server error")
