"""`export_tenant`: one tenant's data as a portable archive, what a customer who leaves is
entitled to.

The archive is a zip: `README.md` (the format, every file and field, what is left out and
why), `manifest.json` (slug, time, schema, rows and sha256 of each file) and one JSON-lines
file per model under `data/`. The models are read from the app registry (every model of
`settings.TENANT_APPS`); each is either described in `EXPORTED_MODELS` or left out with its
reason in `EXCLUDED_MODELS`, and an export refuses to run while a model is in neither, so a
new model is never silently left out nor silently handed over with a secret in it.

Rows are read in primary-key order, `CHUNK_SIZE` at a time (keyset pages: a tenant alias
has no server-side cursor, since it may sit behind a transaction pooler), inside one
read-only snapshot of the tenant's database, and written straight into the zip: memory does
not grow with the tenant. The archive is written under a hidden `.partial` name beside the
output and linked to the output name only once complete, so the output path is either
absent or a whole archive; an existing path is never overwritten.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections, models, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from accounts import audit
from tenants import lifecycle
from tenants.db import aliases
from tenants.db.connections import close_connection
from tenants.models import Tenant, TenantArchive

FORMAT = "tenantkit-export"
FORMAT_VERSION = 1
CHUNK_SIZE = 2000
README_NAME = "README.md"
MANIFEST_NAME = "manifest.json"
DATA_DIR = "data"
EXPORTABLE_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)

# Every tenant model that is exported, by `_meta.label_lower`, with what its rows are.
EXPORTED_MODELS = {
    "accounts.user": "The tenant's user accounts.",
    "accounts.user_groups": "Which group each user belongs to.",
    "accounts.user_user_permissions": "Permissions given to a user directly.",
    "auth.group": "Groups of users.",
    "auth.group_permissions": "Which permissions each group has.",
    "accounts.apikey": "API keys for machine clients: name, prefix, scopes, dates.",
    "accounts.auditevent": "The tenant's audit trail: security events, who, when, from where.",
    "accounts.totpdevice": "Each user's authenticator enrolment (when it was confirmed).",
    "accounts.mfapolicy": "The tenant's two-factor policy.",
    "addressbook.contact": "The address book.",
}
# Every tenant model that is not exported, and why (the README says so).
EXCLUDED_MODELS = {
    "auth.permission": "Created by the product's migrations, the same in every tenant. Where "
    "a user or a group refers to a permission, it is written as [codename, app, model].",
    "contenttypes.contenttype": "Created by the product's migrations, the same in every tenant.",
    "accounts.recoverycode": "Secret: two-factor recovery codes (stored as keyed hashes).",
    "accounts.revokedtoken": "The token deny-list: identifiers of sign-in tokens revoked "
    "before their expiry, meaningful only to this service.",
    "token_blacklist.outstandingtoken": "Secret: the refresh tokens issued to users.",
    "token_blacklist.blacklistedtoken": "The token deny-list of revoked refresh tokens.",
}
# Fields of exported models that are left out, and why.
EXCLUDED_FIELDS = {
    "accounts.user": {"password": "Secret: the password hash."},
    "accounts.apikey": {"secret_digest": "Secret: the keyed digest of the API key's secret."},
    "accounts.totpdevice": {"secret": "Secret: the authenticator's shared TOTP key."},
}
# Secrets that no table holds, said so in the README all the same.
NOT_STORED = (
    "Password-reset and e-mail verification links are signed tokens that the service never "
    "stores; there is nothing to export and none is included."
)

_JSON_TYPES = {
    "AutoField": "integer",
    "BigAutoField": "integer",
    "SmallAutoField": "integer",
    "IntegerField": "integer",
    "BigIntegerField": "integer",
    "SmallIntegerField": "integer",
    "PositiveIntegerField": "integer",
    "PositiveBigIntegerField": "integer",
    "PositiveSmallIntegerField": "integer",
    "BooleanField": "boolean",
    "FloatField": "number",
    "DecimalField": "string (decimal number)",
    "CharField": "string",
    "TextField": "string",
    "EmailField": "string",
    "SlugField": "string",
    "URLField": "string",
    "GenericIPAddressField": "string (IP address)",
    "UUIDField": "string (UUID)",
    "DateTimeField": "string (ISO 8601 date-time, UTC)",
    "DateField": "string (ISO 8601 date)",
    "TimeField": "string (ISO 8601 time)",
    "DurationField": "number (seconds)",
    "JSONField": "any JSON value",
    "BinaryField": "string (base64)",
}


@dataclass(frozen=True)
class Column:
    """One field of a model as it appears in its JSON-lines file."""

    name: str
    attname: str
    type: str
    nullable: bool
    description: str
    convert: Callable | None = None  # value as read -> JSON value; None: as it is
    natural_key_of: type[models.Model] | None = None  # a foreign key written by natural key


@dataclass(frozen=True)
class ModelExport:
    """One exported model: its file in the archive and its columns."""

    label: str
    model: type[models.Model]
    columns: tuple[Column, ...]

    @property
    def path(self) -> str:
        return f"{DATA_DIR}/{self.label}.jsonl"


# --- what is exported ---------------------------------------------------------------------
def tenant_models() -> list[type[models.Model]]:
    """Every model of the apps in settings.TENANT_APPS, many-to-many tables included."""
    found: dict[str, type[models.Model]] = {}
    for config in apps.get_app_configs():
        if config.name in settings.TENANT_APPS:
            for model in config.get_models(include_auto_created=True):
                found[model._meta.label_lower] = model
    return [found[label] for label in sorted(found)]


def unclassified_models() -> list[str]:
    """Tenant models in neither EXPORTED_MODELS nor EXCLUDED_MODELS (an export refuses to
    run while there is one)."""
    return [
        model._meta.label_lower
        for model in tenant_models()
        if model._meta.label_lower not in EXPORTED_MODELS
        and model._meta.label_lower not in EXCLUDED_MODELS
    ]


def export_plan() -> list[ModelExport]:
    """The exported models with their columns, in the order of their files."""
    unclassified = unclassified_models()
    if unclassified:
        raise ImproperlyConfigured(
            f"Tenant models {', '.join(unclassified)} are neither exported nor excluded; "
            "list each in EXPORTED_MODELS or EXCLUDED_MODELS of tenants/lifecycle/export.py."
        )
    plan = []
    for model in tenant_models():
        label = model._meta.label_lower
        if label in EXCLUDED_MODELS:
            continue
        left_out = EXCLUDED_FIELDS.get(label, {})
        columns = tuple(
            _column(field) for field in model._meta.concrete_fields if field.name not in left_out
        )
        plan.append(ModelExport(label=label, model=model, columns=columns))
    return plan


def _column(field: models.Field) -> Column:
    description = str(field.help_text or field.verbose_name)
    if field.is_relation:
        target = field.related_model._meta.label_lower
        if target in EXCLUDED_MODELS and hasattr(field.related_model, "natural_key"):
            return Column(
                name=field.name,
                attname=field.attname,
                type="array of strings (natural key)",
                nullable=field.null,
                description=f"{description}: the {target} by its natural key",
                natural_key_of=field.related_model,
            )
        return Column(
            name=field.attname,
            attname=field.attname,
            type=_JSON_TYPES.get(field.target_field.get_internal_type(), "string"),
            nullable=field.null,
            description=f"{description}: `id` of a row of {DATA_DIR}/{target}.jsonl",
        )
    kind = field.get_internal_type()
    return Column(
        name=field.name,
        attname=field.attname,
        type=_JSON_TYPES.get(kind, "string"),
        nullable=field.null,
        description=description,
        convert=_CONVERTERS.get(kind, None if kind in _JSON_TYPES else json_value),
    )


class _NaturalKeys:
    """Id to natural key of a small table left out of the archive (permissions), read on
    first use from the database being exported."""

    def __init__(self, model: type[models.Model], alias: str):
        self.model = model
        self.alias = alias
        self.keys: dict | None = None

    def __call__(self, pk):
        if pk is None:
            return None
        if self.keys is None:
            rows = self.model._base_manager.using(self.alias).select_related()
            self.keys = {row.pk: list(row.natural_key()) for row in rows}
        return self.keys.get(pk)


def json_value(value):
    """`value` as read from the database, as JSON: date-times in UTC ISO 8601."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal | UUID):
        return str(value)
    return str(value)


