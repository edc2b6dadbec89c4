"""backup_tenant / restore_tenant: one tenant's consistent backup in one file, its restore
into the same tenant (the previous database kept aside, read-only, until --finish) or as a
new tenant; bad files refused before anything changes; another tenant never touched."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connections

from accounts import audit
from accounts.models import AuditEvent
from addressbook.models import Contact
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.db.connections import close_connection
from tenants.lifecycle import backup
from tenants.models import Tenant, TenantArchive, TenantRestore
from tenants.resolution import resolver
from tests.helpers import BASE_DIR, POSTGRES, run_command

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
ENGINE = "postgresql" if POSTGRES else "sqlite"


# --- helpers -------------------------------------------------------------------------------
def names_in(tenant: Tenant) -> list[str]:
    """The contacts' names the tenant is served with (its row as the main database has it)."""
    tenant = Tenant.objects.get(pk=tenant.pk)
    close_connection(tenant.alias)  # a connection a fence may have ended
    with use_tenant(tenant):
        names = sorted(Contact.objects.values_list("name", flat=True))
    connections[tenant.alias].close()
    return names


def names_in_database(tenant: Tenant, name: str) -> list[str]:
    """The contacts' names in database `name` of the tenant's server."""
    cfg = {**aliases.tenant_database_settings(tenant, admin=True), "NAME": name}
    alias = f"{tenant.alias}__look"
    aliases.register_alias(alias, cfg)
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT name FROM addressbook_contact ORDER BY name")
            return [row[0] for row in cursor.fetchall()]
    finally:
        aliases.unregister_alias(alias)


def aside_of(name: str) -> str:
    """Where a restore keeps the previous database: the same database, read-only, on
    PostgreSQL; the file moved beside its path on SQLite."""
    return name if POSTGRES else f"{name}.aside"


# A write through the previous placement: refused by the read-only database, or the file
# is no longer at its path (the tenant backend never creates one).
STALE_WRITE_REFUSED = "read-only transaction" if POSTGRES else "unable to open database file"


def write_to(tenant: Tenant, name: str) -> None:
    cfg = {**aliases.tenant_database_settings(tenant), "NAME": name}
    aliases.register_alias(f"{tenant.alias}__old", cfg)
    try:
        with connections[f"{tenant.alias}__old"].cursor() as cursor:
            cursor.execute("DELETE FROM addressbook_contact")
    finally:
        aliases.unregister_alias(f"{tenant.alias}__old")


def database_exists(tenant: Tenant, name: str) -> bool:
    cfg = {**aliases.tenant_database_settings(tenant, admin=True), "NAME": name}
    return servers.database_exists(cfg)


def table_checksums(tenant: Tenant) -> dict[str, str]:
    """A sha256 of every table's rows (in primary-key order) of the tenant's database."""
    alias = aliases.register_tenant_database(tenant)
    sums = {}
    with connections[alias].cursor() as cursor:
        for table in connections[alias].introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connections[alias].ops.quote_name(table)} ORDER BY 1")
            sums[table] = hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest()
    connections[alias].close()
    return sums


