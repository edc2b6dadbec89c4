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
from tenants.models import DatabaseServer, Domain, Tenant, TenantMove, TenantRestore
from tenants.selectors import database_server_list, pending_migrations
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
    server: DatabaseServer | None = None,
) -> list[str]:
    """Check everything before anything changes. Returns the normalised domains; raises
    ValidationError with a message per field. `server` is where the tenant is placed (None:
    the default server, or its own `database_url`)."""
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
        try:
            errors.update(_slug_availability_errors(slug, database_url, server))
        except TenantDatabaseError as exc:  # the server's URL variable is unset or invalid
            errors["server"] = [f"Database server '{server}': {exc}."]

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

    try:
        if database_url:
            cfg = aliases.server_settings(database_url)
        else:
            cfg = aliases.settings_of_server(server, admin=True)
        servers.check_server(cfg)
    except TenantDatabaseError as exc:
        raise ValidationError({"database_url" if database_url else "database": [str(exc)]}) from exc
    return hosts


def _base_domain() -> str:
    return settings.TENANT_BASE_DOMAIN.lower().strip(".")


def other_tenant_of_host(host: str, slug: str) -> str | None:
    """The slug of another tenant that `host` already resolves to, explicitly (its Domain
    row, unless that tenant is dropped or purged: such a tenant gives its domains up) or as
    its implicit `<slug>.<TENANT_BASE_DOMAIN>` (whatever its status); else None."""
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    if (
        domain is not None
        and domain.tenant.slug != slug
        and domain.tenant.status not in Tenant.GONE_STATUSES
    ):
        return domain.tenant.slug
    base = _base_domain()
    if base and host.endswith("." + base):
        implicit = host[: -len(base) - 1]
        if implicit != slug and Tenant.objects.filter(slug=implicit).exists():
            return implicit
    return None


def _slug_availability_errors(
    slug: str, database_url: str, server: DatabaseServer | None = None
) -> dict[str, list[str]]:
    """Why a new tenant cannot take `slug`: a row of that slug in any status, a database or
    file of it that holds data (on its server or the default one), or its implicit host
    registered to another tenant."""
    existing = Tenant.objects.filter(slug=slug).first()
    if existing is not None:
        return {
            "slug": [f"Tenant '{slug}' exists and is {existing.status}; slugs are never reused."]
        }
    places = [(database_url, None if database_url else server), ("", None)]
    names = {aliases.database_name_for(slug, url, server=at) for url, at in places}
    if Tenant.objects.filter(database_name__in=names).exists():
        return {"slug": [f"The database of '{slug}' belongs to another tenant."]}
    for database_url_of, server_of in dict.fromkeys(places):
        if database_url_of:
            cfg = aliases.server_settings(database_url_of)
        else:
            cfg = aliases.settings_of_server(server_of, admin=True)
        cfg["NAME"] = aliases.database_name_for(slug, database_url_of, server=server_of)
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
            .exclude(tenant__status__in=Tenant.GONE_STATUSES)
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
    server: str = "",
    admin: AdminSpec | None = None,
    refuse_active: bool = False,
) -> Tenant:
    """Create (or finish creating) a tenant: row and domains, database, migrations, first
    admin; then mark it active. Raises ValidationError on bad input (nothing changed) and
    ProvisioningError when a step fails (the tenant is left `failed` with the error).

    With `refuse_active`, a slug that is already active raises TenantExistsError and nothing
    changes; without it, an active tenant is returned as it is (idempotent). A new slug is
    refused while anything of an earlier tenant of that slug exists (row, database with
    data); a `failed` or `provisioning` one is finished.

    The tenant is placed on the database server named `server`, else on the accepting
    server with the most room (`choose_server`); a tenant with its own `database_url` is on
    no registered server."""
    existing = Tenant.objects.filter(slug=slug).first()
    if existing is not None and existing.status in (Tenant.Status.SUSPENDED, *Tenant.GONE_STATUSES):
        raise ValidationError({"slug": [f"Tenant '{slug}' exists and is {existing.status}."]})
    if refuse_active and existing is not None and existing.status == Tenant.Status.ACTIVE:
        raise TenantExistsError(slug)
    if server and database_url:
        raise ValidationError(
            {"server": ["Name a database server or give a database URL, not both."]}
        )
    placed = None if database_url else choose_server(server, existing=existing)
    hosts = validate_tenant_input(
        slug=slug,
        name=name,
        domains=domains,
        database_url=database_url,
        admin=admin,
        existing=existing,
        server=placed,
    )

    with _exclusive(f"tenant:{slug}"):
        current = Tenant.objects.filter(slug=slug).first()
        if refuse_active and current is not None and current.status == Tenant.Status.ACTIVE:
            raise TenantExistsError(slug)
        if current is not None and current.status in (
            Tenant.Status.SUSPENDED,
            *Tenant.GONE_STATUSES,
        ):
            raise ValidationError({"slug": [f"Tenant '{slug}' exists and is {current.status}."]})
        if database_url:
            tenant = _save_tenant_row(
                slug=slug, name=name, hosts=hosts, database_url=database_url, server=None
            )
        else:
            # Chosen again under a lock, so that concurrent placements never overfill one.
            with _exclusive("tenant-placement"):
                placed = choose_server(server, existing=current)
                tenant = _save_tenant_row(
                    slug=slug, name=name, hosts=hosts, database_url="", server=placed
                )
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


