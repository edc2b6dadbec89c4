"""The base of the project's middleware, and the request id.

Request id: every response carries `X-Request-Id`, and log records carry the same id.
The inbound header is kept when it is well-formed (at most 128 characters of
`[A-Za-z0-9._-]`), so a proxy's id follows the request through; anything else is replaced
by a fresh uuid4. The id lives in a ContextVar, set and reset in the same call (asgiref #267),
beside the request itself (`get_current_request`, read by the audit trail for the actor and
the client address of a service call made on behalf of a request).
"""

from __future__ import annotations

import re
import uuid
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

REQUEST_ID_HEADER = "X-Request-Id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)
_current_request: ContextVar[object | None] = ContextVar("current_request", default=None)


def get_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return _current_request_id.get()


def get_current_request():
    """The Django request being served, or None outside a request (a command, a task)."""
    return _current_request.get()


def request_id_from(inbound: str | None) -> str:
    """`inbound` when it is a well-formed id, else a new uuid4 hex."""
    if inbound and _VALID_REQUEST_ID.fullmatch(inbound):
        return inbound
    return uuid.uuid4().hex


class HybridMiddleware:
    """Middleware that runs in the sync (WSGI) and the async (ASGI) chain alike, with no
    thread hop. Subclasses fill in three hooks:

    - `before(request)`: may return a response, which then skips the rest of the chain
      (`abefore` is its async form, for work that must leave the event loop);
    - `around(request)`: a context manager held while the inner chain runs (a ContextVar
      must be set and reset in the same call);
    - `after(request, response)`: returns the response to send, early answers included.
    """

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
        response = self.before(request)
        if response is None:
            with self.around(request):
                response = self.get_response(request)
        return self.after(request, response)

    async def __acall__(self, request):
        response = await self.abefore(request)
        if response is None:
            with self.around(request):
                response = await self.get_response(request)
        return self.after(request, response)

    def before(self, request):
        return None

    async def abefore(self, request):
        return self.before(request)

    def around(self, request) -> AbstractContextManager:
        return nullcontext()

    def after(self, request, response):
        return response


class RequestIdMiddleware(HybridMiddleware):
    def before(self, request):
        request.request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        return None

    @contextmanager
    def around(self, request):
        token = _current_request_id.set(request.request_id)
        request_token = _current_request.set(request)
        try:
            yield
        finally:
            _current_request.reset(request_token)
            _current_request_id.reset(token)

    def after(self, request, response):
        response[REQUEST_ID_HEADER] = request.request_id
        return response
