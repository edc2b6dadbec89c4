"""The one error shape: `{"status", "error", "message"[, "details"]}`.

Every API error leaves through `api_exception_handler` (DRF) or `error_response` (middleware
and Django's error handlers), never as an HTML page or a bare `{"detail": ...}`.
"""

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status

from config.middleware import HybridMiddleware

logger = logging.getLogger("config.errors")

# RFC 9110 names where Python's table still has the older ones.
_PHRASES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


def reason_phrase(status_code: int) -> str:
    if status_code in _PHRASES:
        return _PHRASES[status_code]
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _text(value) -> str:
    """`value` as text that can be written as UTF-8: a lone surrogate a client sent (JSON
    can carry "\\ud800") and a message quotes comes back escaped, not as a 500."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(status_code: int, message: str, details: dict | None = None) -> dict:
    body = {"status": status_code, "error": reason_phrase(status_code), "message": _text(message)}
    if details:
        body["details"] = details
    return body


def error_response(
    status_code: int, message: str, details: dict | None = None, headers: dict | None = None
) -> JsonResponse:
    # Compact, like DRF's own responses: {"status":401,"error":"Unauthorized",...}.
    return JsonResponse(
        error_body(status_code, message, details),
        status=status_code,
        headers=headers,
        json_dumps_params={"separators": (",", ":"), "ensure_ascii": False},
    )


class TenantAccessDenied(exceptions.PermissionDenied):
    default_detail = "Tenant access denied"
    default_code = "tenant_access_denied"


class InvalidCursor(exceptions.ValidationError):
    """400 `Invalid cursor` (API.md, Conventions): a pagination cursor that does not decode,
    was made for another ordering or is out of range."""

    envelope_message = "Invalid cursor"

    def __init__(self):
        super().__init__({"cursor": ["Invalid cursor."]}, code="invalid_cursor")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict"
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service unavailable"
    default_code = "service_unavailable"


def _flatten(detail) -> dict[str, list[str]]:
    """DRF's nested error detail as `{"field": ["message", ...]}`, every text writable."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for field, value in detail.items():
            if isinstance(value, dict):
                for sub, messages in _flatten(value).items():
                    out[f"{_text(field)}.{sub}"] = messages
            elif isinstance(value, list):
                messages = []
                for item in value:
                    if isinstance(item, dict):
                        for sub, sub_messages in _flatten(item).items():
                            out[f"{_text(field)}.{sub}"] = sub_messages
                    else:
                        messages.append(_text(item))
                if messages:
                    out[_text(field)] = messages
            else:
                out[_text(field)] = [_text(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [_text(item) for item in detail]}
    return {"non_field_errors": [_text(detail)]}


_MESSAGES = {
    exceptions.NotAuthenticated: "Missing authorization header",
    exceptions.ParseError: "Malformed JSON",
    exceptions.NotFound: "Not found",
}


def _as_api_exception(exc: BaseException) -> BaseException:
    """Django's own exceptions as DRF's: services raise Django's ValidationError (a message
    per field, as forms and commands read it) and the API answers it as a 400 with
    `details`, so no view catches it to reshape it."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return exceptions.ValidationError(exc.message_dict)
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    return exc


def api_exception_handler(exc, context):
    """DRF exception handler that renders every error in the project's envelope."""
    exc = _as_api_exception(exc)
    # Imported here: rest_framework.views loads the authentication classes, which import
    # this module.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None and isinstance(exc, DatabaseError):
        # Re-raised for the middleware: a tenant database that failed (unreachable, lost,
        # a damaged file) is the tenants' 503 (tenants.middleware), anything else a logged
        # 500 (ApiErrorMiddleware).
        return None
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return error_response(500, "Internal server error")

    headers = {
        k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")
    }
    code = response.status_code
    if isinstance(exc, exceptions.ValidationError):
        details = _flatten(exc.detail)
        message = getattr(exc, "envelope_message", "Validation failed")
        return error_response(400, message, details, headers)
    message = _MESSAGES.get(type(exc))
    if message is None:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        message = str(detail) if not isinstance(detail, (dict, list)) else reason_phrase(code)
    if isinstance(exc, exceptions.Throttled):
        message = "Too many requests"
    if isinstance(exc, exceptions.ParseError) and "JSON" not in str(exc.detail):
        message = str(exc.detail)
    return error_response(code, message, None, headers)


_DEFAULT_MESSAGES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Request body too large",
    415: "Unsupported media type",
    500: "Internal server error",
}


class ApiErrorMiddleware(HybridMiddleware):
    """Under `/api/`, every error leaves in the envelope: Django's own HTML responses (an
    unknown URL, a wrong method, a too-large body, DEBUG pages) are replaced, and an
    unhandled exception becomes a logged 500 without a traceback in the body."""

    def after(self, request, response):
        if (
            request.path_info.startswith("/api/")
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            code = response.status_code
            headers = {k: v for k, v in response.items() if k in ("Allow", "Retry-After")}
            return error_response(
                code, _DEFAULT_MESSAGES.get(code, reason_phrase(code)), headers=headers
            )
        return response

    def process_exception(self, request, exception):
        if not request.path_info.startswith("/api/"):
            return None
        from django.core.exceptions import RequestDataTooBig

        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "Request body too large")
        logger.error(
            "Unhandled error on %s %s", request.method, request.path_info, exc_info=exception
        )
        return error_response(500, "Internal server error")