def _save_tenant_row(
    *,
    slug: str,
    name: str,
    hosts: list[str],
    database_url: str,
    server: DatabaseServer | None,
) -> Tenant:
    with transaction.atomic(using="default"):
        tenant, created = Tenant.objects.select_for_update().get_or_create(
            slug=slug,
            defaults={
                "name": name.strip(),
                "database_url": database_url,
                "server": server,
                "database_name": aliases.database_name_for(slug, database_url, server=server),
            },
        )
        if not created and tenant.name != name.strip():
            tenant.name = name.strip()
            tenant.save(update_fields=["name", "updated_at"])
        if not created and tenant.server_id is None and server and not tenant.database_url:
            # A row saved before servers existed: on the default server (choose_server).
            tenant.server = server
            tenant.save(update_fields=["server", "updated_at"])
        for index, host in enumerate(hosts):
            Domain.objects.update_or_create(
                domain=host, defaults={"tenant": tenant, "is_primary": index == 0}
            )
        if created and _base_domain():
            # The new tenant's implicit host, left registered to a dropped tenant, is freed.
            Domain.objects.filter(
                domain=f"{slug}.{_base_domain()}", tenant__status__in=Tenant.GONE_STATUSES
            ).delete()
    return tenant


def ensure_template(server: DatabaseServer | None = None) -> dict:
    """Create and migrate the template database that new tenants of `server` (None: the
    default server) are cloned from, through the server's direct URL."""
    cfg = aliases.template_database_settings(server)
    name = server.name if server is not None else aliases.DEFAULT_SERVER
    alias = aliases.alias_for(aliases.TEMPLATE_SLUG, name)
    with _exclusive(f"tenant-template:{name}"):
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
    # Created (and cloned) through the server's direct URL; migrated through its alias.
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    if not servers.database_exists(cfg):
        template = None
        if not tenant.database_url:
            template = ensure_template(tenant.server)
        elif servers.same_server(cfg, aliases.settings_of_server(None, admin=True)):
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
    if tenant.status in Tenant.GONE_STATUSES:
        raise ValidationError({"status": [f"A {tenant.status} tenant cannot be suspended."]})
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
    unfinished = _unfinished_operation(tenant)
    if unfinished:
        raise ValidationError(
            {
                "status": [
                    f"Tenant '{tenant.slug}' has {unfinished} under way; finish or roll it back "
                    "first. Nothing was changed."
                ]
            }
        )
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    shared = (
        Tenant.objects.filter(database_name=tenant.database_name)
        .exclude(pk=tenant.pk)
        .exclude(status__in=Tenant.GONE_STATUSES)
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
    tenant.dropped_at = timezone.now()
    tenant.save(update_fields=["status", "dropped_at", "updated_at"])
    logger.warning("Tenant %s dropped its database %s", tenant.slug, tenant.database_name)
    audit.record_event(audit.TENANT_DROPPED, target=tenant)
    return tenant


def _unfinished_operation(tenant: Tenant) -> str:
    """What keeps a second database of `tenant` in play: a move not finished (its source or
    target) or a restore not switched; empty when there is none."""
    if TenantMove.objects.filter(tenant=tenant, state__in=TenantMove.OPEN_STATES).exists():
        return "a move"
    if TenantRestore.objects.filter(tenant=tenant, state=TenantRestore.State.RESTORING).exists():
        return "a restore"
    return ""


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
    if domains and tenant.status in Tenant.GONE_STATUSES:
        raise ValidationError({"domains": [f"A {tenant.status} tenant cannot take domains."]})
    hosts = validate_tenant_input(
        slug=tenant.slug,
        name=name or tenant.name,
        domains=domains or [],
        existing=tenant,
        server=tenant.server if tenant.server_id else None,
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


# --- database servers ---------------------------------------------------------------------
def ensure_default_server() -> DatabaseServer:
    """The default server's row (the one `TENANT_DATABASE_URL` names), created when missing:
    a set-up that never registered a server keeps working as it did."""
    server, _ = DatabaseServer.objects.get_or_create(
        name=aliases.DEFAULT_SERVER,
        defaults={"url_env": "TENANT_DATABASE_URL", "admin_url_env": "TENANT_DATABASE_ADMIN_URL"},
    )
    return server


def choose_server(name: str = "", *, existing: Tenant | None = None) -> DatabaseServer:
    """Where a tenant goes: the server it is on already (a retry), the accepting server
    `name`, else the accepting server with the most room (capacity minus tenants; no
    capacity is unbounded; among servers equally roomy, the one with the fewest tenants, so
    servers without a capacity fill evenly; then by name). ValidationError on `server` when
    none fits."""
    default = ensure_default_server()
    if existing is not None:
        # A row saved before servers existed lives on the default server.
        current = existing.server if existing.server_id is not None else default
        if name and current.name != name:
            raise ValidationError({"server": ["A tenant's database server cannot change."]})
        return current
    candidates = list(database_server_list())
    if name:
        server = next((s for s in candidates if s.name == name), None)
        if server is None:
            raise ValidationError({"server": [f"Unknown database server '{name}'."]})
        if server.status != DatabaseServer.Status.ACCEPTING:
            raise ValidationError(
                {
                    "server": [
                        f"Database server '{name}' is {server.status}; it takes no new tenant."
                    ]
                }
            )
        if server.room is not None and server.room <= 0:
            raise ValidationError(
                {
                    "server": [
                        f"Database server '{name}' is full ({server.tenant_count} of "
                        f"{server.capacity} tenants)."
                    ]
                }
            )
        return server
    open_servers = [
        s
        for s in candidates
        if s.status == DatabaseServer.Status.ACCEPTING and (s.room is None or s.room > 0)
    ]
    if not open_servers:
        raise ValidationError(
            {"server": ["No database server accepts new tenants (draining, offline or full)."]}
        )
    return min(
        open_servers, key=lambda s: (s.room is not None, -(s.room or 0), s.tenant_count, s.name)
    )


def validate_server_input(
    *,
    name: str,
    url_env: str,
    admin_url_env: str = "",
    status: str = DatabaseServer.Status.ACCEPTING,
    capacity: int | None = None,
) -> DatabaseServer:
    """An unsaved server row, once its fields are valid, its variables hold valid URLs and
    the server answers on each; ValidationError per field otherwise."""
    server = DatabaseServer(
        name=name, url_env=url_env, admin_url_env=admin_url_env, status=status, capacity=capacity
    )
    try:
        server.full_clean(exclude=["created_at"])
    except ValidationError as exc:
        raise ValidationError(exc.message_dict) from exc
    if capacity is not None and capacity < 1:
        raise ValidationError({"capacity": ["Ensure this value is at least 1."]})
    errors: dict[str, list[str]] = {}
    for field, admin in (("url_env", False), ("admin_url_env", True)):
        variable = getattr(server, field)
        if not variable:
            continue
        if not aliases.read_url_env(variable):
            errors[field] = [f"Environment variable {variable} is not set."]
            continue
        try:
            cfg = aliases.settings_of_server(server, admin=admin)
            servers.check_server(cfg)
        except aliases.ServerUrlError as exc:
            errors[field] = [f"Environment variable {variable} holds no valid URL: {exc}."]
        except TenantDatabaseError as exc:
            errors[field] = [f"The server of {variable} cannot be reached: {exc}"]
    if errors:
        raise ValidationError(errors)
    return server


def database_server_add(
    *,
    name: str,
    url_env: str,
    admin_url_env: str = "",
    status: str = DatabaseServer.Status.ACCEPTING,
    capacity: int | None = None,
) -> DatabaseServer:
    """Register a tenant database server; nothing is written unless it is valid and
    answers (`validate_server_input`)."""
    ensure_default_server()
    server = validate_server_input(
        name=name, url_env=url_env, admin_url_env=admin_url_env, status=status, capacity=capacity
    )
    server.save()
    logger.info("Database server %s registered (URL from %s)", server.name, server.url_env)
    return server


def database_server_set_status(server: DatabaseServer, status: str) -> DatabaseServer:
    """Accepting, draining (keeps serving its tenants, takes no new one) or offline."""
    if status not in DatabaseServer.Status.values:
        raise ValidationError({"status": [f"'{status}' is not a server status."]})
    server.status = status
    server.save(update_fields=["status"])
    logger.info("Database server %s is %s", server.name, status)
    return server
