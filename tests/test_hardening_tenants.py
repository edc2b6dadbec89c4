"""Tenant lifecycle integrity: slugs are never reused, a tenant command stays in its
tenant's database, domains never take over another tenant, a tenant never shares or drops
a database it does not own, SQLite serves concurrent writers, and the platform admin lists
only what it can open."""

from __future__ import annotations

import hashlib
import json
import threading
from http import HTTPStatus
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.management import CommandError, get_commands
from django.db import OperationalError, connections, transaction
from django.urls import reverse

from accounts.models import User
from accounts.tokens import issue_tokens
from addressbook.models import Contact
from tenants import services
from tenants.context import use_tenant
from tenants.db import aliases, breaker, servers
from tenants.management.commands import tenant_command
from tenants.models import Domain, Tenant
from tenants.resolution import resolve_tenant_from_host, resolver
from tests.factories import PASSWORD
from tests.helpers import POSTGRES, client_for, run_command

pytestmark = pytest.mark.django_db(databases="__all__")

BASE = "localhost"


def main_database_fingerprint() -> dict[str, str]:
    """A digest of every row of every table of the main database."""
    connection = connections["default"]
    digests = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows = sorted(repr(row) for row in cursor.fetchall())
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


@pytest.fixture
def base_domain(settings):
    settings.TENANT_BASE_DOMAIN = BASE
    resolver.invalidate()
    return BASE


def delete_row_keeping_database(tenant: Tenant) -> None:
    """What deleting a tenant in the admin used to do."""
    aliases.unregister_alias(tenant.alias)
    Tenant.objects.filter(pk=tenant.pk).delete()
    resolver.invalidate()


# --- 1. a slug is never reused ------------------------------------------------------------
def test_a_slug_whose_database_holds_data_is_refused_naming_the_database(
    tenant_factory, make_contact
):
    old = tenant_factory("umbrella")
    make_contact(old, "Old Customer")
    delete_row_keeping_database(old)
    with pytest.raises(CommandError) as info:
        run_command(
            "create_tenant", "umbrella", "--name", "New Umbrella", "--domain", "umbrella.test"
        )
    shown = old.database_name if POSTGRES else "umbrella.sqlite3"
    assert f"Database {shown} exists and holds data" in str(info.value)
    assert not Tenant.objects.filter(slug="umbrella").exists()
    assert not Domain.objects.filter(domain="umbrella.test").exists()


def test_a_reused_slug_never_serves_the_old_tenants_users_or_tokens(tenant_factory, make_user):
    old = tenant_factory("umbrella")
    owner = make_user(old, "wesker")
    with use_tenant(old):
        old_token = issue_tokens(owner, old)["access"]
    delete_row_keeping_database(old)
    with pytest.raises(ValidationError):
        services.provision_tenant(
            slug="umbrella",
            name="New Umbrella",
            domains=["umbrella.test"],
            admin=services.AdminSpec("newowner", "new@umbrella.test", PASSWORD),
        )
    response = client_for("umbrella.test").get(
        "/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {old_token}"
    )
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_an_empty_leftover_database_of_a_crashed_provisioning_is_finished(tenant_factory):
    leftover = tenant_factory("initrode")  # migrated, no data: what a crash leaves
    delete_row_keeping_database(leftover)
    tenant = services.provision_tenant(slug="initrode", name="Initrode", domains=["i.test"])
    assert tenant.status == Tenant.Status.ACTIVE


@pytest.mark.parametrize("status", [Tenant.Status.SUSPENDED, Tenant.Status.DROPPED])
def test_a_suspended_or_dropped_slug_is_never_reused(tenant_factory, status):
    tenant = tenant_factory("vandelay")
    services.tenant_suspend(tenant)
    if status == Tenant.Status.DROPPED:
        services.tenant_drop(tenant)
    with pytest.raises(CommandError, match=f"exists and is {status}"):
        run_command("create_tenant", "vandelay", "--name", "Vandelay", "--domain", "vandelay.test")
    assert Tenant.objects.get(slug="vandelay").status == status


def test_the_admin_cannot_delete_a_tenant(superuser_client, acme):
    url = reverse("admin:tenants_tenant_delete", args=[acme.pk])
    assert superuser_client.get(url).status_code == HTTPStatus.FORBIDDEN
    assert superuser_client.post(url, {"post": "yes"}).status_code == HTTPStatus.FORBIDDEN
    changelist = superuser_client.get(reverse("admin:tenants_tenant_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    response = superuser_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "delete_selected", "_selected_action": [acme.pk], "post": "yes"},
    )
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)
    assert Tenant.objects.filter(pk=acme.pk).exists()


