"""manage.py commands: create_tenant, migrate_tenants, tenant_command, list_tenants,
drop_tenant. Exit codes and messages are the contract of API.md's Commands section."""

import io
import json
import threading
from http import HTTPStatus

import pytest
from django.core.management import CommandError
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from tenants import services
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.db import connections as tenant_connections
from tenants.management.commands import migrate_tenants
from tenants.models import Tenant, TenantMove, TenantRestore
from tenants.selectors import expected_tenant_migrations, pending_migrations
from tests.helpers import client_for, run_command

pytestmark = pytest.mark.django_db(databases="__all__")


def test_create_tenant_provisions_with_first_admin(dropped_after, monkeypatch):
    dropped_after.append("wayne")
    monkeypatch.setenv("TENANT_ADMIN_PASSWORD", "Batcave-1939-pw")
    out = run_command(
        "create_tenant",
        "wayne",
        "--name",
        "Wayne Enterprises",
        "--domain",
        "wayne.test",
        "--domain",
        "WAYNE.example.com",
        "--admin-username",
        "bruce",
        "--admin-email",
        "bruce@wayne.test",
    )
    assert "Tenant 'wayne' is active" in out
    tenant = Tenant.objects.get(slug="wayne")
    assert sorted(tenant.domains.values_list("domain", flat=True)) == [
        "wayne.example.com",
        "wayne.test",
    ]
    with use_tenant(tenant):
        assert User.objects.get(username="bruce").check_password("Batcave-1939-pw")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad", "--name", "x"], "slug"),
        (["admin", "--name", "x"], "reserved"),
        (["newco", "--name", "x", "--domain", "acme.test"], "already used"),
        (
            ["newco", "--name", "x", "--database-url", "postgres://postgres@127.0.0.1:1/x"],
            "unreachable",
        ),
        (["newco", "--name", "x", "--admin-username", "u"], "--admin-email"),
    ],
)
def test_create_tenant_bad_input_exits_non_zero_and_changes_nothing(acme, args, message):
    before = Tenant.objects.count()
    with pytest.raises(CommandError, match=message):
        run_command("create_tenant", *args)
    assert Tenant.objects.count() == before


def test_migrate_tenants_reports_each_tenant_and_skips_up_to_date_ones(acme, globex):
    out = run_command("migrate_tenants", "--parallel", "2")
    assert "acme: up to date" in out
    assert "globex: up to date" in out
    assert "0 failed" in out


def test_migrate_tenants_applies_pending_migrations(tenant_factory):
    tenant = tenant_factory("pending-co")
    cfg = aliases.tenant_database_settings(tenant)
    # Roll the tenant's addressbook/blacklist state back by removing a migration record.
    with connections[tenant.alias].cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'token_blacklist' AND "
            "name = '0013_alter_blacklistedtoken_options_and_more'"
        )
    out = run_command("migrate_tenants", "--tenant", "pending-co")
    assert "pending-co: applied 1 migration(s)" in out
    assert servers.database_exists(cfg)


def test_migrate_tenants_keeps_going_past_a_failure_and_names_it(acme, tenant_factory):
    broken = tenant_factory("broken-co")
    Tenant.objects.filter(pk=broken.pk).update(
        database_url="postgres://postgres@127.0.0.1:1/nowhere", database_name="nowhere"
    )
    aliases.unregister_alias(broken.alias)
    with pytest.raises(CommandError, match="Failed: broken-co") as excinfo:
        run_command("migrate_tenants")
    assert "acme" not in str(excinfo.value)
    # Restore so the fixture can drop the real database.
    Tenant.objects.filter(pk=broken.pk).update(database_url="", database_name=broken.database_name)
    aliases.unregister_alias(broken.alias)


def test_migrate_tenants_migrates_the_pending_tenant_among_up_to_date_ones(
    acme, globex, tenant_factory
):
    tenant = tenant_factory("behind-co")
    with connections[tenant.alias].cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'token_blacklist' AND "
            "name = '0013_alter_blacklistedtoken_options_and_more'"
        )
    tenant_connections.close_connection(tenant.alias)
    out = run_command("migrate_tenants")
    assert "acme: up to date" in out
    assert "globex: up to date" in out
    assert "behind-co: applied 1 migration(s)" in out
    assert "0 failed" in out
    assert pending_migrations(aliases.register_tenant_database(tenant)) == []


def test_migrate_tenants_checks_tenants_concurrently_by_default(acme, globex, monkeypatch):
    both_waiting = threading.Barrier(2, timeout=5)
    real = migrate_tenants.tenant_pending_migrations

    def check_when_both_are_running(tenant):
        both_waiting.wait()  # times out (the tenant fails) if the checks run one by one
        return real(tenant)

    monkeypatch.setattr(migrate_tenants, "tenant_pending_migrations", check_when_both_are_running)
    out = run_command("migrate_tenants", "--tenant", "acme", "--tenant", "globex")
    assert "acme: up to date" in out
    assert "globex: up to date" in out
    assert "0 failed" in out


