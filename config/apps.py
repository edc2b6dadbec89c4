from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Project-wide pieces that belong to no feature app: system checks, the `check`
    override that runs database checks under --deploy."""

    name = "config"
    verbose_name = "Project configuration"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks)