def test_the_admin_change_page_offers_suspend_not_delete(superuser_client, acme):
    page = superuser_client.get(reverse("admin:tenants_tenant_change", args=[acme.pk]))
    text = page.content.decode()
    assert page.status_code == HTTPStatus.OK
    assert "Suspend" in text
    assert "is kept" not in text
    assert reverse("admin:tenants_tenant_delete", args=[acme.pk]) not in text


def test_platform_api_delete_suspends_and_keeps_the_row_and_database(as_staff, tenant_factory):
    tenant = tenant_factory("kramerica")
    response = client_for("acme.test").delete("/api/platform/tenants/kramerica", **as_staff)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "suspended"
    assert servers.database_exists(aliases.tenant_database_settings(tenant))


# --- 6. create_tenant of an active slug -------------------------------------------------------
def test_create_tenant_of_an_active_slug_fails_and_changes_nothing(acme):
    domains = sorted(acme.domains.values_list("domain", flat=True))
    with pytest.raises(CommandError) as info:
        run_command("create_tenant", "acme", "--name", "Renamed", "--domain", "other-acme.test")
    assert str(info.value) == "Tenant 'acme' already exists"
    acme.refresh_from_db()
    assert acme.name == "Acme Corp"
    assert sorted(acme.domains.values_list("domain", flat=True)) == domains


def test_create_tenant_of_an_active_slug_exits_non_zero(acme, capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as info:
        execute_from_command_line(["manage.py", "create_tenant", "acme", "--name", "Acme"])
    assert info.value.code != 0
    assert "Tenant 'acme' already exists" in capsys.readouterr().err


def test_create_tenant_finishes_a_failed_tenant(tenant_factory):
    tenant = tenant_factory("hooli")
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.FAILED, last_error="x")
    out = run_command("create_tenant", "hooli", "--name", "Hooli", "--domain", "hooli.test")
    assert "Tenant 'hooli' is active" in out
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.ACTIVE


# --- 2. tenant_command stays in the tenant's database ---------------------------------------
def test_flush_through_tenant_command_empties_only_the_tenants_database(
    tenant_factory, make_contact, acme
):
    tenant = tenant_factory("flushco")
    make_contact(tenant, "Doomed")
    make_contact(acme, "Survivor")
    before = main_database_fingerprint()
    run_command("tenant_command", "--tenant", "flushco", "flush", "--no-input")
    assert main_database_fingerprint() == before
    with use_tenant(tenant):
        assert not Contact.objects.exists()
    with use_tenant(acme):
        assert Contact.objects.filter(name="Survivor").exists()
    resolver.invalidate()
    assert resolve_tenant_from_host("acme.test") is not None


def test_createsuperuser_through_tenant_command_is_refused(acme):
    before = User.objects.count()
    with pytest.raises(CommandError, match="'createsuperuser' cannot run for a tenant"):
        run_command(
            "tenant_command",
            "--tenant",
            "acme",
            "createsuperuser",
            "--no-input",
            "--username",
            "mallory",
            "--email",
            "m@x.test",
        )
    assert User.objects.count() == before
    with use_tenant(acme):
        assert not User.objects.filter(username="mallory").exists()


@pytest.mark.parametrize("option", [["--database", "default"], ["--database=default"]])
def test_tenant_command_refuses_a_database_option_naming_another_database(acme, option):
    before = main_database_fingerprint()
    with pytest.raises(CommandError, match="--database cannot name another one"):
        run_command("tenant_command", "--tenant", "acme", "flush", "--no-input", *option)
    assert main_database_fingerprint() == before


def test_a_main_database_query_inside_tenant_command_is_refused(acme, monkeypatch):
    """clearsessions works on the main database's sessions; even declared tenant-scoped,
    the router's platform writes never reach the main database."""
    monkeypatch.setattr(
        tenant_command,
        "TENANT_SCOPED_COMMANDS",
        tenant_command.TENANT_SCOPED_COMMANDS | {"clearsessions"},
    )
    before = main_database_fingerprint()
    with (
        pytest.raises(tenant_command.MainDatabaseAccess, match="main database"),
        transaction.atomic(),  # the refused statement breaks only this block
    ):
        run_command("tenant_command", "--tenant", "acme", "clearsessions")
    assert main_database_fingerprint() == before


