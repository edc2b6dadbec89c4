"""Operations endpoints and the project's JSON error handlers."""

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import error_response
from config.openapi import HealthSerializer, ReadinessSerializer
from tenants.db import recently_unavailable_tenants


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


READY_CHECKS = {
    "database": _check_database,
    "cache": _check_caches,
    "channel_layer": _check_channel_layer,
}


class ReadyView(OperationsView):
    """200 when the main database, every cache and the channel layer answer, else 503
    naming what failed."""

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
        # One tenant's database does not make the process unready; it is named instead,
        # from recorded failures, without querying any tenant database.
        tenants = {"unavailable": recently_unavailable_tenants()}
        return Response(
            {"status": "ok" if healthy else "unavailable", "checks": checks, "tenants": tenants},
            status=200 if healthy else 503,
        )


ready = ReadyView.as_view()


def bad_request(request, exception=None):
    return error_response(400, "Bad request")


def permission_denied(request, exception=None):
    return error_response(403, "Forbidden")


def page_not_found(request, exception=None):
    return error_response(404, "Not found")


def server_error(request):
    return error_response(500, "Internal server error")