def rewrite(path: Path, target: Path, *, manifest=None, data=None, extra=()) -> Path:
    """A copy of the backup at `path` with its manifest or data replaced, or members added."""
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    found = json.loads(members.pop(backup.MANIFEST))
    manifest = manifest(found) if manifest else found
    name, body = next(iter(members.items()))
    body = data(body) if data else body
    with tarfile.open(target, "w") as tar:
        for member_name, content in (
            (backup.MANIFEST, json.dumps(manifest).encode()),
            (name, body),
            *extra,
        ):
            info = tarfile.TarInfo(member_name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return target


@pytest.fixture
def shop(tenant_factory, make_contact):
    """A tenant with three contacts."""
    tenant = tenant_factory("shop")
    first = tenant.database_name
    for name in ("ada", "bob", "cy"):
        make_contact(tenant, name)
    yield tenant
    # Every database a restore made or kept aside; tenant_factory drops the one it made.
    made = {first, aside_of(first)}
    for record in TenantRestore.objects.all():
        made |= {record.database_name, aside_of(record.database_name)}
    aliases.unregister_alias(tenant.alias)
    for name in made:
        servers.drop_database(
            {**aliases.tenant_database_settings(tenant, admin=True), "NAME": name}
        )


@pytest.fixture
def shop_backup(shop, tmp_path) -> Path:
    """A backup of `shop` (ada, bob, cy), after which dan joined and bob left."""
    path = tmp_path / "shop.tar"
    backup.backup_tenant(shop, output=path)
    with use_tenant(shop):
        Contact.objects.create(name="dan")
        Contact.objects.filter(name="bob").delete()
    return path


# --- backup --------------------------------------------------------------------------------
def test_a_backup_is_one_tar_with_a_manifest_and_the_data_and_is_recorded(shop, tmp_path):
    output = tmp_path / "out.tar"

    archive = backup.backup_tenant(shop, output=output)

    with tarfile.open(output) as tar:
        members = tar.getmembers()
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())
        data = tar.extractfile(manifest["data"]["member"]).read()
    assert sorted(m.name for m in members) == sorted(
        [backup.MANIFEST, "database.dump" if POSTGRES else "database.sqlite3"]
    )
    assert manifest["slug"] == "shop"
    assert manifest["engine"] == ENGINE
    assert manifest["tables"]["addressbook_contact"] == 3
    assert ["addressbook", "0002_search_trigram_indexes"] in manifest["migrations"]
    assert manifest["created_at"].endswith("Z")
    assert manifest["data"]["size"] == len(data)
    assert manifest["data"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert archive.kind == TenantArchive.Kind.BACKUP
    assert archive.path == str(output)
    assert archive.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert archive.size_bytes == output.stat().st_size
    event = AuditEvent.objects.get(event=audit.TENANT_BACKED_UP)
    assert event.target_id == "shop"
    assert event.details["outcome"] == "ok"
    assert list(tmp_path.iterdir()) == [output]  # no scratch file left beside it


def test_a_backup_is_readable_by_its_owner_only(shop, tmp_path):
    """It holds password hashes, TOTP keys and API key digests: mode 0600 wherever it goes
    (an export is written so too), whatever the umask and the directory's mode."""
    path = tmp_path / "shared" / "shop.tar"
    path.parent.mkdir(mode=0o755)
    backup.backup_tenant(shop, output=path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_backup_goes_under_the_archive_directory_by_default(shop):
    archive = backup.backup_tenant(shop)

    path = Path(archive.path)
    assert path.parent == Path(settings.TENANT_ARCHIVE_DIR).absolute()
    assert path.name.startswith("shop-") and path.suffix == ".tar"
    assert path.is_file()


def test_a_backup_to_a_path_that_exists_is_refused_and_writes_nothing(shop, tmp_path):
    output = tmp_path / "taken.tar"
    output.write_bytes(b"keep me")

    with pytest.raises(CommandError, match="exists"):
        run_command("backup_tenant", "shop", "--output", str(output))

    assert output.read_bytes() == b"keep me"
    assert not TenantArchive.objects.exists()
    assert sorted(tmp_path.iterdir()) == [output]


def test_a_backup_of_an_unknown_tenant_is_a_command_error(tenant_databases, tmp_path):
    with pytest.raises(CommandError, match="Unknown tenant 'nobody'"):
        run_command("backup_tenant", "nobody", "--output", str(tmp_path / "x.tar"))
    assert not (tmp_path / "x.tar").exists()


# --- restore into the same tenant ------------------------------------------------------------
def test_a_restore_serves_the_backups_data_and_keeps_the_previous_database_aside_read_only(
    shop, shop_backup
):
    previous = Tenant.objects.get(pk=shop.pk).database_name
    assert names_in(shop) == ["ada", "cy", "dan"]
    resolver.by_slug("shop")  # a warm cache, as a serving process has

    out = run_command("restore_tenant", "shop", "--input", str(shop_backup), "--yes")

    shop.refresh_from_db()
    assert shop.database_name != previous
    assert names_in(shop) == ["ada", "bob", "cy"]
    assert resolver.by_slug("shop").database_name == shop.database_name
    assert "kept aside" in out
    assert names_in_database(shop, aside_of(previous)) == ["ada", "cy", "dan"]
    record = TenantRestore.objects.get(tenant=shop)
    assert record.state == TenantRestore.State.SWITCHED
    assert record.previous_database_name == previous
    with pytest.raises(Exception, match=STALE_WRITE_REFUSED):
        write_to(shop, previous)  # what a process still on the old placement would do
    assert AuditEvent.objects.get(event=audit.TENANT_RESTORED).details["outcome"] == "ok"

    run_command("restore_tenant", "shop", "--finish", "--yes")

    assert not database_exists(shop, aside_of(previous))
    assert not database_exists(shop, previous)
    assert names_in(shop) == ["ada", "bob", "cy"]
    assert TenantRestore.objects.get(tenant=shop).state == TenantRestore.State.FINISHED


def test_a_process_that_served_the_tenant_before_a_restore_serves_the_restored_database(
    shop, shop_backup
):
    with use_tenant(Tenant.objects.get(pk=shop.pk)):
        assert Contact.objects.count() == 3  # this thread's connection to the old database

    backup.restore_tenant("shop", input=shop_backup)

    with use_tenant(Tenant.objects.get(pk=shop.pk)):
        assert sorted(Contact.objects.values_list("name", flat=True)) == ["ada", "bob", "cy"]


def test_a_restore_without_yes_and_no_terminal_changes_nothing(shop, shop_backup):
    before = Tenant.objects.get(pk=shop.pk).database_name

    with pytest.raises(CommandError, match="--yes"):
        run_command("restore_tenant", "shop", "--input", str(shop_backup))

    assert Tenant.objects.get(pk=shop.pk).database_name == before
    assert not TenantRestore.objects.exists()


def test_a_second_restore_waits_for_the_first_ones_finish(shop, shop_backup, make_contact):
    backup.restore_tenant("shop", input=shop_backup)
    make_contact(Tenant.objects.get(pk=shop.pk), "eve")
    other = shop_backup.with_name("again.tar")
    backup.backup_tenant(Tenant.objects.get(pk=shop.pk), output=other)

    with pytest.raises(ValidationError, match="--finish first"):
        backup.restore_tenant("shop", input=other)


def test_a_backup_of_an_older_schema_is_restored_and_migrated_forward(shop, tmp_path):
    alias = aliases.register_tenant_database(shop)
    call_command("migrate", "addressbook", "0001", database=alias, verbosity=0)
    connections[alias].close()
    path = tmp_path / "old.tar"
    backup.backup_tenant(shop, output=path)
    call_command("migrate", "addressbook", database=alias, verbosity=0)
    connections[alias].close()
    with tarfile.open(path) as tar:
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())
    assert ["addressbook", "0002_search_trigram_indexes"] not in manifest["migrations"]

    tenant = backup.restore_tenant("shop", input=path)

    from tenants.selectors import tenant_pending_migrations

    assert tenant_pending_migrations(Tenant.objects.get(pk=tenant.pk)) == []
    assert names_in(shop) == ["ada", "bob", "cy"]


def test_restoring_one_tenant_leaves_another_untouched(shop, shop_backup, tenant_factory):
    other = tenant_factory("other")
    with use_tenant(other):
        Contact.objects.create(name="zed")
    before = table_checksums(other)
    other_row = Tenant.objects.filter(pk=other.pk).values().get()

    backup.restore_tenant("shop", input=shop_backup)
    backup.restore_finish(Tenant.objects.get(pk=shop.pk))

    assert table_checksums(other) == before
    assert Tenant.objects.filter(pk=other.pk).values().get() == other_row
    assert not TenantRestore.objects.filter(tenant=other).exists()


# --- restore as a new tenant -----------------------------------------------------------------
def test_a_backup_restored_as_a_new_tenant_is_active_on_its_implicit_host(shop, shop_backup):
    out = run_command("restore_tenant", "shop", "--input", str(shop_backup), "--as", "shop-copy")

    copy = Tenant.objects.get(slug="shop-copy")
    assert "restored as new tenant 'shop-copy'" in out
    assert copy.status == Tenant.Status.ACTIVE
    assert copy.database_name == aliases.database_name_for("shop-copy", server=copy.server)
    assert resolver.by_host(f"shop-copy.{settings.TENANT_BASE_DOMAIN}").pk == copy.pk
    assert names_in(copy) == ["ada", "bob", "cy"]
    assert names_in(shop) == ["ada", "cy", "dan"]  # the original goes on as it was
    aliases.unregister_alias(copy.alias)
    servers.drop_database(aliases.tenant_database_settings(copy, admin=True))


def test_a_dropped_tenants_backup_can_only_come_back_as_a_new_tenant(shop, shop_backup):
    from tenants.services import tenant_drop, tenant_suspend

    tenant_drop(tenant_suspend(Tenant.objects.get(pk=shop.pk)))

    with pytest.raises(CommandError, match="dropped; restore its backup as a new tenant"):
        run_command("restore_tenant", "shop", "--input", str(shop_backup), "--yes")
    copy = backup.restore_tenant("shop", input=shop_backup, as_slug="shop-back")

    assert names_in(copy) == ["ada", "bob", "cy"]
    aliases.unregister_alias(copy.alias)
    servers.drop_database(aliases.tenant_database_settings(copy, admin=True))


def test_a_restore_as_a_slug_that_is_taken_changes_nothing(shop, shop_backup, tenant_factory):
    tenant_factory("taken")

    with pytest.raises(ValidationError, match="exists"):
        backup.restore_tenant("shop", input=shop_backup, as_slug="taken")

    assert not TenantRestore.objects.exists()


# --- bad input ---------------------------------------------------------------------------------
def _bad_files(source: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    garbage = tmp / "garbage.tar"
    garbage.write_bytes(os.urandom(4096))
    truncated = tmp / "truncated.tar"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    newer = [["addressbook", "9999_from_the_future"]]
    return {
        "corrupt": (garbage, "not a tenant backup"),
        "truncated": (truncated, "not a tenant backup|larger than the file|checksum"),
        "foreign": (
            rewrite(source, tmp / "foreign.tar", manifest=lambda m: {**m, "slug": "globex"}),
            "backup of tenant 'globex', not of 'shop'",
        ),
        "checksum": (
            rewrite(source, tmp / "changed.tar", data=lambda d: d[:-1] + bytes([d[-1] ^ 1])),
            "checksum mismatch",
        ),
        "newer schema": (
            rewrite(
                source,
                tmp / "newer.tar",
                manifest=lambda m: {**m, "migrations": m["migrations"] + newer},
            ),
            "newer schema",
        ),
        "extra member": (
            rewrite(source, tmp / "extra.tar", extra=[("../../evil", b"x")]),
            "not a tenant backup",
        ),
        "other engine": (
            rewrite(
                source,
                tmp / "engine.tar",
                manifest=lambda m: {**m, "engine": "sqlite" if POSTGRES else "postgresql"},
            ),
            "database; this tenant's is",
        ),
        "missing": (tmp / "nothing-here.tar", "No backup file"),
    }


def test_a_bad_backup_file_is_refused_with_a_clear_error_and_nothing_changes(
    shop, shop_backup, tmp_path
):
    before = Tenant.objects.filter(pk=shop.pk).values().get()
    checksums = table_checksums(shop)
    bad = tmp_path / "bad"
    bad.mkdir()

    for case, (path, message) in _bad_files(shop_backup, bad).items():
        with pytest.raises(CommandError, match=message):
            run_command("restore_tenant", "shop", "--input", str(path), "--yes")
        with pytest.raises(CommandError, match=message):
            run_command("restore_tenant", "shop", "--input", str(path), "--as", f"new-{case[:3]}")
        assert Tenant.objects.filter(pk=shop.pk).values().get() == before, case

    assert table_checksums(shop) == checksums
    assert not TenantRestore.objects.exists()
    assert list(Tenant.objects.filter(slug__startswith="new-")) == []


def test_a_restore_into_an_unknown_tenant_is_a_command_error(tenant_databases, tmp_path):
    with pytest.raises(CommandError, match="Unknown tenant 'nobody'"):
        run_command("restore_tenant", "nobody", "--input", str(tmp_path / "x.tar"), "--yes")


def test_finish_without_a_restore_is_a_command_error(shop):
    with pytest.raises(CommandError, match="No restore of 'shop' keeps a database aside"):
        run_command("restore_tenant", "shop", "--finish", "--yes")


# --- killed at each step -----------------------------------------------------------------------
def killed(step: str, *args: str) -> subprocess.CompletedProcess:
    """Run a command in a subprocess on this test's databases; SIGKILLed at `step`."""
    main = connections["default"].settings_dict
    if POSTGRES:
        url = f"postgres://{main['USER']}@{main['HOST'] or '127.0.0.1'}:{main['PORT'] or 5432}"
        database_url = f"{url}/{main['NAME']}"
    else:
        database_url = f"sqlite:///{main['NAME']}"
    env = {
        **os.environ,
        "TESTING": "1",
        "TEST_RUN_TAG": settings.TEST_RUN_TAG,
        "DATABASE_URL": database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.killed_command", step, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


needs_a_shared_main_database = pytest.mark.skipif(
    not POSTGRES, reason="the SQLite test database is in memory; a subprocess cannot share it"
)


@needs_a_shared_main_database
@pytest.mark.parametrize("step", ["prepare", "restore", "verify", "migrate", "fence", "switch"])
def test_a_restore_killed_at_each_step_leaves_one_database_served_and_a_rerun_finishes(
    shop, shop_backup, step
):
    previous = Tenant.objects.get(pk=shop.pk).database_name

    result = killed(
        f"restore:{step}", "restore_tenant", "shop", "--input", str(shop_backup), "--yes"
    )

    assert result.returncode == -9, result.stderr[-2000:]
    assert Tenant.objects.get(pk=shop.pk).database_name == previous
    assert names_in(shop) == ["ada", "cy", "dan"]  # nothing lost: the data as it was

    run_command("restore_tenant", "shop", "--input", str(shop_backup), "--yes")

    shop.refresh_from_db()
    assert names_in(shop) == ["ada", "bob", "cy"]
    assert names_in_database(shop, aside_of(previous)) == ["ada", "cy", "dan"]
    switched = TenantRestore.objects.get(state=TenantRestore.State.SWITCHED)
    assert switched.database_name == shop.database_name
    for record in TenantRestore.objects.exclude(pk=switched.pk):
        assert not database_exists(shop, record.database_name)


@needs_a_shared_main_database
@pytest.mark.parametrize("step", ["prepare", "restore", "verify", "migrate", "switch"])
def test_a_restore_as_new_killed_at_each_step_is_finished_by_a_rerun(shop, shop_backup, step):
    args = ("restore_tenant", "shop", "--input", str(shop_backup), "--as", "shop-new")

    result = killed(f"restore:{step}", *args)

    assert result.returncode == -9, result.stderr[-2000:]
    copy = Tenant.objects.filter(slug="shop-new").first()
    assert copy is None or copy.status == Tenant.Status.PROVISIONING  # not served yet
    assert names_in(shop) == ["ada", "cy", "dan"]

    run_command(*args)

    copy = Tenant.objects.get(slug="shop-new")
    assert copy.status == Tenant.Status.ACTIVE
    assert names_in(copy) == ["ada", "bob", "cy"]
    aliases.unregister_alias(copy.alias)
    servers.drop_database(aliases.tenant_database_settings(copy, admin=True))


@needs_a_shared_main_database
@pytest.mark.parametrize("step", ["dump", "archive", "record"])
def test_a_backup_killed_at_each_step_writes_no_file_and_a_rerun_writes_it(shop, tmp_path, step):
    output = tmp_path / "killed.tar"

    result = killed(f"backup:{step}", "backup_tenant", "shop", "--output", str(output))

    assert result.returncode == -9, result.stderr[-2000:]
    assert not output.exists()
    assert not TenantArchive.objects.exists()
    assert names_in(shop) == ["ada", "bob", "cy"]

    run_command("backup_tenant", "shop", "--output", str(output))

    assert TenantArchive.objects.get().path == str(output)
    with backup.open_archive(output, slug="shop", engine=ENGINE) as archive:
        assert archive.manifest["tables"]["addressbook_contact"] == 3


@needs_a_shared_main_database
def test_a_finish_killed_keeps_the_aside_database_until_a_rerun_drops_it(shop, shop_backup):
    previous = Tenant.objects.get(pk=shop.pk).database_name
    backup.restore_tenant("shop", input=shop_backup)

    result = killed("restore:finish", "restore_tenant", "shop", "--finish", "--yes")

    assert result.returncode == -9, result.stderr[-2000:]
    assert database_exists(shop, aside_of(previous))
    assert names_in(shop) == ["ada", "bob", "cy"]

    run_command("restore_tenant", "shop", "--finish", "--yes")

    assert not database_exists(shop, aside_of(previous))


# --- hostile files -----------------------------------------------------------------------------
def _hostile_data(shop: Tenant, tmp: Path) -> bytes:
    """The data of a backup of `shop` whose database was given a check constraint calling a
    function that writes a file on the database server when a row is loaded (on PostgreSQL:
    what pg_restore runs as the admin user), or, on SQLite, a trigger."""
    path = tmp / "plain.tar"
    backup.backup_tenant(shop, output=path)
    alias = aliases.register_tenant_database(shop)
    with connections[alias].cursor() as cursor:
        if POSTGRES:
            cursor.execute(
                "CREATE FUNCTION public.restore_runs_this(i bigint) RETURNS boolean "
                "LANGUAGE plpgsql VOLATILE AS $$ BEGIN "
                "CREATE TABLE IF NOT EXISTS public.restore_ran_this(x int); "
                "RETURN true; END $$"
            )
            cursor.execute(
                "ALTER TABLE addressbook_contact ADD CONSTRAINT hostile "
                "CHECK (public.restore_runs_this(id))"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER hostile AFTER INSERT ON addressbook_contact "
                "BEGIN DELETE FROM accounts_user; END"
            )
    connections[alias].close()
    hostile = tmp / "hostile-source.tar"
    backup.backup_tenant(shop, output=hostile)
    with tarfile.open(hostile) as tar:
        member = next(m for m in tar.getmembers() if m.name != backup.MANIFEST)
        data = tar.extractfile(member).read()
    return data


def test_a_backup_this_deployment_did_not_write_is_refused_before_its_data_is_loaded(
    shop, tmp_path
):
    """A file whose manifest matches its data but that no backup_tenant of this deployment
    signed (a dump of another database, with a function run at load time) is refused:
    pg_restore would run its SQL as the server's admin user."""
    genuine = tmp_path / "genuine.tar"
    backup.backup_tenant(shop, output=genuine)
    data = _hostile_data(shop, tmp_path)

    def forged_manifest(manifest):
        manifest = {**manifest, "data": {**manifest["data"]}}
        manifest["data"]["size"] = len(data)
        manifest["data"]["sha256"] = hashlib.sha256(data).hexdigest()
        return manifest

    forged = rewrite(
        genuine, tmp_path / "forged.tar", manifest=forged_manifest, data=lambda _: data
    )
    unsigned = rewrite(
        genuine,
        tmp_path / "unsigned.tar",
        manifest=lambda m: {k: v for k, v in m.items() if k != "signature"},
    )
    for path in (forged, unsigned):
        with pytest.raises(CommandError, match="not signed by this deployment"):
            run_command("restore_tenant", "shop", "--input", str(path), "--as", "copycat")
    assert not Tenant.objects.filter(slug="copycat").exists()
    copycat = {**aliases.tenant_database_settings(shop, admin=True)}
    copycat["NAME"] = aliases.database_name_for("copycat", server=shop.server)
    assert not servers.database_exists(copycat)


def test_a_backup_signed_with_a_former_secret_key_is_restored(shop, tmp_path, settings):
    path = tmp_path / "old-key.tar"
    backup.backup_tenant(shop, output=path)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "k" * 60
    tenant = backup.restore_tenant("shop", input=path, as_slug="shop-again")
    assert names_in(tenant) == ["ada", "bob", "cy"]
    aliases.unregister_alias(tenant.alias)
    servers.drop_database(aliases.tenant_database_settings(tenant, admin=True))
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(ValidationError, match="not signed by this deployment"):
        backup.restore_tenant("shop", input=path, as_slug="shop-thrice")


def _tar_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return path


def test_a_malformed_manifest_is_refused_with_a_clear_error(shop, shop_backup, tmp_path):
    with tarfile.open(shop_backup) as tar:
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())
    body = json.dumps(manifest).encode()
    other_member = "database.sqlite3" if POSTGRES else "database.dump"
    cases = {
        "twice the manifest": [(backup.MANIFEST, body), (backup.MANIFEST, body)],
        "deeply nested": [
            (backup.MANIFEST, b"[" * 100_000 + b"]" * 100_000),
            ("database.dump", b"x"),
        ],
        "no format version": [
            (
                backup.MANIFEST,
                json.dumps({k: v for k, v in manifest.items() if k != "format_version"}).encode(),
            ),
            ("database.dump", b"x"),
        ],
        "names a member it lacks": [
            (
                backup.MANIFEST,
                json.dumps(
                    {**manifest, "data": {**manifest["data"], "member": other_member}}
                ).encode(),
            ),
            ("database.dump" if POSTGRES else "database.sqlite3", b"x"),
        ],
    }
    for case, members in cases.items():
        path = _tar_of(tmp_path / f"{case}.tar", members)
        with pytest.raises(CommandError, match="not a tenant backup"):
            run_command("restore_tenant", "shop", "--input", str(path), "--as", "malformed")
    assert not Tenant.objects.filter(slug="malformed").exists()
