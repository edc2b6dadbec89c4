"""Sends each model to the database docs/architecture.md places it in.

The placement table is `SHARED_APPS` / `TENANT_APPS` in settings; this router only reads it.
"""

from functools import cache

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from tenants.context import NoTenantError, get_current_tenant
from tenants.db.aliases import is_tenant_alias
from tenants.db.connections import note_tenant_activated


@cache
def _labels(module_paths: tuple[str, ...]) -> frozenset[str]:
    by_name = {config.name: config.label for config in apps.get_app_configs()}
    return frozenset(by_name[path] for path in module_paths if path in by_name)


def shared_labels() -> frozenset[str]:
    return _labels(tuple(settings.SHARED_APPS))


def tenant_labels() -> frozenset[str]:
    return _labels(tuple(settings.TENANT_APPS))


class TenantRouter:
    """Tenant-only apps go to the current tenant (never to `default`); apps in both lists go
    to the current tenant when one is active, else to `default`; the rest to `default`."""

    def _db_for(self, model, **hints):
        label = model._meta.app_label
        if label not in tenant_labels():
            return DEFAULT_DB_ALIAS
        tenant = get_current_tenant()
        if tenant is not None:
            # Under ASGI the query runs in another thread than the one that activated the
            # tenant: the request's end looks after the connections of its own thread.
            alias = tenant.alias
            note_tenant_activated(alias)
            return alias
        if label in shared_labels():
            return DEFAULT_DB_ALIAS
        raise NoTenantError(
            f"{model._meta.label} lives only in tenant databases and no tenant is active; "
            "wrap the code in tenants.context.use_tenant(tenant)."
        )

    db_for_read = _db_for
    db_for_write = _db_for

    def allow_relation(self, obj1, obj2, **hints):
        if obj1._state.db is None or obj2._state.db is None:
            return None
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if is_tenant_alias(db):
            return app_label in tenant_labels()
        if db == DEFAULT_DB_ALIAS:
            return app_label in shared_labels() or app_label not in tenant_labels()
        return None
