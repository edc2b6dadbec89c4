"""Cross-cutting protections: security headers, the per-IP rate limit, the request-size
limit and the network allow-list of the admin and platform API."""

from __future__ import annotations

import io
import logging

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream, WSGIRequest

from config.errors import error_response
from config.middleware import HybridMiddleware
from config.network import client_ip, ip_in
from config.paths import PROBE_PATHS, is_staff_path
from config.ratelimit import count_hit

logger = logging.getLogger("config.security")

# Pages (admin, log viewer, API docs) run their own inline scripts and open a WebSocket to
# this origin; JSON responses need nothing at all.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)


class SecurityHeadersMiddleware(HybridMiddleware):
    """Content-Security-Policy, Permissions-Policy and X-Frame-Options on every response,
    including early answers of the middleware inside it. Django's SecurityMiddleware, which
    sits outside this one, adds nosniff, Referrer-Policy, COOP and (HTTPS, production)
    HSTS."""

    def after(self, request, response):
        is_json = response.get("Content-Type", "").startswith("application/json")
        response.headers.setdefault("Content-Security-Policy", API_CSP if is_json else PAGE_CSP)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response


def _read_unsized_body(request, limit: int) -> bytes:
    """Up to `limit + 1` bytes of a body sent without Content-Length. Under WSGI only a
    chunked body has one (Django's own stream of such a request is empty: it reads
    Content-Length bytes); under ASGI the server has already collected it."""
    if isinstance(request, WSGIRequest):
        if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return b""
        return request.environ["wsgi.input"].read(limit + 1)
    # The stream itself: HttpRequest.read would mark the body as consumed.
    return request._stream.read(limit + 1)


class RequestSizeLimitMiddleware(HybridMiddleware):
    """413 for a body larger than `MAX_REQUEST_SIZE_BYTES`: a declared one before it is
    read; one without Content-Length (chunked) once `MAX_REQUEST_SIZE_BYTES + 1` bytes of
    it are read. A smaller unsized body is kept, with its length, for the view to parse
    (parsers read Content-Length bytes, so it would otherwise look empty)."""

    def before(self, request):
        limit = settings.MAX_REQUEST_SIZE_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                return error_response(400, "Invalid Content-Length header")
            return self.too_large(limit) if length > limit else None
        body = _read_unsized_body(request, limit)
        if len(body) > limit:
            return self.too_large(limit)
        if body:
            request._stream = LimitedStream(io.BytesIO(body), len(body))
            request.META["CONTENT_LENGTH"] = str(len(body))
        return None

    @staticmethod
    def too_large(limit: int):
        return error_response(413, f"Request body too large (limit {limit} bytes)")


class RateLimitMiddleware(HybridMiddleware):
    """`RATE_LIMIT_PER_MINUTE` requests per client IP per minute window, counted in the
    shared cache so replicas share it. Over the limit: 429 with Retry-After. If the cache
    is down the request is served and a warning logged (as the login throttles do)."""

    def before(self, request):
        limit = settings.RATE_LIMIT_PER_MINUTE
        if limit <= 0 or request.path_info in PROBE_PATHS:
            return None
        try:
            count, retry_after = count_hit(f"ratelimit:ip:{client_ip(request)}")
        except Exception:
            logger.warning("Rate limit not enforced: cache unavailable")
            return None
        if count > limit:
            return error_response(
                429, "Too many requests", headers={"Retry-After": str(retry_after)}
            )
        return None


class AdminAllowListMiddleware(HybridMiddleware):
    """With `ADMIN_ALLOWED_IPS` set, `/admin/` and `/api/platform/` answer 403 to clients
    outside those networks."""

    def before(self, request):
        allowed = settings.ADMIN_ALLOWED_IPS
        if not allowed:
            return None
        if not is_staff_path(request.path_info):
            return None
        if ip_in(client_ip(request), allowed):
            return None
        return error_response(403, "Access from this network is not allowed")
