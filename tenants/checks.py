"""System checks of the tenancy set-up (ids tenants.E0xx / tenants.W0xx)."""

from django.core.checks import Error, Tags, Warning, register


@register(Tags.database, deploy=True)
def check_tenant_databases(app_configs, databases=None, **kwargs):
    """Every active tenant's database answers and has no unapplied migration."""
    if not databases or "default" not in databases:
        return []
    from tenants.models import Tenant
    from tenants.selectors import probe_tenant_database

    try:
        tenants = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE))
    except Exception:  # the registry itself is not migrated yet: migrate will say so
        return []
    problems = []
    for tenant in tenants:
        probe = probe_tenant_database(tenant)
        if not probe.reachable:
            problems.append(
                Error(
                    f"Tenant '{tenant.slug}': database is unreachable ({probe.error}).",
                    id="tenants.E001",
                )
            )
        elif probe.pending_migrations:
            problems.append(
                Warning(
                    f"Tenant '{tenant.slug}': {len(probe.pending_migrations)} "
                    "unapplied migration(s).",
                    hint="Run manage.py migrate_tenants.",
                    id="tenants.W001",
                )
            )
    return problems


@register(Tags.database, deploy=True)
def check_database_servers(app_configs, databases=None, **kwargs):
    """Every registered server that is not offline has its URL variables set to valid URLs
    (tenants.E003) and answers (tenants.E002)."""
    if not databases or "default" not in databases:
        return []
    from tenants.db import servers
    from tenants.db.aliases import ServerUrlError, settings_of_server
    from tenants.models import DatabaseServer

    try:
        registered = list(DatabaseServer.objects.exclude(status=DatabaseServer.Status.OFFLINE))
    except Exception:  # the registry itself is not migrated yet: migrate will say so
        return []
    problems = []
    for server in registered:
        for admin in (False, True):
            try:
                cfg = settings_of_server(server, admin=admin)
            except ServerUrlError as exc:
                problems.append(
                    Error(
                        f"Database server '{server.name}': {exc}.",
                        hint="Set the variable the server's row names, or mark the server offline.",
                        id="tenants.E003",
                    )
                )
                break
            if not servers.server_answers(cfg):
                via = "direct (admin) URL" if admin else "URL"
                problems.append(
                    Error(
                        f"Database server '{server.name}' is unreachable through its {via}.",
                        id="tenants.E002",
                    )
                )
                break
    return problems
