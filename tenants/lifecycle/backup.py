"""One tenant's backup in one file, and its restore: into the same tenant or as a new one.

A backup is a tar of two members: `manifest.json` (what the backup is of: slug, engine,
the migrations applied, the rows of every table, when, the data member's size and
sha256) and the data, `database.dump` (PostgreSQL's custom format, `pg_dump -Fc` of the
server's major version, run in a snapshot the row counts were read in) or
`database.sqlite3` (a copy through SQLite's online backup API). Both are consistent.

A restore checks the whole file before anything changes (a plain tar of exactly those two
members, sizes within the file, the checksum, the slug, the engine, no migration this code
does not know, and the manifest's signature: an HMAC under SECRET_KEY, or one of
SECRET_KEY_FALLBACKS, that only a backup_tenant of this deployment writes; a dump is SQL
that pg_restore runs as the server's admin user, so a file from anywhere else, however
well formed, is never loaded), restores into a new database on the tenant's server, checks its rows
against the manifest, migrates it forward, and only then switches the tenant to it. Into
an existing tenant, the previous database is first made read-only (its sessions ended), so
that nothing can be written there once the restored one is served; it is kept aside until
`restore_finish` drops it. Each restore is a `TenantRestore` row: a restore interrupted at
any step is served from exactly one database, and running it again finishes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts import audit
from tenants import lifecycle, services
from tenants.db import aliases, servers
from tenants.db.connections import close_connection
from tenants.db.servers.base import quote_name
from tenants.models import Tenant, TenantArchive, TenantRestore
from tenants.resolution import resolver
from tenants.selectors import applied_migrations, pending_migrations

ARCHIVE_FORMAT = "tenantkit-tenant-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20
SIGNATURE = "signature"
_SIGNATURE_SALT = "tenants.lifecycle.backup.manifest"
_CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_]")


# --- the data of one engine ----------------------------------------------------------------
class PostgresqlData:
    """`pg_dump -Fc` / `pg_restore` of the server's major version, through the server's
    direct URL; the password goes through the environment, never the command line."""

    engine = "postgresql"
    member = "database.dump"

    def dump(self, cfg: dict[str, Any], target: Path) -> dict[str, int]:
        """Write the database of `cfg` to `target`; returns its rows per table, counted in
        the snapshot the dump is taken in."""
        cfg = aliases.direct_server_settings(cfg)
        params = {**_psycopg_params(cfg, cfg["NAME"]), "autocommit": False}
        with psycopg.connect(**params) as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            counts = _pg_row_counts(conn)
            major = conn.info.server_version // 10000
            program = _pg_program("pg_dump", major)
            options = ["--format=custom", "--compress=1", "--no-owner", "--no-privileges"]
            options += [f"--snapshot={snapshot}", f"--file={target}"]
            _run([program, *options, *_pg_target(cfg)], cfg)
            conn.rollback()
        return counts

    def load(self, cfg: dict[str, Any], source: Path) -> None:
        """Create the database of `cfg` (empty) and restore `source` into it."""
        cfg = aliases.direct_server_settings(cfg)
        servers.create_database(cfg)
        with psycopg.connect(**_psycopg_params(cfg, "postgres")) as conn:
            major = conn.info.server_version // 10000
        program = _pg_program("pg_restore", major)
        options = ["--no-owner", "--no-privileges", "--exit-on-error", "--jobs=2"]
        _run([program, *options, *_pg_target(cfg), str(source)], cfg)

    def row_counts(self, cfg: dict[str, Any]) -> dict[str, int]:
        cfg = aliases.direct_server_settings(cfg)
        with psycopg.connect(**_psycopg_params(cfg, cfg["NAME"])) as conn:
            return _pg_row_counts(conn)

    def aside(self, name: str) -> str:
        """Where the database `name` is once fenced: the same database."""
        return name

    def fence(self, cfg: dict[str, Any]) -> None:
        """No session can write to the database of `cfg` any more: new sessions start
        read-only, and the open ones are ended."""
        self._set_read_only(cfg, "on")

    def unfence(self, cfg: dict[str, Any]) -> None:
        self._set_read_only(cfg, None)

    def _set_read_only(self, cfg: dict[str, Any], value: str | None) -> None:
        cfg = aliases.direct_server_settings(cfg)
        name = quote_name(cfg["NAME"])
        with psycopg.connect(**_psycopg_params(cfg, "postgres")) as conn:
            if value is None:
                conn.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
                return
            conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = {value}")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [cfg["NAME"]],
            )


class SqliteData:
    """A copy of the tenant's file through SQLite's online backup API (which copies what
    the WAL holds too, consistently)."""

    engine = "sqlite"
    member = "database.sqlite3"

    def dump(self, cfg: dict[str, Any], target: Path) -> dict[str, int]:
        source_uri = f"{Path(cfg['NAME']).resolve().as_uri()}?mode=ro"
        with (
            contextlib.closing(sqlite3.connect(source_uri, uri=True)) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
            return _sqlite_row_counts(copy)

    def load(self, cfg: dict[str, Any], source: Path) -> None:
        target = Path(cfg["NAME"])
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            contextlib.closing(
                sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
            ) as data,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            try:
                data.backup(copy)
            except sqlite3.DatabaseError as exc:
                raise ValidationError(
                    f"The backup's data is not an SQLite database: {exc}."
                ) from exc

    def row_counts(self, cfg: dict[str, Any]) -> dict[str, int]:
        uri = f"{Path(cfg['NAME']).resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            return _sqlite_row_counts(conn)

    def aside(self, name: str) -> str:
        """Where the file `name` is once fenced: beside it, under another name."""
        return f"{name}.aside"

    def fence(self, cfg: dict[str, Any]) -> None:
        """The file leaves its path, its WAL checkpointed into it first, and becomes
        read-only: a process that still has the tenant's previous placement cannot open it
        (the tenant backend never creates a file), and a file mode keeps it from writes."""
        path, aside = Path(cfg["NAME"]), Path(self.aside(cfg["NAME"]))
        if path.exists():
            # The WAL goes with it (SQLite finds it by the file's name), after the file.
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").rename(f"{aside}{suffix}")
        if aside.exists():
            aside.chmod(stat.S_IMODE(aside.stat().st_mode) & ~0o222)

    def unfence(self, cfg: dict[str, Any]) -> None:
        path, aside = Path(cfg["NAME"]), Path(self.aside(cfg["NAME"]))
        if aside.exists() and not path.exists():
            aside.chmod(stat.S_IMODE(aside.stat().st_mode) | stat.S_IWUSR)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{aside}{suffix}").rename(f"{path}{suffix}")
            aside.rename(path)


def data_for(cfg: dict[str, Any]) -> PostgresqlData | SqliteData:
    return PostgresqlData() if aliases.is_postgresql(cfg) else SqliteData()


def _psycopg_params(cfg: dict[str, Any], dbname: str) -> dict[str, Any]:
    return {
        "dbname": dbname,
        "user": cfg.get("USER") or None,
        "password": cfg.get("PASSWORD") or None,
        "host": cfg.get("HOST") or None,
        "port": cfg.get("PORT") or None,
        "connect_timeout": 10,
        "autocommit": True,
    }


def _pg_target(cfg: dict[str, Any]) -> list[str]:
    args = [f"--dbname={cfg['NAME']}"]
    if cfg.get("HOST"):
        args.append(f"--host={cfg['HOST']}")
    if cfg.get("PORT"):
        args.append(f"--port={cfg['PORT']}")
    if cfg.get("USER"):
        args.append(f"--username={cfg['USER']}")
    return [*args, "--no-password"]


def _run(argv: list[str], cfg: dict[str, Any]) -> None:
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    env.pop("PGPASSWORD", None)
    if cfg.get("PASSWORD"):
        env["PGPASSWORD"] = str(cfg["PASSWORD"])
    # argv: a PostgreSQL program found by `_pg_program`, names and paths this code chose.
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode:
        message = services.mask_url_credentials(result.stderr.strip()[-1000:])
        raise RuntimeError(f"{Path(argv[0]).name} failed: {message}")


@cache
def _pg_program(name: str, major: int) -> str:
    """`name` (pg_dump, pg_restore) of PostgreSQL `major`: Debian's versioned directory,
    else the one on PATH when it is of that major version."""
    candidate = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        out = subprocess.run(  # noqa: S603 (the program PATH names)
            [found, "--version"], capture_output=True, text=True, check=False
        )
        match = re.search(r"(\d+)", out.stdout)
        if match and int(match.group(1)) == major:
            return found
    raise ValidationError(f"{name} of PostgreSQL {major} is not installed on this machine.")


def _pg_row_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    ).fetchall()
    return {
        table: conn.execute(f"SELECT count(*) FROM public.{quote_name(table)}").fetchone()[0]
        for (table,) in tables
    }


def _sqlite_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return {
        table: conn.execute(f"SELECT count(*) FROM {quote_name(table)}").fetchone()[0]
        for (table,) in tables
    }


# --- the archive ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Archive:
    """A backup file that passed every check, its data extracted to `data`."""

    path: Path
    manifest: dict[str, Any]
    data: Path

    @property
    def slug(self) -> str:
        return self.manifest["slug"]

    @property
    def sha256(self) -> str:
        return self.manifest["data"]["sha256"]


@cache
def known_migrations() -> frozenset[tuple[str, str]]:
    """Every migration of this code, whatever its app (a tenant database records them all)."""
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)


def _applied_migrations(alias: str) -> list[list[str]]:
    return sorted([app, name] for app, name in applied_migrations(alias))


def _product_version() -> str:
    try:
        return version("tenantkit")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


def default_output(slug: str) -> Path:
    return lifecycle.archive_path(slug, "backup", ".tar")


def backup_tenant(tenant: Tenant, *, output: Path | None = None, actor=None) -> TenantArchive:
    """Write a consistent backup of `tenant` to `output` (default: a new file under
    TENANT_ARCHIVE_DIR) and record it. ValidationError, nothing written, when the tenant has
    no database to back up or `output` exists."""
    if tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        raise ValidationError(
            f"Tenant '{tenant.slug}' is {tenant.status}; only an active or suspended "
            "tenant's database can be backed up."
        )
    output = Path(output) if output is not None else default_output(tenant.slug)
    output = output.absolute()
    if output.exists() or output.is_symlink():
        raise ValidationError(f"{output} exists; a backup never overwrites a file.")
    if not output.parent.is_dir():
        if output.parent == Path(settings.TENANT_ARCHIVE_DIR).absolute():
            output.parent.mkdir(parents=True, exist_ok=True)
        else:
            raise ValidationError(f"Directory {output.parent} does not exist.")
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    data = data_for(cfg)
    with lifecycle.audited(audit.TENANT_BACKED_UP, tenant, actor=actor) as details:
        lifecycle.step("backup", "dump", tenant.slug)
        with tempfile.TemporaryDirectory(dir=output.parent, prefix=".backup-") as scratch:
            dumped = Path(scratch) / data.member
            tables = data.dump(cfg, dumped)
            alias = aliases.register_tenant_database(tenant)
            try:
                migrations = _applied_migrations(alias)
            finally:
                close_connection(alias)
            lifecycle.step("backup", "archive", tenant.slug)
            manifest = {
                "format": ARCHIVE_FORMAT,
                "format_version": FORMAT_VERSION,
                "slug": tenant.slug,
                "name": tenant.name,
                "engine": data.engine,
                "migrations": migrations,
                "tables": tables,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "product_version": _product_version(),
                "data": {
                    "member": data.member,
                    "size": dumped.stat().st_size,
                    "sha256": _sha256_of(dumped),
                },
            }
            manifest[SIGNATURE] = manifest_signature(manifest, settings.SECRET_KEY)
            partial = Path(scratch) / "backup.tar"
            _write_tar(partial, manifest, dumped)
            size, digest = partial.stat().st_size, _sha256_of(partial)
            lifecycle.step("backup", "record", tenant.slug)
            with transaction.atomic(using="default"):
                archive = TenantArchive.objects.create(
                    tenant=tenant,
                    kind=TenantArchive.Kind.BACKUP,
                    path=str(output),
                    sha256=digest,
                    size_bytes=size,
                    created_by=getattr(actor, "username", "") or "",
                )
                try:
                    os.link(partial, output)  # never replaces a file that appeared meanwhile
                except FileExistsError as exc:
                    raise ValidationError(
                        f"{output} exists; a backup never overwrites a file."
                    ) from exc
        details.update(file=output.name[:40], size_bytes=size, sha256_prefix=digest[:16])
    return archive


def _write_tar(path: Path, manifest: dict[str, Any], data: Path) -> None:
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    now = int(datetime.now(UTC).timestamp())
    # Readable by its owner only, as an export is: it holds password hashes and TOTP keys.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime, info.mode = len(body), now, 0o600
        tar.addfile(info, fileobj=_BytesReader(body))
        info = tarfile.TarInfo(manifest["data"]["member"])
        info.size, info.mtime, info.mode = data.stat().st_size, now, 0o600
        with data.open("rb") as handle:
            tar.addfile(info, fileobj=handle)
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def manifest_signature(manifest: dict[str, Any], key: str) -> str:
    """The HMAC-SHA256 under `key` of the manifest without its signature (canonical JSON);
    the manifest holds the data's SHA-256, so it stands for the whole backup."""
    unsigned = {k: v for k, v in manifest.items() if k != SIGNATURE}
    body = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return salted_hmac(_SIGNATURE_SALT, body, secret=key, algorithm="sha256").hexdigest()


