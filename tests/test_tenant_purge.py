"""purge_tenant: the last step of offboarding. Only a dropped tenant, only after the
retention period; removes its archives, a leftover database, its domains and its database
URL; the row stays `purged`, a tombstone whose slug is never reused and whose hosts answer
404. A purge killed at any step is finished by running it again, touching no other tenant."""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import contextmanager
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from accounts import audit
from accounts.models import AuditEvent
from addressbook.models import Contact
from tenants import services
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.lifecycle.export import export_tenant, partial_path
from tenants.lifecycle.purge import purge_possible_from, purge_tenant
from tenants.models import Domain, Tenant, TenantArchive
from tenants.selectors import database_server_list, probe_tenant_database
from tests.factories import create_contact
from tests.helpers import POSTGRES, client_for, run_command
from tests.lifecycle_world import world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def retention(settings):
    settings.TENANT_PURGE_RETENTION_DAYS = 30
    return 30


@pytest.fixture
def offboarded(tenant_factory, tmp_path, retention):
    """`offboard(slug)`: a tenant with a contact and an export, suspended, dropped and its
    retention period over; returns it with `.export_path`."""

    def offboard(slug: str, *, days_ago: int = retention + 1, **kwargs) -> Tenant:
        tenant = tenant_factory(slug, **kwargs)
        create_contact(tenant, "Customer data")
        archive = export_tenant(tenant, output=tmp_path / f"{slug}.zip")
        services.tenant_suspend(tenant)
        services.tenant_drop(tenant)
        Tenant.objects.filter(pk=tenant.pk).update(
            dropped_at=timezone.now() - timedelta(days=days_ago)
        )
        tenant.refresh_from_db()
        tenant.export_path = Path(archive.path)
        return tenant

    return offboard


@contextmanager
def database_name_of(tenant: Tenant, name: str):
    """Point the tenant (row and object) at database `name` for the block, then back: the
    tenant_factory's clean-up drops the database the object names."""
    own = tenant.database_name
    Tenant.objects.filter(pk=tenant.pk).update(database_name=name)
    tenant.refresh_from_db()
    try:
        yield
    finally:
        Tenant.objects.filter(pk=tenant.pk).update(database_name=own)
        tenant.database_name = own


def unchanged(tenant: Tenant) -> None:
    """Assert that nothing of a dropped `tenant` was purged."""
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.DROPPED
    assert tenant.domains.exists()
    assert tenant.export_path.exists()
    assert not tenant.archives.filter(deleted_at__isnull=False).exists()


# --- which tenants, and when --------------------------------------------------------------
@pytest.mark.parametrize("status", [Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED])
def test_only_a_dropped_tenant_is_purged(tenant_factory, status):
    tenant = tenant_factory("staying")
    if status == Tenant.Status.SUSPENDED:
        services.tenant_suspend(tenant)
    with pytest.raises(ValidationError, match=f"Only a dropped tenant.*'staying' is {status}"):
        purge_tenant(tenant)
    tenant.refresh_from_db()
    assert tenant.status == status
    assert servers.database_exists(aliases.tenant_database_settings(tenant))


def test_within_the_retention_period_the_error_names_the_date_and_nothing_changes(offboarded):
    tenant = offboarded("early", days_ago=10)
    possible = purge_possible_from(tenant)
    assert possible == tenant.dropped_at + timedelta(days=30)
    with pytest.raises(ValidationError) as error:
        purge_tenant(tenant)
    assert f"can be purged from {possible:%Y-%m-%d %H:%M} UTC" in error.value.messages[0]
    assert "Nothing was changed" in error.value.messages[0]
    unchanged(tenant)


def test_the_retention_period_ends_at_the_setting(offboarded, settings):
    settings.TENANT_PURGE_RETENTION_DAYS = 7
    tenant = offboarded("weekly", days_ago=0)
    end = tenant.dropped_at + timedelta(days=7)
    with pytest.raises(ValidationError, match="can be purged from"):
        purge_tenant(tenant, now=end - timedelta(seconds=1))
    unchanged(tenant)
    assert purge_tenant(tenant, now=end).status == Tenant.Status.PURGED