def test_a_platform_model_write_while_a_tenant_command_runs_is_refused(acme):
    with (
        pytest.raises(tenant_command.MainDatabaseAccess),
        transaction.atomic(),
        use_tenant(acme),
        tenant_command._main_database_refused("x"),
    ):
        Tenant.objects.create(slug="sneaky", name="Sneaky")
    assert not Tenant.objects.filter(slug="sneaky").exists()


# Arguments to run each command that tenant_command lets through, for the class test below.
# A command that is allowed and has no entry here fails that test, named.
ALLOWED_COMMAND_ARGS: dict[str, list[str]] = {
    "changepassword": ["carol"],
    "createcachetable": [],
    "dbshell": [],
    "dumpdata": [],
    "flush": ["--no-input"],
    "flushexpiredtokens": [],
    "inspectdb": [],
    "loaddata": ["<fixture>"],
    "migrate": ["--no-input"],
    "purge_revoked_tokens": [],
    "remove_stale_contenttypes": ["--no-input"],
    "showmigrations": [],
    "sqlflush": [],
    "sqlmigrate": ["accounts", "0001"],
    "sqlsequencereset": ["accounts"],
}


@pytest.mark.parametrize("name", sorted(get_commands()))
def test_every_command_through_tenant_command_is_refused_or_stays_in_the_tenant(
    name, tenant_factory, make_user, tmp_path, monkeypatch
):
    mode, _reason = tenant_command.command_policy(name)
    if mode == "refused":
        before = main_database_fingerprint()
        with pytest.raises(CommandError, match=f"'{name}' cannot run for a tenant"):
            run_command("tenant_command", "--tenant", "acme", name)
        assert main_database_fingerprint() == before
        return
    assert name in ALLOWED_COMMAND_ARGS, f"{name} is allowed but has no case here"
    tenant = tenant_factory("cmdcheck")
    make_user(tenant, "carol")
    args = list(ALLOWED_COMMAND_ARGS[name])
    if name == "loaddata":
        fixture = tmp_path / "mixed.json"
        fixture.write_text(
            json.dumps(
                [
                    {
                        "model": "addressbook.contact",
                        "pk": 777,
                        "fields": {
                            "name": "Loaded",
                            "created_at": "2026-01-01T00:00:00Z",
                            "updated_at": "2026-01-01T00:00:00Z",
                        },
                    },
                    {"model": "tenants.tenant", "pk": 9999, "fields": {"slug": "planted"}},
                ]
            )
        )
        args = [str(fixture)]
    shells = []
    monkeypatch.setattr(
        "django.db.backends.base.client.subprocess.run",
        lambda argv, **kwargs: shells.append(argv),
    )
    monkeypatch.setattr(
        "django.contrib.auth.management.commands.changepassword.getpass.getpass",
        lambda prompt="": "Changed-2024-pw",
    )
    before = main_database_fingerprint()
    run_command("tenant_command", "--tenant", "cmdcheck", name, *args)
    assert main_database_fingerprint() == before
    if name == "dbshell":
        assert any(str(tenant.database_name) in str(part) for part in shells[0])
    if name == "loaddata":
        with use_tenant(tenant):
            assert Contact.objects.filter(pk=777, name="Loaded").exists()
        assert not Tenant.objects.filter(slug="planted").exists()
    if name == "changepassword":
        with use_tenant(tenant):
            assert User.objects.get(username="carol").check_password("Changed-2024-pw")


