"""Operations endpoints and the project's JSON error handlers."""

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from config.errors import error_response


@require_GET
def health(request):
    """200 while the process serves; touches nothing else."""
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request):
    """200 when the main database and the cache answer, else 503 naming what failed."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        cache.set("ready-probe", "1", 5)
        checks["cache"] = "ok" if cache.get("ready-probe") == "1" else "unavailable"
    except Exception:
        checks["cache"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )


def bad_request(request, exception=None):
    return error_response(400, "Bad request")


def permission_denied(request, exception=None):
    return error_response(403, "Forbidden")


def page_not_found(request, exception=None):
    return error_response(404, "Not found")


def server_error(request):
    return error_response(500, "Internal server error")