# --- what it removes ----------------------------------------------------------------------
def test_purge_removes_archives_domains_and_keeps_a_tombstone(offboarded, tmp_path):
    tenant = offboarded("leaver")
    backup = tmp_path / "leaver.dump"
    backup.write_bytes(b"a backup")
    TenantArchive.objects.create(
        tenant=tenant,
        kind=TenantArchive.Kind.BACKUP,
        path=str(backup),
        sha256=hashlib.sha256(b"a backup").hexdigest(),
    )
    killed_export = tmp_path / "killed.zip"
    partial_path(killed_export).write_bytes(b"half an archive")
    TenantArchive.objects.create(tenant=tenant, kind="export", path=str(killed_export))
    now = timezone.now()

    purged = purge_tenant(tenant, now=now)

    assert purged.status == Tenant.Status.PURGED
    assert Tenant.objects.get(slug="leaver").status == Tenant.Status.PURGED
    assert not Domain.objects.filter(tenant=tenant).exists()
    assert list(tmp_path.iterdir()) == []
    assert set(tenant.archives.values_list("deleted_at", flat=True)) == {now}


@pytest.mark.skipif(not POSTGRES, reason="a tenant's own database URL is a postgres:// URL")
def test_purge_forgets_the_database_url_and_drops_its_leftover_database(offboarded, settings):
    main = connections.settings["default"]
    name = f"test_own_{settings.TEST_RUN_TAG or 'main'}_url"
    url = f"postgres://{main['USER']}:not-a-real-pw@{main['HOST']}:{main['PORT']}/{name}"
    tenant = offboarded("ownurl", database_url=url)
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    assert cfg["NAME"] == name
    servers.create_database(cfg)  # what a restore after the drop would leave

    purge_tenant(tenant)

    tenant.refresh_from_db()
    assert tenant.database_url == ""
    assert not servers.database_exists(cfg)


def test_a_leftover_database_is_dropped(offboarded):
    tenant = offboarded("leftover")
    cfg = aliases.tenant_database_settings(tenant, admin=True)
    servers.create_database(cfg)
    assert servers.database_exists(cfg)
    purge_tenant(tenant)
    assert not servers.database_exists(cfg)
    event = AuditEvent.objects.using("default").get(event=audit.TENANT_PURGED)
    assert event.details["database_dropped"] is True


def test_a_database_another_tenant_uses_is_never_dropped(offboarded, tenant_factory):
    victim = tenant_factory("victim")
    create_contact(victim, "Still here")
    tenant = offboarded("greedy")
    with database_name_of(tenant, victim.database_name):
        with pytest.raises(ValidationError, match="not owned by 'greedy' alone"):
            purge_tenant(tenant)
        unchanged(tenant)
    with use_tenant(victim):
        assert Contact.objects.filter(name="Still here").exists()


@pytest.mark.parametrize("which", ["template", "main"])
def test_the_template_and_the_main_database_are_never_dropped(offboarded, which):
    if which == "main" and not POSTGRES:
        pytest.skip("the suite's SQLite main database is in memory, not a tenant's file")
    tenant = offboarded(f"reserved-{which}")
    name = (
        aliases.database_name_for(aliases.TEMPLATE_SLUG)
        if which == "template"
        else connections.settings["default"]["NAME"]
    )
    with database_name_of(tenant, name):
        assert servers.database_exists(aliases.tenant_database_settings(tenant, admin=True))
        with pytest.raises(ValidationError, match="not owned by"):
            purge_tenant(tenant)
        unchanged(tenant)
        assert servers.database_exists(aliases.tenant_database_settings(tenant, admin=True))


def test_a_tenant_on_the_second_server_is_purged_there_and_the_first_is_untouched(
    offboarded, tenant_factory, second_server
):
    near = tenant_factory("near")
    create_contact(near, "On the first server")
    far = offboarded("far", server=second_server.name)
    assert far.server == second_server
    # A leftover of `far` named like `near`'s database, on far's own server.
    if POSTGRES:
        name = near.database_name
    else:
        name = str(Path(far.database_name).with_name(Path(near.database_name).name))
    with database_name_of(far, name):
        cfg = aliases.tenant_database_settings(far, admin=True)
        servers.create_database(cfg)
        purge_tenant(far)
        assert not servers.database_exists(cfg)
    assert servers.database_exists(aliases.tenant_database_settings(near, admin=True))
    with use_tenant(near):
        assert Contact.objects.filter(name="On the first server").exists()


def test_an_unreachable_server_stops_the_purge_before_any_change(
    offboarded, second_server, second_database_server
):
    tenant = offboarded("unreached", server=second_server.name)
    with second_database_server.unreachable():
        with pytest.raises(ValidationError, match="cannot be told") as error:
            purge_tenant(tenant)
        unchanged(tenant)
    assert "@" not in error.value.messages[0]


