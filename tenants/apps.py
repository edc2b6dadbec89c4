from django.apps import AppConfig


def tenants_readiness() -> dict:
    """The tenants' part of /ready. One tenant's database does not make the process unready:
    it is counted, from recorded failures, without querying any tenant database: the
    tenants whose own database failed, and every active tenant of a server found down.
    /ready has no authentication, so which tenants fail is the platform API's tenant
    health's."""
    from tenants.db.breaker import recently_unavailable_servers, recently_unavailable_tenants
    from tenants.selectors import tenants_on_servers

    slugs = set(recently_unavailable_tenants())
    down = recently_unavailable_servers()
    if down:
        slugs.update(tenants_on_servers(down))
    return {"unavailable": len(slugs)}


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from config.metrics import register_collector
        from config.views import register_readiness_report
        from tenants import checks, signals  # noqa: F401  (registers checks and receivers)
        from tenants.db import (
            breaker,  # noqa: F401  (closes a circuit when a connection opens)
            pooler,  # noqa: F401  (registers the pooler's deploy check)
        )
        from tenants.db.connections import install_request_housekeeping
        from tenants.metrics import TenantCollector

        install_request_housekeeping()
        register_collector(TenantCollector())
        register_readiness_report("tenants", tenants_readiness)