# --- 3, 4. domains ---------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["active", "suspended", "dropped"])
def test_patch_refuses_the_implicit_host_of_another_tenant(
    as_staff, acme, tenant_factory, base_domain, status
):
    other = tenant_factory("initech")
    if status != "active":
        services.tenant_suspend(other)
    if status == "dropped":
        services.tenant_drop(other)
    response = client_for("acme.test").patch(
        "/api/platform/tenants/acme", {"domains": ["Initech.Localhost"]}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.json()
    assert "initech.localhost" in body["details"]["domains"][0]
    assert not Domain.objects.filter(domain="initech.localhost").exists()
    resolver.invalidate()
    assert resolve_tenant_from_host("initech.localhost").slug == "initech"


def test_create_refuses_a_domain_resolving_to_another_tenant_on_every_entry_point(
    as_staff, superuser_client, acme, base_domain
):
    api = client_for("acme.test").post(
        "/api/platform/tenants",
        {"slug": "pirate", "name": "Pirate", "domains": ["acme.localhost"]},
        format="json",
        **as_staff,
    )
    assert api.status_code == HTTPStatus.BAD_REQUEST
    assert "domains" in api.json()["details"]
    with pytest.raises(CommandError, match="already used by another tenant"):
        run_command("create_tenant", "pirate", "--name", "Pirate", "--domain", "acme.localhost")
    form = superuser_client.post(
        "/admin/tenants/tenant/add/",
        {
            "slug": "pirate",
            "name": "Pirate",
            "database_url": "",
            "domains-TOTAL_FORMS": "1",
            "domains-INITIAL_FORMS": "0",
            "domains-MIN_NUM_FORMS": "0",
            "domains-MAX_NUM_FORMS": "1000",
            "domains-0-domain": "acme.localhost",
        },
    )
    assert form.status_code == HTTPStatus.OK
    assert "already used by another tenant" in form.content.decode()
    assert not Tenant.objects.filter(slug="pirate").exists()


def test_too_many_domains_are_refused_before_any_is_looked_up(acme):
    from django.test.utils import CaptureQueriesContext

    domains = [f"h{index}.example.test" for index in range(100_000)]
    with (
        CaptureQueriesContext(connections["default"]) as queries,
        pytest.raises(ValidationError) as info,
    ):
        services.tenant_update(tenant=acme, domains=domains)
    assert "no more than 100" in info.value.message_dict["domains"][0]
    assert len(queries) < 10
    assert acme.domains.count() == 1


def test_a_slug_whose_implicit_host_is_another_tenants_domain_is_refused(
    tenant_factory, base_domain
):
    tenant_factory("globodyne", domains=["newco.localhost"])
    with pytest.raises(ValidationError) as info:
        services.provision_tenant(slug="newco", name="Newco", domains=[])
    assert "'newco.localhost' is a domain of tenant 'globodyne'" in str(info.value)


def test_a_dropped_tenants_domain_moves_to_another_tenant(as_staff, tenant_factory):
    old = tenant_factory("oldco", domains=["shop.example.test"])
    tenant_factory("newco", domains=["newco.test"])
    services.tenant_suspend(old)
    services.tenant_drop(old)
    response = client_for("acme.test").patch(
        "/api/platform/tenants/newco", {"domains": ["shop.example.test"]}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.OK
    assert "shop.example.test" in response.json()["domains"]
    assert Domain.objects.get(domain="shop.example.test").tenant.slug == "newco"
    resolver.invalidate()
    assert resolve_tenant_from_host("shop.example.test").slug == "newco"


def test_a_dropped_tenant_cannot_take_domains(as_staff, tenant_factory):
    old = tenant_factory("oldco")
    services.tenant_suspend(old)
    services.tenant_drop(old)
    response = client_for("acme.test").patch(
        "/api/platform/tenants/oldco", {"domains": ["fresh.test"]}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Domain.objects.filter(domain="fresh.test").exists()


# --- 5. databases a tenant does not own -------------------------------------------------------
def _url_for(name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def test_a_database_url_naming_another_tenants_database_is_refused(acme):
    with pytest.raises(ValidationError) as info:
        services.validate_tenant_input(
            slug="squatter",
            name="Squatter",
            database_url=_url_for(aliases.database_name_for("acme")),
        )
    assert "database_url" in info.value.message_dict


@pytest.mark.skipif(not POSTGRES, reason="the SQLite template is a file, not a database URL")
def test_a_database_url_naming_the_template_is_refused(tenant_databases):
    template = aliases.database_name_for(aliases.TEMPLATE_SLUG)
    with pytest.raises(ValidationError) as info:
        services.validate_tenant_input(
            slug="squatter", name="Squatter", database_url=_url_for(template)
        )
    assert "reserved" in info.value.message_dict["database_url"][0]


@pytest.mark.skipif(not POSTGRES, reason="the main database is a PostgreSQL one only there")
@pytest.mark.parametrize("which", ["main", "postgres"])
def test_a_database_url_naming_the_main_or_a_system_database_is_refused(tenant_databases, which):
    name = connections["default"].settings_dict["NAME"] if which == "main" else "postgres"
    with pytest.raises(CommandError, match="reserved"):
        run_command("create_tenant", "squatter", "--name", "S", "--database-url", _url_for(name))
    assert not Tenant.objects.filter(slug="squatter").exists()


def test_drop_tenant_never_drops_a_database_another_tenant_uses(acme):
    twin = Tenant.objects.create(
        slug="twin", name="Twin", status=Tenant.Status.SUSPENDED, database_name=acme.database_name
    )
    with pytest.raises(CommandError, match="not owned by 'twin' alone"):
        run_command("drop_tenant", "twin", "--yes")
    assert servers.database_exists(aliases.tenant_database_settings(acme))
    assert Tenant.objects.get(pk=twin.pk).status == Tenant.Status.SUSPENDED


# --- 7. SQLite under concurrent writers -----------------------------------------------------
@pytest.mark.skipif(POSTGRES, reason="SQLite's single-writer lock")
def test_sqlite_aliases_take_the_write_lock_at_begin_and_wait_for_it(acme):
    for cfg in (settings.DATABASES["default"], connections.settings[acme.alias]):
        assert cfg["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert cfg["OPTIONS"]["timeout"] >= 5
        assert "journal_mode=WAL" in cfg["OPTIONS"]["init_command"]


@pytest.mark.skipif(POSTGRES, reason="SQLite's single-writer lock")
def test_concurrent_read_then_write_transactions_on_sqlite_never_fail(tenant_factory):
    tenant = tenant_factory("busyco")
    workers, rounds = 6, 5
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            with use_tenant(tenant):
                barrier.wait()
                for round_ in range(rounds):
                    with transaction.atomic(using=tenant.alias):
                        Contact.objects.count()  # a read first: the lock upgrade that fails
                        threading.Event().wait(0.01)
                        Contact.objects.create(name=f"w{index}-{round_}")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [e for e in errors if isinstance(e, OperationalError)] == []
    assert errors == []
    with use_tenant(tenant):
        assert Contact.objects.count() == workers * rounds


@pytest.mark.skipif(POSTGRES, reason="SQLite's single-writer lock")
def test_concurrent_signups_on_sqlite_never_answer_500(tenant_factory):
    tenant_factory("signupco")
    # Resolved once here: the threads then read no main-database row, which the test's own
    # uncommitted transaction on the in-memory main database would lock.
    assert resolve_tenant_from_host("signupco.test") is not None
    workers = 4
    barrier = threading.Barrier(workers)
    statuses: list[int] = []

    def signup(index: int) -> None:
        try:
            barrier.wait()
            response = client_for("signupco.test").post(
                "/api/auth/signup",
                {"username": f"u{index}", "email": f"u{index}@s.test", "password": PASSWORD},
                format="json",
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=signup, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [HTTPStatus.CREATED] * workers


# --- 8. the platform admin lists only what it can open ----------------------------------------
def test_the_platform_admin_lists_no_tenant_only_model():
    labels = {model._meta.label for model in admin.site._registry}
    assert "token_blacklist.BlacklistedToken" not in labels
    assert "token_blacklist.OutstandingToken" not in labels


def test_every_model_the_admin_index_lists_opens_for_a_superuser(superuser_client, acme):
    index = superuser_client.get(reverse("admin:index"))
    assert index.status_code == HTTPStatus.OK
    listed = [
        model["admin_url"]
        for app in index.context["app_list"]
        for model in app["models"]
        if model.get("admin_url")
    ]
    assert listed
    for url in listed:
        assert superuser_client.get(url).status_code == HTTPStatus.OK, url


def test_a_database_url_of_another_engine_does_not_inherit_the_main_databases_options():
    main_is_postgresql = aliases.is_postgresql(connections.settings["default"])
    url = "sqlite:////tmp/other.sqlite3" if main_is_postgresql else "postgres://u@db.test/x"
    cfg = aliases.server_settings(url)
    assert aliases.is_postgresql(cfg) is not main_is_postgresql
    if main_is_postgresql:
        assert cfg["OPTIONS"] == aliases.SQLITE_OPTIONS
    else:
        assert cfg["OPTIONS"] == {"connect_timeout": 5}


@pytest.mark.skipif(aliases.is_postgresql(connections.settings["default"]), reason="SQLite files")
def test_a_missing_tenant_file_is_503_and_never_recreated_empty(tenant_factory):
    tenant = tenant_factory("vanished")
    path = Path(aliases.tenant_database_settings(tenant)["NAME"])
    aliases.unregister_alias(tenant.alias)
    connections.close_all()
    path.rename(path.with_suffix(".moved"))
    try:
        response = client_for("vanished.test").post(
            "/api/auth/signup",
            {"username": "newbie", "email": "n@example.test", "password": "Sup3r-Secret-pw"},
            format="json",
        )
        assert (response.status_code, response.json()["message"]) == (
            503,
            "Tenant database unavailable",
        )
        assert not path.exists()
    finally:
        aliases.unregister_alias(tenant.alias)
        breaker._failed_at.pop(tenant.alias, None)  # /ready would count it for minutes
        path.with_suffix(".moved").rename(path)