def _datetime(value):
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _nullable(convert: Callable) -> Callable:
    return lambda value: None if value is None else convert(value)


# What turns a value of each kind of field into JSON; a kind not listed is JSON already
# (strings, numbers, booleans, JSONField's values), a kind unknown goes through json_value.
_CONVERTERS = {
    "DateTimeField": _datetime,
    "DateField": _nullable(date.isoformat),
    "TimeField": _nullable(time.isoformat),
    "DurationField": _nullable(timedelta.total_seconds),
    "DecimalField": _nullable(str),
    "UUIDField": _nullable(str),
    "BinaryField": _nullable(lambda value: base64.b64encode(bytes(value)).decode("ascii")),
}
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


# --- reading the tenant's database --------------------------------------------------------
@contextlib.contextmanager
def _snapshot(alias: str) -> Iterator[None]:
    """One consistent, read-only view of the database for the whole export, that blocks no
    writer: PostgreSQL's REPEATABLE READ; on SQLite a deferred read transaction (the alias
    takes the write lock at BEGIN otherwise), which WAL keeps open beside writers. Inside
    a transaction the caller already holds (a test's), reads simply join it."""
    connection = connections[alias]
    if connection.in_atomic_block:
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    connection.ensure_connection()
    connection.connection.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        connection.connection.execute("COMMIT")


