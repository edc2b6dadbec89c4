"""The access log: one line per HTTP request on the `logstream.access` logger.

`GET /api/address-book?search=bob 200 12.3ms tenant=acme user=7 request_id=...`: the
literal path with sensitive query values redacted. The line is logged inside the request's
tenant context, so it reaches that tenant's log stream.
"""

from __future__ import annotations

import logging
import time

from django.utils.functional import SimpleLazyObject, empty

from config.middleware import HybridMiddleware
from logstream.redaction import redact_query
from tenants.context import slug_of, use_tenant

logger = logging.getLogger("logstream.access")


def literal_path(request) -> str:
    """The path as the client sent it, with sensitive query values redacted."""
    query = request.META.get("QUERY_STRING", "")
    path = request.path
    return f"{path}?{redact_query(query)}" if query else path


def request_user_id(request):
    """The authenticated user's id, without forcing a lazy session user to load."""
    user = request.__dict__.get("user")
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    return user.pk


class AccessLogMiddleware(HybridMiddleware):
    def before(self, request):
        request._access_log_started = time.perf_counter()
        return None

    def after(self, request, response):
        self.log(request, response, request._access_log_started)
        return response

    @staticmethod
    def log(request, response, started: float) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        tenant = getattr(request, "tenant", None)
        with use_tenant(tenant):
            logger.info(
                "%s %s %s %.1fms tenant=%s user=%s request_id=%s",
                request.method,
                literal_path(request),
                response.status_code,
                duration_ms,
                slug_of(tenant, "-"),
                request_user_id(request) or "-",
                getattr(request, "request_id", None) or "-",
            )
