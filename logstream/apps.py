from django.apps import AppConfig


class LogstreamConfig(AppConfig):
    name = "logstream"
    verbose_name = "Log stream"

    def ready(self) -> None:
        from config.metrics import register_collector
        from logstream import checks  # noqa: F401  (registers the checks)
        from logstream.metrics import LogStreamCollector

        register_collector(LogStreamCollector())