def _rows(entry: ModelExport, alias: str) -> Iterator[list[dict]]:
    """The model's rows as JSON-ready dicts, a page of CHUNK_SIZE at a time, by primary key."""
    pk = entry.model._meta.pk.attname
    attnames = [column.attname for column in entry.columns]
    queryset = entry.model._base_manager.using(alias).order_by(pk)
    names = [column.name for column in entry.columns]
    converters = [
        _NaturalKeys(column.natural_key_of, alias) if column.natural_key_of else column.convert
        for column in entry.columns
    ]
    last = None
    while True:
        page = queryset if last is None else queryset.filter(**{f"{pk}__gt": last})
        values = list(page.values_list(pk, *attnames)[:CHUNK_SIZE])
        if not values:
            return
        last = values[-1][0]
        yield [
            {
                name: value if convert is None else convert(value)
                for name, convert, value in zip(names, converters, row[1:], strict=True)
            }
            for row in values
        ]
        if len(values) < CHUNK_SIZE:
            return


def _schema(alias: str) -> dict[str, str]:
    """The last migration applied per tenant app: what the archive's fields are as of."""
    latest: dict[str, str] = {}
    applied = MigrationRecorder.Migration.objects.using(alias).order_by("app", "name")
    for app, name in applied.values_list("app", "name"):
        latest[app] = name
    return latest


# --- writing the archive ------------------------------------------------------------------
def partial_path(output: Path) -> Path:
    """Where the archive of `output` is written before it is complete."""
    output = Path(output)
    return output.with_name(f".{output.name}.partial")


