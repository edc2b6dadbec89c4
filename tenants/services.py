"""Writes on tenants: provisioning, migrating, suspending, dropping.

`provision_tenant` is the one way a tenant comes to life; the admin, the `create_tenant`
command, the platform API and the tests all call it. It is idempotent: run it again on a
`failed` (or half-done) tenant and it finishes the job.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import environ
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts import audit
from config.errors import ServiceUnavailable
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.db.connections import close_connection
from tenants.db.exceptions import TenantDatabaseError
from tenants.models import Domain, Tenant
from tenants.selectors import pending_migrations
from tenants.validators import normalize_host, validate_domain, validate_slug

logger = logging.getLogger("tenants.services")

_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()
MAX_DOMAINS = 100  # per request; a tenant is served on a few hosts
_CREDENTIALS = re.compile(r"://[^@/\s]+@")


class ProvisioningError(ServiceUnavailable):
    """Provisioning did not complete; the tenant is `failed` and may be retried. The API
    answers 503 with the message below; `reason` is the step's error, for staff."""

    default_detail = "Tenant provisioning failed; it can be retried"

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


class TenantExistsError(ValidationError):
    """The slug belongs to a tenant that is already active."""

    def __init__(self, slug: str):
        super().__init__({"slug": [f"Tenant '{slug}' already exists"]})


@dataclass(frozen=True)
class AdminSpec:
    username: str
    email: str
    password: str


def mask_url_credentials(text: str) -> str:
    """`text` with the user and password of every database URL in it replaced by `***`."""
    return _CREDENTIALS.sub("://***@", text)


@contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """Serialise work on `name` across threads and, on PostgreSQL, across processes
    (a session advisory lock on the main database)."""
    with _local_locks_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    with lock:
        if connection.vendor != "postgresql":
            yield
            return
        key = int.from_bytes(
            hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


# --- validation ---------------------------------------------------------------------------
def validate_tenant_input(
    *,
    slug: str,
    name: str,
    domains: Iterable[str] = (),
    database_url: str = "",
    admin: AdminSpec | None = None,
    existing: Tenant | None = None,
) -> list[str]:
    """Check everything before anything changes. Returns the normalised domains; raises
    ValidationError with a message per field."""
    errors: dict[str, list[str]] = {}
    try:
        validate_slug(slug)
    except ValidationError as exc:
        errors["slug"] = exc.messages
    if not (name or "").strip():
        errors["name"] = ["This field may not be blank."]
    elif len(name) > 200:
        errors["name"] = ["Ensure this field has no more than 200 characters."]

    domains = list(domains)
    if len(domains) > MAX_DOMAINS:
        # Refused before any host is looked at: each host costs queries below.
        errors["domains"] = [f"Ensure this field has no more than {MAX_DOMAINS} elements."]
        domains = []
    hosts = []
    for raw in domains:
        host = normalize_host(raw) if isinstance(raw, str) else raw
        try:
            validate_domain(host)
        except ValidationError as exc:
            errors.setdefault("domains", []).extend(exc.messages)
            continue
        if host not in hosts:
            hosts.append(host)
    for host in hosts:
        owner = other_tenant_of_host(host, slug)
        if owner is not None:
            errors.setdefault("domains", []).append(
                f"'{host}' is already used by another tenant ({owner})."
            )
    if existing is None and "slug" not in errors:
        errors.update(_slug_availability_errors(slug, database_url))

    if database_url:
        try:
            cfg = environ.Env.db_url_config(database_url)
            if cfg.get("ENGINE") != "django.db.backends.postgresql":
                raise ValueError
        except Exception:
            errors["database_url"] = ["Enter a postgres:// database URL."]
        else:
            if existing is not None and existing.database_url != database_url:
                errors["database_url"] = ["A tenant's database URL cannot change."]
            elif message := _foreign_database_error(slug, database_url, existing):
                errors["database_url"] = [message]
    if admin is not None:
        from accounts.services import validate_new_user

        try:
            validate_new_user(username=admin.username, email=admin.email, password=admin.password)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors[f"admin.{field}"] = messages
    if errors:
        raise ValidationError(errors)

    server = aliases.server_settings(database_url)
    try:
        servers.check_server(server)
    except TenantDatabaseError as exc:
        raise ValidationError({"database_url" if database_url else "database": [str(exc)]}) from exc
    return hosts


def _base_domain() -> str:
    return settings.TENANT_BASE_DOMAIN.lower().strip(".")


def other_tenant_of_host(host: str, slug: str) -> str | None:
    """The slug of another tenant that `host` already resolves to, explicitly (its Domain
    row, unless that tenant is dropped: a dropped tenant gives its domains up) or as its
    implicit `<slug>.<TENANT_BASE_DOMAIN>` (whatever its status); else None."""
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    if (
        domain is not None
        and domain.tenant.slug != slug
        and domain.tenant.status != Tenant.Status.DROPPED
    ):
        return domain.tenant.slug
    base = _base_domain()
    if base and host.endswith("." + base):
        implicit = host[: -len(base) - 1]
        if implicit != slug and Tenant.objects.filter(slug=implicit).exists():
            return implicit
    return None


def _slug_availability_errors(slug: str, database_url: str) -> dict[str, list[str]]:
    """Why a new tenant cannot take `slug`: a row of that slug in any status, a database or
    file of it that holds data, or its implicit host registered to another tenant."""
    existing = Tenant.objects.filter(slug=slug).first()
    if existing is not None:
        return {
            "slug": [f"Tenant '{slug}' exists and is {existing.status}; slugs are never reused."]
        }
    names = {aliases.database_name_for(slug, database_url), aliases.database_name_for(slug)}
    if Tenant.objects.filter(database_name__in=names).exists():
        return {"slug": [f"The database of '{slug}' belongs to another tenant."]}
    for database_url_of in dict.fromkeys([database_url, ""]):
        cfg = aliases.server_settings(database_url_of)
        cfg["NAME"] = aliases.database_name_for(slug, database_url_of)
        try:
            holds_data = servers.database_exists(cfg) and servers.database_has_data(cfg)
        except TenantDatabaseError:
            continue  # an unreachable server is reported by the server check below
        if holds_data:
            shown = cfg["NAME"] if aliases.is_postgresql(cfg) else Path(cfg["NAME"]).name
            return {
                "slug": [
                    f"Database {shown} exists and holds data; a slug is never reused. "
                    "Remove that database or choose another slug."
                ]
            }
    base = _base_domain()
    if base:
        taken = (
            Domain.objects.filter(domain=f"{slug}.{base}")
            .exclude(tenant__status=Tenant.Status.DROPPED)
            .values_list("tenant__slug", flat=True)
            .first()
        )
        if taken is not None:
            return {"slug": [f"'{slug}.{base}' is a domain of tenant '{taken}'."]}
    return {}


def _foreign_database_error(slug: str, database_url: str, existing: Tenant | None) -> str:
    """Why the database that `database_url` names cannot be this tenant's: the main
    database, the template, a server's own, another tenant's (stored or by name); else ''."""
    name = aliases.database_name_for(slug, database_url)
    server = aliases.server_settings(database_url)
    if name in servers.reserved_database_names(server):
        return f"Database {name} is reserved and cannot hold a tenant."
    others = Tenant.objects.filter(database_name=name)
    if existing is not None:
        others = others.exclude(pk=existing.pk)
    if others.exists():
        return f"Database {name} belongs to another tenant."
    prefix = settings.TENANT_DB_PREFIX
    if name.startswith(prefix) and name != aliases.database_name_for(slug):
        return f"Database names starting with {prefix} are reserved for the tenant of that slug."
    return ""


# --- provisioning -------------------------------------------------------------------------
def provision_tenant(
    *,
    slug: str,
    name: str,
    domains: Iterable[str] = (),
    database_url: str = "",
    admin: AdminSpec | None = None,
    refuse_active: bool = False,
) -> Tenant:
    """Create (or finish creating) a tenant: row and domains, database, migrations, first
    admin; then mark it active. Raises ValidationError on bad input (nothing changed) and
    ProvisioningError when a step fails (the tenant is left `failed` with the error).

    With `refuse_active`, a slug that is already active raises TenantExistsError and nothing
    changes; without it, an active tenant is returned as it is (idempotent). A new slug is
    refused while anything of an earlier tenant of that slug exists (row, database with
    data); a `failed` or `provisioning` one is finished."""
    existing = Tenant.objects.filter(slug=slug).first()
    if existing is not None and existing.status in (Tenant.Status.SUSPENDED, Tenant.Status.DROPPED):
        raise ValidationError({"slug": [f"Tenant '{slug}' exists and is {existing.status}."]})
    if refuse_active and existing is not None and existing.status == Tenant.Status.ACTIVE:
        raise TenantExistsError(slug)
    hosts = validate_tenant_input(
        slug=slug,
        name=name,
        domains=domains,
        database_url=database_url,
        admin=admin,
        existing=existing,
    )

    with _exclusive(f"tenant:{slug}"):
        current = Tenant.objects.filter(slug=slug).first()
        if refuse_active and current is not None and current.status == Tenant.Status.ACTIVE:
            raise TenantExistsError(slug)
        if current is not None and current.status in (
            Tenant.Status.SUSPENDED,
            Tenant.Status.DROPPED,
        ):
            raise ValidationError({"slug": [f"Tenant '{slug}' exists and is {current.status}."]})
        tenant = _save_tenant_row(slug=slug, name=name, hosts=hosts, database_url=database_url)
        if tenant.status == Tenant.Status.ACTIVE and admin is None:
            return tenant
        try:
            _build_database(tenant)
            if admin is not None:
                _ensure_admin(tenant, admin)
        except Exception as exc:
            tenant.status = Tenant.Status.FAILED
            tenant.last_error = mask_url_credentials(f"{type(exc).__name__}: {exc}")[:2000]
            tenant.save(update_fields=["status", "last_error", "updated_at"])
            logger.error("Provisioning of tenant %s failed: %s", slug, tenant.last_error)
            raise ProvisioningError(tenant.last_error) from exc
        finally:
            close_connection(tenant.alias)
        if tenant.status != Tenant.Status.ACTIVE:
            tenant.status = Tenant.Status.ACTIVE
            tenant.last_error = ""
            tenant.provisioned_at = timezone.now()
            tenant.save(update_fields=["status", "last_error", "provisioned_at", "updated_at"])
            logger.info("Tenant %s provisioned", slug)
            audit.record_event(audit.TENANT_CREATED, target=tenant)
    return tenant


def _save_tenant_row(*, slug: str, name: str, hosts: list[str], database_url: str) -> Tenant:
    with transaction.atomic(using="default"):
        tenant, created = Tenant.objects.select_for_update().get_or_create(
            slug=slug,
            defaults={
                "name": name.strip(),
                "database_url": database_url,
                "database_name": aliases.database_name_for(slug, database_url),
            },
        )
        if not created and tenant.name != name.strip():
            tenant.name = name.strip()
            tenant.save(update_fields=["name", "updated_at"])
        for index, host in enumerate(hosts):
            Domain.objects.update_or_create(
                domain=host, defaults={"tenant": tenant, "is_primary": index == 0}
            )
        if created and _base_domain():
            # The new tenant's implicit host, left registered to a dropped tenant, is freed.
            Domain.objects.filter(
                domain=f"{slug}.{_base_domain()}", tenant__status=Tenant.Status.DROPPED
            ).delete()
    return tenant


def ensure_template() -> dict:
    """Create and migrate the template database that new tenants are cloned from."""
    cfg = aliases.template_database_settings()
    alias = aliases.alias_for(aliases.TEMPLATE_SLUG)
    with _exclusive("tenant-template"):
        if not servers.database_exists(cfg):
            servers.create_database(cfg)
        aliases.register_alias(alias, cfg)
        try:
            migrate_database(alias)
        finally:
            # A template with an open session cannot be cloned.
            aliases.unregister_alias(alias)
    return cfg


def _build_database(tenant: Tenant) -> None:
    cfg = aliases.tenant_database_settings(tenant)
    if not servers.database_exists(cfg):
        template = None
        if not tenant.database_url or servers.same_server(cfg, aliases.server_settings()):
            template = ensure_template()
        servers.create_database(cfg, template=template)
    aliases.register_tenant_database(tenant)
    migrate_database(tenant.alias)


def migrate_database(alias: str) -> int:
    """Apply pending tenant-app migrations on `alias`; returns how many were pending."""
    pending = pending_migrations(alias)
    if pending:
        call_command("migrate", database=alias, interactive=False, verbosity=0, skip_checks=True)
    return len(pending)


def _ensure_admin(tenant: Tenant, admin: AdminSpec) -> None:
    from accounts.models import User
    from accounts.services import user_create

    with use_tenant(tenant):
        if not User.objects.filter(username=admin.username).exists():
            user_create(
                username=admin.username,
                email=admin.email,
                password=admin.password,
                role=User.Role.ADMIN,
            )


# --- lifecycle ----------------------------------------------------------------------------
def migrate_tenant(tenant: Tenant) -> int:
    """Bring one tenant's database up to date; returns the number of migrations applied."""
    aliases.register_tenant_database(tenant)
    try:
        return migrate_database(tenant.alias)
    finally:
        close_connection(tenant.alias)


def tenant_suspend(tenant: Tenant) -> Tenant:
    if tenant.status == Tenant.Status.DROPPED:
        raise ValidationError({"status": ["A dropped tenant cannot be suspended."]})
    tenant.status = Tenant.Status.SUSPENDED
    tenant.save(update_fields=["status", "updated_at"])
    logger.info("Tenant %s suspended", tenant.slug)
    audit.record_event(audit.TENANT_SUSPENDED, target=tenant)
    return tenant


def tenant_activate(tenant: Tenant) -> Tenant:
    if tenant.status != Tenant.Status.SUSPENDED:
        raise ValidationError(
            {"status": [f"Only a suspended tenant can be activated, not a {tenant.status} one."]}
        )
    tenant.status = Tenant.Status.ACTIVE
    tenant.save(update_fields=["status", "updated_at"])
    logger.info("Tenant %s activated", tenant.slug)
    audit.record_event(audit.TENANT_ACTIVATED, target=tenant)
    return tenant


def tenant_drop(tenant: Tenant) -> Tenant:
    """Drop a suspended tenant's database for good. The row stays, as `dropped`."""
    if tenant.status != Tenant.Status.SUSPENDED:
        raise ValidationError(
            {
                "status": [
                    f"Only a suspended tenant can be dropped; '{tenant.slug}' is {tenant.status}."
                ]
            }
        )
    cfg = aliases.tenant_database_settings(tenant)
    shared = (
        Tenant.objects.filter(database_name=tenant.database_name)
        .exclude(pk=tenant.pk)
        .exclude(status=Tenant.Status.DROPPED)
        .exists()
    )
    if shared or str(cfg["NAME"]) in servers.reserved_database_names(cfg):
        raise ValidationError(
            {
                "database": [
                    f"Database {tenant.database_name} is not owned by '{tenant.slug}' alone; "
                    "it is not dropped. Nothing was changed."
                ]
            }
        )
    aliases.unregister_alias(tenant.alias)
    servers.drop_database(cfg)
    tenant.status = Tenant.Status.DROPPED
    tenant.save(update_fields=["status", "updated_at"])
    logger.warning("Tenant %s dropped its database %s", tenant.slug, tenant.database_name)
    audit.record_event(audit.TENANT_DROPPED, target=tenant)
    return tenant


def tenant_update(
    *,
    tenant: Tenant,
    name: str | None = None,
    status: str | None = None,
    domains: list[str] | None = None,
) -> Tenant:
    """Rename, add domains, suspend or re-activate a tenant (never drops anything). A domain
    that a dropped tenant held moves to this tenant; one that resolves to any other tenant
    is refused."""
    if domains and tenant.status == Tenant.Status.DROPPED:
        raise ValidationError({"domains": ["A dropped tenant cannot take domains."]})
    hosts = validate_tenant_input(
        slug=tenant.slug, name=name or tenant.name, domains=domains or [], existing=tenant
    )
    with transaction.atomic(using="default"):
        if name is not None and name.strip() != tenant.name:
            tenant.name = name.strip()
            tenant.save(update_fields=["name", "updated_at"])
        for host in hosts:
            domain = Domain.objects.select_for_update().filter(domain=host).first()
            if domain is None:
                Domain.objects.create(domain=host, tenant=tenant)
            elif domain.tenant_id != tenant.pk:  # a dropped tenant's: validated above
                logger.info("Domain %s moves from dropped tenant to %s", host, tenant.slug)
                domain.tenant = tenant
                domain.is_primary = False
                domain.save(update_fields=["tenant", "is_primary"])
    if status == Tenant.Status.SUSPENDED and tenant.status != Tenant.Status.SUSPENDED:
        tenant_suspend(tenant)
    elif status == Tenant.Status.ACTIVE and tenant.status != Tenant.Status.ACTIVE:
        tenant_activate(tenant)
    return tenant
