"""`purge_tenant`: the last step of offboarding (suspend, export, drop, purge). Once a
dropped tenant's retention period has passed, remove what is left of it: the backups and
exports the product wrote, a database of it still present, its domains and its database
URL. The row stays, `purged`, as a tombstone: the slug is never reused.

Each step is safe to repeat, so a purge killed at any point is finished by running it
again; the status changes last.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import audit
from tenants import lifecycle
from tenants.db import aliases, servers
from tenants.db.exceptions import TenantDatabaseError
from tenants.lifecycle.export import file_sha256, partial_path
from tenants.models import Tenant
from tenants.services import mask_url_credentials

logger = logging.getLogger(__name__)


def purge_possible_from(tenant: Tenant) -> datetime:
    """When the retention period of a dropped tenant ends (TENANT_PURGE_RETENTION_DAYS
    after `dropped_at`; a row dropped before that field existed counts from its last
    change)."""
    dropped_at = tenant.dropped_at or tenant.updated_at
    return dropped_at + timedelta(days=settings.TENANT_PURGE_RETENTION_DAYS)


def check_purgeable(tenant: Tenant, *, now: datetime | None = None) -> None:
    """ValidationError unless `tenant` is dropped and its retention period has passed."""
    if tenant.status != Tenant.Status.DROPPED:
        raise ValidationError(
            {
                "status": [
                    f"Only a dropped tenant can be purged; '{tenant.slug}' is {tenant.status}. "
                    "Nothing was changed."
                ]
            }
        )
    possible_from = purge_possible_from(tenant)
    if (now or timezone.now()) < possible_from:
        raise ValidationError(
            {
                "status": [
                    f"Tenant '{tenant.slug}' can be purged from "
                    f"{possible_from.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
                    f"{settings.TENANT_PURGE_RETENTION_DAYS} days after it was dropped "
                    "(TENANT_PURGE_RETENTION_DAYS). Nothing was changed."
                ]
            }
        )


def leftover_database(tenant: Tenant) -> dict | None:
    """The settings of the tenant's database when it still exists (None when it is gone).
    ValidationError when it cannot be told, or when the database is not the tenant's alone
    to drop: the main database, a template, a server's own, another tenant's."""
    try:
        cfg = aliases.tenant_database_settings(tenant, admin=True)
        if tenant.database_url:
            server = aliases.server_settings(tenant.database_url)
        else:
            server = aliases.settings_of_server(tenant.server, admin=True)
        # An SQLite directory that is gone looks like a file that is gone: asked first.
        if not servers.server_answers(server):
            raise TenantDatabaseError("its database server does not answer.")
        present = servers.database_exists(cfg)
    except TenantDatabaseError as exc:
        raise ValidationError(
            {
                "database": [
                    f"Whether the database of '{tenant.slug}' is gone cannot be told: "
                    f"{mask_url_credentials(str(exc))} Nothing was changed."
                ]
            }
        ) from exc
    if not present:
        return None
    name = str(cfg["NAME"])
    shown = name if aliases.is_postgresql(cfg) else Path(name).name
    refusal = ValidationError(
        {
            "database": [
                f"Database {shown} is not owned by '{tenant.slug}' alone; it is not dropped. "
                "Nothing was changed."
            ]
        }
    )
    if name in servers.reserved_database_names(cfg):
        raise refusal
    others = (
        Tenant.objects.filter(database_name=name)
        .exclude(pk=tenant.pk)
        .exclude(status__in=Tenant.GONE_STATUSES)
    )
    for other in others:
        try:
            theirs = aliases.tenant_database_settings(other, admin=True)
        except TenantDatabaseError:
            raise refusal from None  # its server is unknown: it may be this very database
        if servers.same_server(cfg, theirs) and str(theirs["NAME"]) == name:
            raise refusal
    return cfg


def purge_tenant(tenant: Tenant, *, actor=None, now: datetime | None = None) -> Tenant:
    """Remove what a dropped tenant left once its retention period has passed: every
    archive file the product wrote (its TenantArchive rows stay, with `deleted_at`), a
    database of it still present, its domains, its database URL. The row becomes `purged`.
    ValidationError, nothing changed, when it is not dropped, the period has not passed or
    the database is not the tenant's alone. Records TENANT_PURGED."""
    now = now or timezone.now()
    tenant.refresh_from_db()
    check_purgeable(tenant, now=now)
    database = leftover_database(tenant)

    with lifecycle.audited(audit.TENANT_PURGED, tenant, actor=actor) as details:
        lifecycle.step("purge", "archives", tenant.slug)
        deleted, kept = _delete_archives(tenant, now)
        details.update(archives_deleted=deleted, archives_kept=kept)

        lifecycle.step("purge", "database", tenant.slug)
        if database is not None:
            aliases.unregister_alias(tenant.alias)
            servers.drop_database(database)
            logger.warning("Tenant %s: leftover database %s dropped", tenant.slug, database["NAME"])
        details["database_dropped"] = database is not None

        lifecycle.step("purge", "domains", tenant.slug)
        details["domains"] = tenant.domains.all().delete()[0]

        lifecycle.step("purge", "tombstone", tenant.slug)
        tenant.status = Tenant.Status.PURGED
        tenant.database_url = ""  # it may hold a password
        tenant.save(update_fields=["status", "database_url", "updated_at"])
    logger.warning("Tenant %s purged; its row stays as a tombstone", tenant.slug)
    return tenant


def _delete_archives(tenant: Tenant, now: datetime) -> tuple[int, int]:
    """Unlink every archive file of the tenant that is still there and is what the product
    wrote (same SHA-256), and its partial file; mark each row deleted. A file at an
    archive's path with other content is someone else's: kept (and counted). Returns
    (deleted, kept)."""
    deleted = kept = 0
    for archive in tenant.archives.filter(deleted_at=None):
        path = Path(archive.path)
        partial_path(path).unlink(missing_ok=True)
        if os.path.lexists(path):
            if archive.sha256 and path.is_file() and file_sha256(path) == archive.sha256:
                path.unlink()
                deleted += 1
            else:
                logger.warning(
                    "Tenant %s: %s is not the %s the product wrote; kept",
                    tenant.slug,
                    path,
                    archive.kind,
                )
                kept += 1
        archive.deleted_at = now
        archive.save(update_fields=["deleted_at"])
    return deleted, kept
