from django.urls import path

from logstream.consumers import LogStreamConsumer

websocket_urlpatterns = [
    path("api/ws/logs", LogStreamConsumer.as_asgi()),
    path("logs", LogStreamConsumer.as_asgi()),
]
