"""The log stream's Prometheus collector, registered from `LogstreamConfig.ready()`."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from logstream.consumers import connected_clients
from logstream.handlers import publisher


class LogStreamCollector:
    """Log records published and dropped by this process, and its connected clients."""

    def describe(self):
        yield CounterMetricFamily("log_lines_published", "Log records published to the stream")
        yield CounterMetricFamily("log_lines_dropped", "Log records dropped")
        yield GaugeMetricFamily("websocket_log_clients", "Connected WebSocket log clients")

    def collect(self):
        stats = publisher.stats()
        yield CounterMetricFamily(
            "log_lines_published", "Log records published to the stream", value=stats["published"]
        )
        yield CounterMetricFamily(
            "log_lines_dropped",
            "Log records dropped because the publishing buffer was full",
            value=stats["dropped"],
        )
        clients = GaugeMetricFamily(
            "websocket_log_clients", "Connected WebSocket log clients in this process"
        )
        clients.add_metric([], connected_clients())
        yield clients
