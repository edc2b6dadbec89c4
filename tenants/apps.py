from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from config.metrics import register_collector
        from tenants import checks, signals  # noqa: F401  (registers checks and receivers)
        from tenants.db import breaker  # noqa: F401  (closes a circuit when a connection opens)
        from tenants.metrics import TenantCollector

        register_collector(TenantCollector())
