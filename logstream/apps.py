from django.apps import AppConfig


class LogstreamConfig(AppConfig):
    name = "logstream"
    verbose_name = "Log stream"
