"""ASGI entry point: HTTP and the WebSocket log stream (daphne)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from config.errors import reason_phrase  # noqa: E402
from logstream.handshake import OriginValidator  # noqa: E402
from logstream.redaction import redact_secrets  # noqa: E402
from logstream.routing import websocket_urlpatterns  # noqa: E402


def _redact_daphne_access_log() -> None:
    """Daphne's own access log prints the raw query string, `?token=` included; redact it
    like every other log line."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:
        return
    write_entry = AccessLogGenerator.write_entry
    if getattr(write_entry, "redacts", False):
        return

    def redacting_write_entry(self, host, date, request, *args, **kwargs):
        return write_entry(self, host, date, redact_secrets(request), *args, **kwargs)

    redacting_write_entry.redacts = True
    AccessLogGenerator.write_entry = redacting_write_entry


_redact_daphne_access_log()


def _standard_reason_phrases() -> None:
    """Daphne's status line takes its reason phrase from Twisted's table, which lacks 429
    (sent as "Unknown Status") and names 413 by its old name: use the standard phrases
    (RFC 9110, RFC 6585), the ones the error envelope's `error` carries."""
    try:
        from twisted.web import http
    except ImportError:
        return
    for status in (413, 429, 431):
        http.RESPONSES[status] = reason_phrase(status).encode("ascii")


_standard_reason_phrases()


class NoWebSocketRoute(AsyncWebsocketConsumer):
    """A WebSocket path the product does not serve: closed before it is accepted."""

    async def connect(self):
        await self.close()


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin first, on every path; the log stream's routes then authenticate the
        # handshake (logstream.handshake). Any other path is refused at the handshake
        # (403), not a "No route found" 500.
        "websocket": OriginValidator(
            URLRouter([*websocket_urlpatterns, re_path(r"", NoWebSocketRoute.as_asgi())])
        ),
    }
)
