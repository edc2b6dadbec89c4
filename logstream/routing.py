from django.urls import path

from logstream.consumers import LogStreamConsumer
from logstream.handshake import LogViewerMiddleware

# Credentials are read for these routes only: a path without a route is refused without
# a query (config.asgi).
log_stream = LogViewerMiddleware(LogStreamConsumer.as_asgi())

websocket_urlpatterns = [
    path("api/ws/logs", log_stream),
    path("logs", log_stream),
]
