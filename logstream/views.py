"""The deprecated SSE endpoint (410) and the staff log viewer page."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from config.errors import error_response
from config.openapi import documented_error

WS_ENDPOINT = "/api/ws/logs"
LOGS_GONE_METHODS = ("get", "post", "put", "patch", "delete")


def _gone_schema(method: str):
    return extend_schema(
        operation_id=f"logs_gone_{method}",
        tags=["operations"],
        auth=[],
        deprecated=True,
        summary="The old Server-Sent Events log stream (gone)",
        description=f"Always 410, with or without credentials: use `{WS_ENDPOINT}`.",
        request=None,
        responses={410: documented_error(f"`The log stream moved: use ... {WS_ENDPOINT}`.")},
    )


@extend_schema_view(**{method: _gone_schema(method) for method in LOGS_GONE_METHODS})
class LogsGoneView(APIView):
    """GET /api/logs, the old Server-Sent Events stream: 410 Gone, whoever asks, whatever
    the method. Answered in `dispatch`, before any content negotiation, parsing or
    authentication; the method handlers exist for the schema."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def dispatch(self, request, *args, **kwargs):
        return _gone()

    def get(self, request):
        return _gone()

    def post(self, request):
        return _gone()

    def put(self, request):
        return _gone()

    def patch(self, request):
        return _gone()

    def delete(self, request):
        return _gone()


def _gone():
    return error_response(410, f"The log stream moved: use the WebSocket endpoint {WS_ENDPOINT}")


logs_gone = LogsGoneView.as_view()


def log_viewer(request):
    """The live log viewer, in the admin's look (wrapped in `admin.site.admin_view`)."""
    context = {
        **admin.site.each_context(request),
        "title": "Live logs",
        "ws_path": WS_ENDPOINT,
        "default_format": settings.WS_LOG_FORMAT,
    }
    return render(request, "admin/logs.html", context)
