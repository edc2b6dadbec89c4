"""Request id: every response carries `X-Request-Id`, and log records carry the same id.

The inbound header is kept when it is well-formed (at most 128 characters of
`[A-Za-z0-9._-]`), so a proxy's id follows the request through; anything else is replaced
by a fresh uuid4. The id lives in a ContextVar, set and reset in the same call (asgiref #267).
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def get_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return _current_request_id.get()


def request_id_from(inbound: str | None) -> str:
    """`inbound` when it is a well-formed id, else a new uuid4 hex."""
    if inbound and _VALID_REQUEST_ID.fullmatch(inbound):
        return inbound
    return uuid.uuid4().hex


class RequestIdMiddleware:
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
        request_id = self._start(request)
        token = _current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response

    async def __acall__(self, request):
        request_id = self._start(request)
        token = _current_request_id.set(request_id)
        try:
            response = await self.get_response(request)
        finally:
            _current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response

    @staticmethod
    def _start(request) -> str:
        request.request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        return request.request_id