def test_migrate_tenants_names_a_tenant_whose_check_fails(acme, globex, monkeypatch):
    real = migrate_tenants.tenant_pending_migrations

    def globex_down(tenant):
        if tenant.slug == "globex":
            raise RuntimeError("connection refused")
        return real(tenant)

    monkeypatch.setattr(migrate_tenants, "tenant_pending_migrations", globex_down)
    with pytest.raises(CommandError, match=r"Failed: globex$"):
        run_command("migrate_tenants", "--tenant", "acme", "--tenant", "globex")


def test_pending_migrations_is_one_query(acme):
    alias = aliases.register_tenant_database(acme)
    connection = connections[alias]
    connection.ensure_connection()
    with CaptureQueriesContext(connection) as queries:
        assert pending_migrations(alias) == []
    # The savepoints are the test's own transaction.
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 1
    assert "django_migrations" in statements[0]


def test_pending_migrations_of_a_never_migrated_database_are_all_of_them(tenant_factory):
    tenant = tenant_factory("blank-co")
    alias = tenant.alias
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("ALTER TABLE django_migrations RENAME TO django_migrations_away")
        assert pending_migrations(alias) == sorted(expected_tenant_migrations())
        # The failed read did not break the transaction it ran in.
        with connections[alias].cursor() as cursor:
            cursor.execute("ALTER TABLE django_migrations_away RENAME TO django_migrations")
    assert pending_migrations(alias) == []


def test_migrate_tenants_unknown_slug_is_an_error(acme):
    with pytest.raises(CommandError, match="nobody"):
        run_command("migrate_tenants", "--tenant", "nobody")


def test_tenant_command_runs_inside_the_tenant(acme, globex):
    with use_tenant(acme):
        User.objects.create_user("ann", "ann@acme.test", "x")
    out = run_command("tenant_command", "--tenant", "acme", "flushexpiredtokens")
    assert "== acme ==" in out
    out = run_command("tenant_command", "--all-tenants", "flushexpiredtokens")
    assert "== acme ==" in out
    assert "== globex ==" in out


def test_tenant_command_needs_a_known_active_tenant(acme):
    with pytest.raises(CommandError, match="Unknown tenant"):
        run_command("tenant_command", "--tenant", "nobody", "check")


def test_list_tenants_json(acme, globex):
    rows = json.loads(run_command("list_tenants", "--json"))
    by_slug = {row["slug"]: row for row in rows}
    assert by_slug["acme"]["status"] == "active"
    assert by_slug["acme"]["domains"] == ["acme.test"]
    assert by_slug["acme"]["database"] == acme.database_name
    assert by_slug["acme"]["server"] == "default"
    assert by_slug["acme"]["pending_migrations"] == 0


def test_list_tenants_table(acme):
    out = run_command("list_tenants")
    header, *rows = out.splitlines()
    assert header.split() == ["SLUG", "STATUS", "DOMAINS", "SERVER", "DATABASE", "PENDING"]
    acme_row = next(row.split() for row in rows if row.startswith("acme "))
    assert acme_row[2:4] == ["acme.test", "default"]


def test_drop_tenant_refuses_an_active_tenant(tenant_factory):
    tenant = tenant_factory("stark")
    with pytest.raises(CommandError, match="only a suspended tenant"):
        run_command("drop_tenant", "stark", "--yes")
    assert servers.database_exists(aliases.tenant_database_settings(tenant))


def test_drop_tenant_without_yes_and_no_terminal_keeps_the_database(tenant_factory, monkeypatch):
    tenant = tenant_factory("oscorp")
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--yes"):
        run_command("drop_tenant", "oscorp")
    assert servers.database_exists(aliases.tenant_database_settings(tenant))


def test_drop_tenant_with_yes_drops_and_keeps_the_row(tenant_factory):
    tenant = tenant_factory("tyrell")
    cfg = aliases.tenant_database_settings(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    out = run_command("drop_tenant", "tyrell", "--yes")
    assert "dropped" in out
    assert not servers.database_exists(cfg)
    assert Tenant.objects.get(slug="tyrell").status == Tenant.Status.DROPPED
    response = client_for("tyrell.test").get("/api/address-book")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["message"] == "Unknown tenant"


@pytest.mark.parametrize("operation", ["move", "restore"])
def test_drop_tenant_refuses_a_tenant_with_a_move_or_restore_under_way(tenant_factory, operation):
    tenant = tenant_factory("midway")
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    if operation == "move":
        server = services.ensure_default_server()
        TenantMove.objects.create(
            tenant=tenant,
            source_server=server,
            source_database=tenant.database_name,
            target_server=server,
            target_database=f"{tenant.database_name}_elsewhere",
        )
    else:
        TenantRestore.objects.create(
            tenant=tenant,
            source_slug=tenant.slug,
            archive_path="/nowhere.tar",
            sha256="0" * 64,
            database_name=f"{tenant.database_name}_restored",
            previous_database_name=tenant.database_name,
        )
    with pytest.raises(CommandError, match=f"has a {operation} under way"):
        run_command("drop_tenant", "midway", "--yes")
    assert servers.database_exists(aliases.tenant_database_settings(tenant))
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.SUSPENDED
