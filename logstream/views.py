"""The deprecated SSE endpoint (410) and the staff log viewer page."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from config.errors import error_response

WS_ENDPOINT = "/api/ws/logs"


@csrf_exempt
def logs_gone(request):
    """GET /api/logs, the old Server-Sent Events stream: 410 Gone, whoever asks."""
    return error_response(410, f"The log stream moved: use the WebSocket endpoint {WS_ENDPOINT}")


def log_viewer(request):
    """The live log viewer, in the admin's look (wrapped in `admin.site.admin_view`)."""
    context = {
        **admin.site.each_context(request),
        "title": "Live logs",
        "ws_path": WS_ENDPOINT,
        "default_format": settings.WS_LOG_FORMAT,
    }
    return render(request, "admin/logs.html", context)
