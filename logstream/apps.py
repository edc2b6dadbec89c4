from django.apps import AppConfig


class LogstreamConfig(AppConfig):
    name = "logstream"
    verbose_name = "Log stream"

    def ready(self) -> None:
        from logstream import checks  # noqa: F401  (registers the checks)