def test_a_file_that_is_no_longer_the_archive_written_is_kept(offboarded):
    tenant = offboarded("replaced")
    tenant.export_path.write_text("someone else's file now")
    purge_tenant(tenant)
    assert tenant.export_path.read_text() == "someone else's file now"
    event = AuditEvent.objects.using("default").get(event=audit.TENANT_PURGED)
    assert (event.details["archives_deleted"], event.details["archives_kept"]) == (0, 1)


def test_the_purge_is_audited_with_its_actor(offboarded, staff):
    tenant = offboarded("audited")
    purge_tenant(tenant, actor=staff)
    event = AuditEvent.objects.using("default").get(event=audit.TENANT_PURGED)
    assert (event.target_id, event.actor_username) == ("audited", "root")
    assert event.details["outcome"] == "ok"
    assert event.details["archives_deleted"] == 1
    assert event.details["domains"] == 1


# --- the tombstone ------------------------------------------------------------------------
def test_a_purged_slug_is_never_reused_by_any_entry_point(offboarded, as_staff, superuser_client):
    purge_tenant(offboarded("tombstone"))
    with pytest.raises(ValidationError, match="exists and is purged"):
        services.provision_tenant(slug="tombstone", name="Again", domains=["again.test"])
    with pytest.raises(CommandError, match="exists and is purged"):
        run_command("create_tenant", "tombstone", "--name", "Again")
    response = client_for("acme.test").post(
        "/api/platform/tenants", {"slug": "tombstone", "name": "Again"}, format="json", **as_staff
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    form = {
        "slug": "tombstone",
        "name": "Again",
        "database_url": "",
        "domains-TOTAL_FORMS": "0",
        "domains-INITIAL_FORMS": "0",
        "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000",
    }
    admin_page = superuser_client.post(reverse("admin:tenants_tenant_add"), form)
    assert admin_page.status_code == HTTPStatus.OK
    assert "slugs are never reused" in admin_page.content.decode()
    assert Tenant.objects.get(slug="tombstone").status == Tenant.Status.PURGED
    assert not Domain.objects.filter(domain="again.test").exists()


def test_a_purged_tenants_hosts_answer_404_unknown_tenant(offboarded, settings):
    purge_tenant(offboarded("ghost"))
    settings.TENANT_BASE_DOMAIN = "localhost"
    for host in ("ghost.test", "ghost.localhost"):
        response = client_for(host).get("/api/address-book")
        assert response.status_code == HTTPStatus.NOT_FOUND, host
        assert response.json()["message"] == "Unknown tenant"
    settings.TENANT_DEFAULT = "ghost"
    response = client_for("nowhere.test").get("/api/address-book")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["message"] == "Unknown tenant"


def test_a_purged_tenant_is_treated_at_least_as_strictly_as_a_dropped_one(
    offboarded, superuser_client
):
    tenant = purge_tenant(offboarded("strict"))
    with pytest.raises(ValidationError, match="purged tenant cannot be suspended"):
        services.tenant_suspend(tenant)
    with pytest.raises(ValidationError, match="purged tenant cannot take domains"):
        services.tenant_update(tenant=tenant, domains=["strict-again.test"])
    with pytest.raises(ValidationError, match="Only a suspended tenant"):
        services.tenant_activate(tenant)
    assert not probe_tenant_database(tenant).reachable
    default = next(s for s in database_server_list() if s.name == aliases.DEFAULT_SERVER)
    assert (
        default.tenant_count
        == Tenant.objects.exclude(status__in=Tenant.GONE_STATUSES).filter(server=default).count()
    )
    rows = {row["slug"]: row for row in json.loads(run_command("list_tenants", "--json"))}
    assert rows["strict"]["status"] == "purged"
    assert rows["strict"]["domains"] == []
    assert rows["strict"]["pending_migrations"] == "-"
    superuser_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "suspend_selected", "_selected_action": [tenant.pk]},
    )
    superuser_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "provision_selected", "_selected_action": [tenant.pk]},
    )
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.PURGED


# --- the command --------------------------------------------------------------------------
def test_the_command_without_yes_and_no_terminal_changes_nothing(offboarded, monkeypatch):
    tenant = offboarded("noyes")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--yes"):
        run_command("purge_tenant", "noyes")
    unchanged(tenant)


