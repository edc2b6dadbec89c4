"""System checks of the tenancy set-up (ids tenants.E0xx / tenants.W0xx)."""

from django.core.checks import Error, Tags, Warning, register


@register(Tags.database, deploy=True)
def check_tenant_databases(app_configs, databases=None, **kwargs):
    """Every active tenant's database answers and has no unapplied migration."""
    if not databases or "default" not in databases:
        return []
    from tenants.db.aliases import register_tenant_database
    from tenants.db.connections import close_connection
    from tenants.models import Tenant
    from tenants.selectors import pending_migrations

    try:
        tenants = list(Tenant.objects.filter(status=Tenant.Status.ACTIVE))
    except Exception:  # the registry itself is not migrated yet: migrate will say so
        return []
    problems = []
    for tenant in tenants:
        try:
            register_tenant_database(tenant)
            pending = pending_migrations(tenant.alias)
        except Exception as exc:
            problems.append(
                Error(
                    f"Tenant '{tenant.slug}': database is unreachable ({type(exc).__name__}).",
                    id="tenants.E001",
                )
            )
            continue
        finally:
            close_connection(tenant.alias)
        if pending:
            problems.append(
                Warning(
                    f"Tenant '{tenant.slug}': {len(pending)} unapplied migration(s).",
                    hint="Run manage.py migrate_tenants.",
                    id="tenants.W001",
                )
            )
    return problems
