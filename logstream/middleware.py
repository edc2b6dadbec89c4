"""The access log: one line per HTTP request on the `logstream.access` logger.

`GET /api/address-book?search=bob 200 12.3ms tenant=acme user=7 request_id=...`: the
literal path with sensitive query values redacted. The line is logged inside the request's
tenant context, so it reaches that tenant's log stream.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.utils.functional import SimpleLazyObject, empty

from logstream.redaction import redact_query
from tenants.context import use_tenant

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


class AccessLogMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        started = time.perf_counter()
        response = self.get_response(request)
        self.log(request, response, started)
        return response

    async def __acall__(self, request):
        started = time.perf_counter()
        response = await self.get_response(request)
        self.log(request, response, started)
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
                tenant.slug if tenant is not None else "-",
                request_user_id(request) or "-",
                getattr(request, "request_id", None) or "-",
            )