def _write_archive(tenant: Tenant, plan: list[ModelExport], target: BinaryIO) -> dict:
    """Write the whole archive into the file `target`, from its start; returns the
    manifest."""
    alias = aliases.register_tenant_database(tenant)
    exported_at = timezone.now()
    files = []
    try:
        with (
            zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            _snapshot(alias),
        ):
            readme = render_readme(tenant, plan).encode()
            archive.writestr(README_NAME, readme)
            files.append(
                {
                    "path": README_NAME,
                    "rows": None,
                    "bytes": len(readme),
                    "sha256": hashlib.sha256(readme).hexdigest(),
                }
            )
            for entry in plan:
                files.append(_write_model(archive, entry, alias))
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "slug": tenant.slug,
                "name": tenant.name,
                "tenant_status": tenant.status,
                "exported_at": json_value(exported_at),
                "schema": _schema(alias),
                "files": files,
            }
            archive.writestr(MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    finally:
        close_connection(alias)
    return manifest


def _write_model(archive: zipfile.ZipFile, entry: ModelExport, alias: str) -> dict:
    digest = hashlib.sha256()
    rows = size = 0
    with archive.open(entry.path, "w", force_zip64=True) as stream:
        for page in _rows(entry, alias):
            data = "".join(_ENCODER.encode(row) + "\n" for row in page).encode()
            stream.write(data)
            digest.update(data)
            rows += len(page)
            size += len(data)
    return {
        "path": entry.path,
        "model": entry.label,
        "rows": rows,
        "bytes": size,
        "sha256": digest.hexdigest(),
    }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def render_readme(tenant: Tenant, plan: list[ModelExport]) -> str:
    """The archive's README.md: how to read it, every file and field, what is left out."""
    lines = [
        f"# Data export of {tenant.name} ({tenant.slug})",
        "",
        f"Format `{FORMAT}` version {FORMAT_VERSION}. This archive holds the data of the "
        f"tenant `{tenant.slug}`, one file per kind of record, readable without this service.",
        "",
        "## Files",
        "",
        f"- `{README_NAME}`: this description.",
        f"- `{MANIFEST_NAME}`: the tenant's slug and name, when the export was taken "
        "(`exported_at`), the schema it follows (`schema`: the last migration applied per "
        "application), and per file its path, number of rows, size in bytes and SHA-256 "
        "(of the file as extracted). Check a file with `sha256sum`.",
        f"- `{DATA_DIR}/<app>.<model>.jsonl`: JSON Lines (https://jsonlines.org/), UTF-8, one "
        "JSON object per line, one line per record, in order of `id`. Every object has every "
        "field listed below; a missing value is `null`.",
        "",
        "All the records were read in one consistent snapshot of the tenant's database. "
        "Date-times are ISO 8601 in UTC (`2026-01-31T09:30:00.123456Z`). A field ending in "
        "`_id` holds the `id` of a record of another file, named in its description.",
        "",
        "## Records",
    ]
    for entry in plan:
        lines += [
            "",
            f"### `{entry.path}`",
            "",
            EXPORTED_MODELS[entry.label],
            "",
            "| field | type | may be null | description |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {c.description} |"
            for c in entry.columns
        ]
        left_out = EXCLUDED_FIELDS.get(entry.label, {})
        if left_out:
            lines.append("")
            lines += [f"Not exported: `{name}`. {why}" for name, why in left_out.items()]
    lines += [
        "",
        "## Not exported, and why",
        "",
        "Secrets are never exported: they would let whoever holds this archive sign in as "
        "the tenant's users or machine clients. Each user sets a new password and enrols "
        "their authenticator again wherever the data is imported.",
        "",
    ]
    for label, fields in EXCLUDED_FIELDS.items():
        lines += [f"- `{label}.{name}`: {why}" for name, why in fields.items()]
    lines += [f"- `{label}` (the whole table): {why}" for label, why in EXCLUDED_MODELS.items()]
    lines += [f"- {NOT_STORED}", ""]
    return "\n".join(lines)


# --- the service --------------------------------------------------------------------------
@contextlib.contextmanager
def _claim(partial: Path) -> Iterator[tuple[BinaryIO, bool]]:
    """The partial file of an export, opened (created, readable by its owner only, when
    missing) and locked for this run: `(file, whether it was there before)`. Another run
    to the same output holds the lock until it ends (or dies): ValidationError."""
    was_there = os.path.lexists(partial)
    try:
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ValidationError(
            {"output": [f"{partial} cannot be written: {exc.strerror}."]}
        ) from exc
    with os.fdopen(fd, "r+b") as stream:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ValidationError(
                {"output": [f"Another export to this path is under way ({partial.name})."]}
            ) from exc
        yield stream, was_there


def export_tenant(tenant: Tenant, *, output: Path, actor=None) -> TenantArchive:
    """Write the tenant's data as a portable archive at `output` and record it (a
    TenantArchive of kind export, the platform event TENANT_EXPORTED). An active or
    suspended tenant only. ValidationError, nothing written, when `output` exists or its
    directory does not. A run killed midway is finished by running it again."""
    output = Path(output).absolute()
    output = output.parent.resolve() / output.name
    tenant.refresh_from_db()
    if tenant.status not in EXPORTABLE_STATUSES:
        raise ValidationError(
            {
                "status": [
                    f"Only an active or suspended tenant can be exported; '{tenant.slug}' is "
                    f"{tenant.status}."
                ]
            }
        )
    plan = export_plan()
    if not output.parent.is_dir():
        raise ValidationError({"output": [f"Directory {output.parent} does not exist."]})
    partial = partial_path(output)
    with _claim(partial) as (stream, was_there):
        unfinished = (
            TenantArchive.objects.filter(
                tenant=tenant, kind=TenantArchive.Kind.EXPORT, path=str(output), deleted_at=None
            )
            .order_by("-id")
            .first()
        )
        if unfinished is not None and unfinished.sha256 and not was_there:
            unfinished = None  # a finished export of an earlier run
        if os.path.lexists(output):
            if unfinished is not None and was_there and os.path.samefile(partial, output):
                # Killed between publishing the archive and removing its partial name.
                with lifecycle.audited(audit.TENANT_EXPORTED, tenant, actor=actor) as details:
                    partial.unlink()
                    details.update(archive=unfinished.pk, size_bytes=unfinished.size_bytes)
                return unfinished
            if not was_there:
                partial.unlink()
            raise ValidationError(
                {"output": [f"{output} exists; nothing was written. Choose another path."]}
            )
        # An empty partial file is what a run killed before its first step leaves.
        if was_there and unfinished is None and partial.stat().st_size > 0:
            raise ValidationError(
                {"output": [f"{partial} exists and is no export in progress; remove it first."]}
            )
        with lifecycle.audited(audit.TENANT_EXPORTED, tenant, actor=actor) as details:
            archive, manifest = _export(tenant, plan, stream, output, unfinished, actor)
            details.update(
                archive=archive.pk,
                models=len(plan),
                rows=sum(f["rows"] or 0 for f in manifest["files"]),
                size_bytes=archive.size_bytes,
            )
    return archive


def _export(
    tenant: Tenant,
    plan: list[ModelExport],
    stream: BinaryIO,
    output: Path,
    unfinished: TenantArchive | None,
    actor,
) -> tuple[TenantArchive, dict]:
    partial = partial_path(output)
    lifecycle.step("export", "record", tenant.slug)
    # Recorded before the first byte is written: purge_tenant then finds even the file of
    # an export that was killed.
    archive = unfinished or TenantArchive.objects.create(
        tenant=tenant,
        kind=TenantArchive.Kind.EXPORT,
        path=str(output),
        created_by=getattr(actor, "username", "") or "",
    )
    published = False
    try:
        lifecycle.step("export", "write", tenant.slug)
        stream.seek(0)
        stream.truncate()
        manifest = _write_archive(tenant, plan, stream)
        stream.flush()
        os.fsync(stream.fileno())
        lifecycle.step("export", "seal", tenant.slug)
        archive.sha256 = file_sha256(partial)
        archive.size_bytes = partial.stat().st_size
        archive.save(update_fields=["sha256", "size_bytes"])
        lifecycle.step("export", "publish", tenant.slug)
        try:
            os.link(partial, output)  # never replaces an existing file, unlike rename
        except FileExistsError as exc:
            raise ValidationError(
                {"output": [f"{output} was created meanwhile; nothing was written."]}
            ) from exc
        published = True
        lifecycle.step("export", "finish", tenant.slug)
        partial.unlink()
    except BaseException:
        if not published:
            partial.unlink(missing_ok=True)
            archive.delete()
        raise
    return archive, manifest