def test_the_command_with_yes_purges_once(offboarded):
    tenant = offboarded("withyes")
    out = run_command("purge_tenant", "withyes", "--yes")
    assert "purged" in out
    assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.PURGED
    with pytest.raises(CommandError, match="'withyes' is purged"):
        run_command("purge_tenant", "withyes", "--yes")
    with pytest.raises(CommandError, match="Unknown tenant 'nobody'"):
        run_command("purge_tenant", "nobody", "--yes")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "purged"), [("typed", True), ("something else", False)])
def test_the_command_on_a_terminal_purges_only_when_the_slug_is_typed(
    offboarded, monkeypatch, answer, purged
):
    tenant = offboarded("typed")
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    if purged:
        run_command("purge_tenant", "typed")
        assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.PURGED
    else:
        with pytest.raises(CommandError, match="Not confirmed"):
            run_command("purge_tenant", "typed")
        unchanged(tenant)


def test_the_command_within_the_retention_period_fails_before_asking(offboarded, monkeypatch):
    tenant = offboarded("asking", days_ago=1)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="can be purged from"):
        run_command("purge_tenant", "asking")
    unchanged(tenant)


# --- killed at each step ------------------------------------------------------------------
STEPS = ["archives", "database", "domains", "tombstone"]
SETUP = """
import json
from contextlib import contextmanager
from datetime import timedelta
from django.utils import timezone
from tenants import services
from tenants.db import aliases, servers
from tenants.lifecycle.export import export_tenant
from tenants.models import Tenant
from tests.factories import create_contact
for slug in {slugs!r} + ["bystander"]:
    tenant = services.provision_tenant(slug=slug, name=slug, domains=[slug + ".test"])
    for i in range(25):
        create_contact(tenant, "contact %d" % i)
    export_tenant(tenant, output={tmp!r} + "/" + slug + ".zip")
    if slug == "bystander":
        continue
    services.tenant_suspend(tenant)
    services.tenant_drop(tenant)
    # A database of it still there (a restore after the drop), for the database step.
    servers.create_database(aliases.tenant_database_settings(tenant, admin=True))
    Tenant.objects.filter(pk=tenant.pk).update(dropped_at=timezone.now() - timedelta(days=400))
print(json.dumps("ok"))
"""
STATE = """
import json
from pathlib import Path
from addressbook.models import Contact
from tenants.context import use_tenant
from tenants.db import aliases, servers
from tenants.models import Tenant
found = {}
for tenant in Tenant.objects.all():
    archives = list(tenant.archives.all())
    found[tenant.slug] = {
        "status": tenant.status,
        "domains": [d.domain for d in tenant.domains.all()],
        "files": [Path(a.path).exists() for a in archives],
        "deleted": [a.deleted_at is not None for a in archives],
        "database": servers.database_exists(aliases.tenant_database_settings(tenant, admin=True)),
    }
    if tenant.status == "active":
        with use_tenant(tenant):
            found[tenant.slug]["contacts"] = Contact.objects.count()
print(json.dumps(found))
"""


def test_a_purge_killed_at_any_step_is_finished_by_running_it_again(world):  # noqa: F811
    slugs = [f"purge-{step}" for step in STEPS]
    assert world.shell(SETUP.format(slugs=slugs, tmp=str(world.tmp))) == "ok"
    bystander = world.shell(STATE)["bystander"]

    for step, slug in zip(STEPS, slugs, strict=True):
        world.killed(f"purge:{step}", "purge_tenant", slug, "--yes")
    killed = world.shell(STATE)
    assert killed["purge-archives"]["files"] == [True]  # killed before the first step
    assert killed["purge-database"]["files"] == [False]
    assert killed["purge-database"]["database"] is True
    assert killed["purge-domains"]["database"] is False
    assert killed["purge-domains"]["domains"] == ["purge-domains.test"]
    assert killed["purge-tombstone"]["domains"] == []
    assert {killed[slug]["status"] for slug in slugs} == {"dropped"}

    for slug in slugs:
        result = world.manage("purge_tenant", slug, "--yes")
        assert result.returncode == 0, (slug, result.stderr)
    finished = world.shell(STATE)
    for slug in slugs:
        assert finished[slug] == {
            "status": "purged",
            "domains": [],
            "files": [False],
            "deleted": [True],
            "database": False,
        }, slug
    assert finished["bystander"] == bystander
    assert bystander == {
        "status": "active",
        "domains": ["bystander.test"],
        "files": [True],
        "deleted": [False],
        "database": True,
        "contacts": 25,
    }
