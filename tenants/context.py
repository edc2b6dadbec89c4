"""The current tenant, held in a ContextVar so it follows threads and tasks correctly.

Never a thread-local: `sync_to_async` copies the context into its worker thread, and
Channels consumers set it around each handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenants.models import Tenant

_current_tenant: ContextVar[Tenant | None] = ContextVar("current_tenant", default=None)


class NoTenantError(RuntimeError):
    """A tenant-only model was used while no tenant is active."""


def get_current_tenant() -> Tenant | None:
    """Return the active tenant, or None outside any tenant context."""
    return _current_tenant.get()


def slug_of(tenant: Tenant | None, default: str | None = None) -> str | None:
    """`tenant`'s slug, or `default` for no tenant (the platform)."""
    return tenant.slug if tenant is not None else default


def current_tenant_slug(default: str | None = None) -> str | None:
    """The active tenant's slug, or `default` outside any tenant context."""
    return slug_of(_current_tenant.get(), default)


@contextmanager
def use_tenant(tenant: Tenant | None) -> Iterator[Tenant | None]:
    """Activate `tenant` (None: no tenant) for the enclosed block; always restored."""
    if tenant is not None:
        from tenants.db.aliases import register_tenant_database
        from tenants.db.connections import note_tenant_activated

        note_tenant_activated(register_tenant_database(tenant))
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)