def _check_signature(manifest: dict[str, Any], path: Path) -> None:
    """ValidationError unless a backup_tenant of this deployment (SECRET_KEY, or a key of
    SECRET_KEY_FALLBACKS) signed the manifest."""
    found = manifest.get(SIGNATURE)
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not isinstance(found, str) or not any(
        constant_time_compare(found, manifest_signature(manifest, key)) for key in keys
    ):
        raise ValidationError(
            f"{path} is not signed by this deployment (its manifest's signature does not "
            "match SECRET_KEY or SECRET_KEY_FALLBACKS); only a backup this deployment wrote "
            "is restored."
        )


class _BytesReader:
    def __init__(self, body: bytes):
        self._body, self._at = body, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._body) if size < 0 else self._at + size
        chunk, self._at = self._body[self._at : end], min(end, len(self._body))
        return chunk


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def open_archive(path: Path, *, slug: str, engine: str) -> Iterator[Archive]:
    """The backup at `path`, checked, its data extracted to a scratch file for as long as
    the block runs. ValidationError, before anything changes, when it is not a tenant backup
    (not a tar, other members, sizes beyond the file, a checksum that does not match), is of
    another slug than `slug` or another engine than `engine`, or holds a migration this code
    does not know (a newer schema)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"No backup file at {path}.")
    file_size = path.stat().st_size
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 (closed by the `with` below)
    except (tarfile.TarError, OSError) as exc:
        raise ValidationError(f"{path} is not a tenant backup (not a tar archive).") from exc
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError) as exc:
            raise ValidationError(
                f"{path} is not a tenant backup (a damaged tar archive)."
            ) from exc
        manifest = _read_manifest(tar, members, path, file_size)
        _check_manifest(
            manifest, path, slug=slug, engine=engine, member_names={m.name for m in members}
        )
        _check_signature(manifest, path)
        data_member = next(m for m in members if m.name == manifest["data"]["member"])
        if data_member.size != manifest["data"]["size"]:
            raise ValidationError(f"{path}: the data's size differs from its manifest's.")
        with tempfile.TemporaryDirectory(prefix="tenant-restore-") as scratch:
            data = Path(scratch) / data_member.name
            digest = hashlib.sha256()
            source = tar.extractfile(data_member)
            with data.open("wb") as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != manifest["data"]["sha256"]:
                raise ValidationError(
                    f"{path}: checksum mismatch; the backup's data is damaged or was changed."
                )
            yield Archive(path=path.absolute(), manifest=manifest, data=data)


def _read_manifest(tar, members, path: Path, file_size: int) -> dict[str, Any]:
    names = [m.name for m in members]
    data_members = {PostgresqlData.member, SqliteData.member}
    if (
        len(members) != 2
        or len(set(names)) != 2
        or MANIFEST not in names
        or not (set(names) - {MANIFEST}) <= data_members
    ):
        raise ValidationError(
            f"{path} is not a tenant backup (expected {MANIFEST} and one data file, "
            f"found {', '.join(sorted(names))[:200] or 'nothing'})."
        )
    for member in members:
        if not member.isreg():
            raise ValidationError(f"{path}: {member.name} is not a regular file.")
        if member.offset_data + member.size > file_size:
            raise ValidationError(f"{path}: {member.name} is larger than the file holds.")
    manifest_member = next(m for m in members if m.name == MANIFEST)
    if manifest_member.size > MAX_MANIFEST_BYTES:
        raise ValidationError(f"{path}: the manifest is too large.")
    try:
        manifest = json.loads(tar.extractfile(manifest_member).read())
    except (ValueError, RecursionError, tarfile.TarError, OSError) as exc:
        raise ValidationError(f"{path} is not a tenant backup (its manifest is not JSON).") from exc
    return manifest


def _check_manifest(
    manifest: Any, path: Path, *, slug: str, engine: str, member_names: set[str]
) -> None:
    unreadable = ValidationError(
        f"{path} is not a tenant backup (not a manifest this code can read)."
    )
    try:
        data = manifest["data"]
        migrations = {tuple(item) for item in manifest["migrations"]}
        readable = (
            manifest["format"] == ARCHIVE_FORMAT
            and isinstance(manifest["slug"], str)
            and isinstance(manifest["engine"], str)
            and all(
                isinstance(k, str) and isinstance(v, int) for k, v in manifest["tables"].items()
            )
            and data["member"] in (PostgresqlData.member, SqliteData.member)
            and isinstance(data["size"], int)
            and isinstance(data["sha256"], str)
            and re.fullmatch(r"[0-9a-f]{64}", data["sha256"]) is not None
            and all(len(item) == 2 and all(isinstance(x, str) for x in item) for item in migrations)
            and isinstance(manifest["format_version"], int)
            and isinstance(manifest.get("name", ""), str)
            and data["member"] in member_names
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise unreadable from exc
    if not readable:
        raise unreadable
    if manifest["format_version"] != FORMAT_VERSION:
        raise ValidationError(
            f"{path}: backup format version {manifest['format_version']} is not supported "
            f"(this code reads version {FORMAT_VERSION})."
        )
    if manifest["slug"] != slug:
        raise ValidationError(
            f"{path} is a backup of tenant '{manifest['slug']}', not of '{slug}'."
        )
    if manifest["engine"] != engine:
        raise ValidationError(
            f"{path} is a backup of a {manifest['engine']} database; this tenant's is {engine}."
        )
    unknown = sorted(migrations - known_migrations())
    if unknown:
        shown = ", ".join(f"{app}.{name}" for app, name in unknown[:5])
        raise ValidationError(
            f"{path} is from a newer schema than this code ({shown}); upgrade first."
        )


# --- restore ----------------------------------------------------------------------------------
def restore_tenant(slug: str, *, input: Path, as_slug: str | None = None, actor=None) -> Tenant:
    """Restore the backup at `input` of tenant `slug`: into that tenant (the caller has
    confirmed; its current database is kept aside, read-only, until `restore_finish`), or,
    with `as_slug`, as a new tenant of that slug. Returns the tenant served from the
    restored database. ValidationError, nothing changed, on a bad file or target."""
    if as_slug:
        return _restore_as_new(slug, input=Path(input), as_slug=as_slug, actor=actor)
    tenant = Tenant.objects.select_related("server").filter(slug=slug).first()
    if tenant is None:
        raise ValidationError(f"Unknown tenant '{slug}'.")
    if tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        raise ValidationError(
            f"Tenant '{slug}' is {tenant.status}; restore its backup as a new tenant "
            "(--as NEW_SLUG)."
        )
    if tenant.database_url:
        raise ValidationError(
            f"Tenant '{slug}' has a database URL of its own; restore its backup as a new "
            "tenant (--as NEW_SLUG)."
        )
    aside = tenant.restores.filter(state=TenantRestore.State.SWITCHED).first()
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    data = data_for(cfg)
    with open_archive(Path(input), slug=slug, engine=data.engine) as archive:
        if aside is not None:
            if aside.sha256 == archive.sha256 and aside.database_name == tenant.database_name:
                # Switched by a run killed before it told the other processes: finished here.
                data.fence({**cfg, "NAME": aside.previous_database_name})
                resolver.invalidate()
                return tenant
            raise ValidationError(
                f"An earlier restore of '{slug}' keeps database "
                f"{_shown(data.aside(aside.previous_database_name))} aside; run "
                f"restore_tenant {slug} --finish first."
            )
        with (
            services._exclusive(f"tenant:{slug}"),
            lifecycle.audited(audit.TENANT_RESTORED, tenant, actor=actor) as details,
        ):
            details.update(file=Path(input).name[:40], sha256_prefix=archive.sha256[:16])
            record = _pending_restore(tenant, archive, actor)
            restored_cfg = {**cfg, "NAME": record.database_name}
            if not record.previous_database_name:
                raise ValidationError(f"Restore {record.pk} of '{slug}' is not into it.")
            lifecycle.step("restore", "restore", slug)
            if servers.database_exists(restored_cfg):
                servers.drop_database(restored_cfg)  # our own, half made, never served
            data.load(restored_cfg, archive.data)
            lifecycle.step("restore", "verify", slug)
            _verify(data, restored_cfg, archive)
            lifecycle.step("restore", "migrate", slug)
            _migrate(tenant, restored_cfg)
            lifecycle.step("restore", "fence", slug)
            close_connection(tenant.alias)
            data.fence({**cfg, "NAME": record.previous_database_name})
            lifecycle.step("restore", "switch", slug)
            _switch(tenant, record)
    return tenant


def _pending_restore(tenant: Tenant, archive: Archive, actor) -> TenantRestore:
    """The restore of `tenant` under way from this archive (an interrupted run), else a new
    one; a restore under way from another file is rolled back first (nothing was served
    from its database)."""
    for record in tenant.restores.filter(state=TenantRestore.State.RESTORING):
        if record.sha256 == archive.sha256 and record.previous_database_name == (
            tenant.database_name
        ):
            return record
        _roll_back(tenant, record)
    lifecycle.step("restore", "prepare", tenant.slug)
    return TenantRestore.objects.create(
        tenant=tenant,
        source_slug=archive.slug,
        archive_path=str(archive.path),
        sha256=archive.sha256,
        database_name=_new_database_name(tenant),
        previous_database_name=tenant.database_name,
        created_by=getattr(actor, "username", "") or "",
    )


def _roll_back(tenant: Tenant, record: TenantRestore) -> None:
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    restored = {**cfg, "NAME": record.database_name}
    if record.database_name != tenant.database_name and servers.database_exists(restored):
        servers.drop_database(restored)
    if record.previous_database_name == tenant.database_name:
        data_for(cfg).unfence(cfg)
    record.state = TenantRestore.State.ROLLED_BACK
    record.finished_at = timezone.now()
    record.save(update_fields=["state", "finished_at"])


def _new_database_name(tenant: Tenant) -> str:
    """A database name no tenant has: on PostgreSQL `<prefix><slug>_r<random>` (at most 63
    bytes), on SQLite a file beside the current one."""
    token = secrets.token_hex(4)
    current = tenant.database_name
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    if not aliases.is_postgresql(cfg):
        return str(Path(current).with_name(f"{tenant.slug}.r{token}.sqlite3"))
    suffix = f"_r{token}"
    base = f"{settings.TENANT_DB_PREFIX}{_SAFE_NAME.sub('_', tenant.slug)}"
    return base[: 63 - len(suffix)] + suffix


def _verify(data, cfg: dict[str, Any], archive: Archive) -> None:
    counts = data.row_counts(cfg)
    if counts != archive.manifest["tables"]:
        differ = sorted(
            table
            for table in set(counts) | set(archive.manifest["tables"])
            if counts.get(table) != archive.manifest["tables"].get(table)
        )
        raise ValidationError(
            f"The restored database's rows differ from the backup's in {', '.join(differ)}."
        )


def _migrate(tenant: Tenant, cfg: dict[str, Any]) -> None:
    """Migrate the restored database forward through an alias of its own."""
    alias = f"{tenant.alias}__restore"
    settings_of = {**aliases.tenant_database_settings(tenant), "NAME": cfg["NAME"]}
    settings_of[aliases.DATABASE_KEY] = cfg["NAME"]
    aliases.register_alias(alias, settings_of)
    try:
        services.migrate_database(alias)
        left = pending_migrations(alias)
        if left:
            raise ValidationError(f"The restored database still lacks migrations {left}.")
    finally:
        aliases.unregister_alias(alias)


def _switch(tenant: Tenant, record: TenantRestore) -> None:
    with transaction.atomic(using="default"):
        Tenant.objects.filter(pk=tenant.pk).update(
            database_name=record.database_name, updated_at=timezone.now()
        )
        record.state = TenantRestore.State.SWITCHED
        record.save(update_fields=["state"])
    tenant.database_name = record.database_name
    resolver.invalidate()
    aliases.register_tenant_database(tenant)
    close_connection(tenant.alias)


def restore_finish(tenant: Tenant, *, actor=None) -> TenantRestore:
    """Drop the database an earlier restore of `tenant` kept aside. ValidationError when
    there is none."""
    record = tenant.restores.filter(state=TenantRestore.State.SWITCHED).first()
    if record is None:
        raise ValidationError(f"No restore of '{tenant.slug}' keeps a database aside.")
    if record.previous_database_name == tenant.database_name:
        raise ValidationError(
            f"Database {_shown(record.previous_database_name)} is the one '{tenant.slug}' is "
            "served from; it is not dropped."
        )
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    data = data_for(cfg)
    with (
        services._exclusive(f"tenant:{tenant.slug}"),
        lifecycle.audited(audit.TENANT_RESTORED, tenant, actor=actor, details={"finish": True}),
    ):
        lifecycle.step("restore", "finish", tenant.slug)
        servers.drop_database({**cfg, "NAME": data.aside(record.previous_database_name)})
        record.state = TenantRestore.State.FINISHED
        record.finished_at = timezone.now()
        record.save(update_fields=["state", "finished_at"])
    return record


def _shown(name: str) -> str:
    """A database's name as messages show it: a file's name without its directory."""
    return Path(name).name if os.sep in name else name


# --- restore as a new tenant --------------------------------------------------------------
def _restore_as_new(slug: str, *, input: Path, as_slug: str, actor) -> Tenant:
    existing = Tenant.objects.filter(slug=as_slug).first()
    record = None
    if existing is not None:
        record = existing.restores.filter(state=TenantRestore.State.RESTORING).first()
        if record is None or existing.status not in (
            Tenant.Status.PROVISIONING,
            Tenant.Status.FAILED,
        ):
            raise ValidationError(
                {"slug": [f"Tenant '{as_slug}' exists and is {existing.status}."]}
            )
    placed = existing.server if existing is not None else services.choose_server()
    engine = data_for(aliases.settings_of_server(placed, admin=True)).engine
    with open_archive(input, slug=slug, engine=engine) as archive:
        if existing is None:
            services.validate_tenant_input(
                slug=as_slug, name=archive.manifest.get("name") or as_slug, server=placed
            )
        with services._exclusive(f"tenant:{as_slug}"):
            if existing is None:
                lifecycle.step("restore", "prepare", as_slug)
                with services._exclusive("tenant-placement"):
                    placed = services.choose_server(placed.name)
                    tenant = _new_tenant_row(as_slug, archive, placed, actor)
            else:
                tenant = existing
                if record.sha256 != archive.sha256 or record.source_slug != slug:
                    record.sha256, record.source_slug = archive.sha256, slug
                    record.save(update_fields=["sha256", "source_slug"])
            record = tenant.restores.get(state=TenantRestore.State.RESTORING)
            with (
                _failed_on_error(tenant),
                lifecycle.audited(
                    audit.TENANT_RESTORED,
                    tenant,
                    actor=actor,
                    details={"source": slug, "sha256_prefix": archive.sha256[:16], "as_new": True},
                ),
            ):
                cfg = aliases.tenant_database_settings(tenant, admin=True)
                data = data_for(cfg)
                lifecycle.step("restore", "restore", as_slug)
                if servers.database_exists(cfg):
                    servers.drop_database(cfg)  # our own, half made, never served
                data.load(cfg, archive.data)
                lifecycle.step("restore", "verify", as_slug)
                _verify(data, cfg, archive)
                lifecycle.step("restore", "migrate", as_slug)
                _migrate(tenant, cfg)
                lifecycle.step("restore", "switch", as_slug)
                with transaction.atomic(using="default"):
                    tenant.status = Tenant.Status.ACTIVE
                    tenant.last_error = ""
                    tenant.provisioned_at = timezone.now()
                    tenant.save(
                        update_fields=["status", "last_error", "provisioned_at", "updated_at"]
                    )
                    record.state = TenantRestore.State.FINISHED
                    record.finished_at = timezone.now()
                    record.save(update_fields=["state", "finished_at"])
                resolver.invalidate()
    return tenant


@contextlib.contextmanager
def _failed_on_error(tenant: Tenant) -> Iterator[None]:
    """A new tenant whose restore failed is `failed`, with the error (a re-run resumes)."""
    try:
        yield
    except Exception as exc:
        tenant.status = Tenant.Status.FAILED
        tenant.last_error = services.mask_url_credentials(f"{type(exc).__name__}: {exc}")[:2000]
        tenant.save(update_fields=["status", "last_error", "updated_at"])
        raise


def _new_tenant_row(as_slug: str, archive: Archive, placed, actor) -> Tenant:
    with transaction.atomic(using="default"):
        tenant = Tenant.objects.create(
            slug=as_slug,
            name=(archive.manifest.get("name") or as_slug)[:200],
            server=placed,
            database_name=aliases.database_name_for(as_slug, server=placed),
        )
        TenantRestore.objects.create(
            tenant=tenant,
            source_slug=archive.slug,
            archive_path=str(archive.path),
            sha256=archive.sha256,
            database_name=tenant.database_name,
            created_by=getattr(actor, "username", "") or "",
        )
    return tenant
