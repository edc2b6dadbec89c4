"""The tenant lifecycle for staff: back up, export, download and move a tenant through the
platform API and the admin, each recorded in the platform audit trail (who, what, outcome).
A tenant's token reaches none of it; one tenant's archive is never served as another's."""

from __future__ import annotations

import hashlib
import tarfile
import zipfile
from http import HTTPStatus
from io import BytesIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections

from accounts import audit
from accounts.models import AuditEvent
from tenants.db import aliases, servers
from tenants.models import Tenant, TenantArchive
from tenants.services import provision_tenant
from tests.factories import bearer_for, create_contact
from tests.helpers import POSTGRES, client_for

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def _own_archive_dir(settings, tmp_path):
    settings.TENANT_ARCHIVE_DIR = tmp_path / "archives"


def platform(method: str, path: str, headers: dict, **kwargs):
    return getattr(client_for("anything.test"), method)(path, format="json", **headers, **kwargs)


def trail(event: str, slug: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.using("default").filter(event=event, target_id=slug))


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


# --- the platform API -----------------------------------------------------------------------
def test_staff_back_up_a_tenant_and_download_the_file(as_staff, staff, acme):
    response = platform("post", "/api/platform/tenants/acme/backups", as_staff)
    assert response.status_code == HTTPStatus.CREATED, response.json()
    archive = response.json()
    assert archive["kind"] == "backup" and archive["available"] is True
    assert archive["created_by"] == staff.username
    assert "/" not in archive["file"] and archive["file"].endswith(".tar")
    row = TenantArchive.objects.get(pk=archive["id"])
    path = Path(row.path)
    assert path.parent == Path(django_settings.TENANT_ARCHIVE_DIR)
    with tarfile.open(path) as tar:
        assert "manifest.json" in tar.getnames()

    download = platform("get", f"/api/platform/tenants/acme/archives/{archive['id']}", as_staff)
    assert download.status_code == HTTPStatus.OK
    assert archive["file"] in download["Content-Disposition"]
    content = body_of(download)
    assert content == path.read_bytes()
    assert hashlib.sha256(content).hexdigest() == archive["sha256"]

    (event,) = trail(audit.TENANT_BACKED_UP, "acme")
    assert event.actor_username == staff.username
    assert event.details["outcome"] == "ok"


def test_staff_export_a_tenant_and_list_its_archives(as_staff, staff, tenant_factory):
    leaving = tenant_factory("leaving")
    create_contact(leaving, "Kept Contact")
    response = platform("post", "/api/platform/tenants/leaving/exports", as_staff)
    assert response.status_code == HTTPStatus.CREATED, response.json()
    export = response.json()
    assert export["kind"] == "export" and export["file"].endswith(".zip")
    content = body_of(
        platform("get", f"/api/platform/tenants/leaving/archives/{export['id']}", as_staff)
    )
    with zipfile.ZipFile(BytesIO(content)) as archive:
        contacts = archive.read("data/addressbook.contact.jsonl").decode()
    assert "Kept Contact" in contacts

    backup = platform("post", "/api/platform/tenants/leaving/backups", as_staff).json()
    listed = platform("get", "/api/platform/tenants/leaving/archives", as_staff).json()
    assert listed["count"] == 2
    assert [a["id"] for a in listed["results"]] == [backup["id"], export["id"]]  # newest first
    (event,) = trail(audit.TENANT_EXPORTED, "leaving")
    assert (event.actor_username, event.details["outcome"]) == (staff.username, "ok")


def test_an_archive_is_served_only_under_its_own_tenant(as_staff, acme, globex):
    archive = platform("post", "/api/platform/tenants/acme/backups", as_staff).json()
    other = platform("get", f"/api/platform/tenants/globex/archives/{archive['id']}", as_staff)
    assert other.status_code == HTTPStatus.NOT_FOUND
    assert other.json()["message"]
    listed = platform("get", "/api/platform/tenants/globex/archives", as_staff).json()
    assert archive["id"] not in [a["id"] for a in listed["results"]]


def test_a_deleted_or_missing_archive_file_is_404(as_staff, acme):
    archive = platform("post", "/api/platform/tenants/acme/backups", as_staff).json()
    Path(TenantArchive.objects.get(pk=archive["id"]).path).unlink()
    gone = platform("get", f"/api/platform/tenants/acme/archives/{archive['id']}", as_staff)
    assert gone.status_code == HTTPStatus.NOT_FOUND
    listed = platform("get", "/api/platform/tenants/acme/archives", as_staff).json()
    assert listed["results"][0]["available"] is False


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/platform/tenants/acme/backups"),
        ("post", "/api/platform/tenants/acme/exports"),
        ("get", "/api/platform/tenants/acme/archives"),
        ("get", "/api/platform/tenants/acme/archives/1"),
        ("get", "/api/platform/tenants/acme/move"),
        ("post", "/api/platform/tenants/acme/move"),
        ("post", "/api/platform/tenants/acme/move/finish"),
    ],
)
def test_tenant_tokens_and_anonymous_clients_reach_no_lifecycle_action(
    acme, make_user, method, path
):
    admin = bearer_for(make_user(acme, "boss", role="admin"), acme)
    before = TenantArchive.objects.count()
    refused = getattr(client_for("acme.test"), method)(path, format="json", **admin)
    assert refused.status_code == HTTPStatus.FORBIDDEN
    anonymous = getattr(client_for("acme.test"), method)(path, format="json")
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    assert anonymous.json()["message"] == "Missing authorization header"
    assert TenantArchive.objects.count() == before


def test_a_dropped_tenant_is_neither_backed_up_nor_exported(as_staff, tenant_factory):
    gone = tenant_factory("gone")
    Tenant.objects.filter(pk=gone.pk).update(status=Tenant.Status.DROPPED)
    for kind in ("backups", "exports"):
        response = platform("post", f"/api/platform/tenants/gone/{kind}", as_staff)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["error"] == "Bad Request"
    assert not TenantArchive.objects.filter(tenant=gone).exists()
    archive_dir = Path(django_settings.TENANT_ARCHIVE_DIR)
    assert not archive_dir.exists() or not [p for p in archive_dir.iterdir() if "gone" in p.name]


def test_unknown_tenant_is_404(as_staff):
    for method, path in (("post", "backups"), ("post", "exports"), ("get", "archives")):
        response = platform(method, f"/api/platform/tenants/nobody/{path}", as_staff)
        assert response.status_code == HTTPStatus.NOT_FOUND


def test_a_move_to_an_unknown_server_is_a_400_and_changes_nothing(as_staff, acme):
    response = platform(
        "post", "/api/platform/tenants/acme/move", as_staff, data={"server": "nowhere"}
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "nowhere" in response.json()["details"]["server"][0]
    acme.refresh_from_db()
    assert acme.server_name == "default"
    unknown_field = platform(
        "post", "/api/platform/tenants/acme/move", as_staff, data={"server": "x1", "to": "y"}
    )
    assert unknown_field.status_code == HTTPStatus.BAD_REQUEST


def test_finish_without_a_move_is_a_400(as_staff, acme):
    response = platform("post", "/api/platform/tenants/acme/move/finish", as_staff)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "no move to finish" in response.json()["details"]["move"][0]
    assert platform("get", "/api/platform/tenants/acme/move", as_staff).status_code == 404


# --- the admin ------------------------------------------------------------------------------
def test_admin_backs_up_and_exports_selected_tenants_with_download_links(superuser_client, acme):
    changelist = "/admin/tenants/tenant/"
    for action in ("backup_selected", "export_selected"):
        response = superuser_client.post(
            changelist, {"action": action, "_selected_action": [acme.pk]}, follow=True
        )
        assert response.status_code == HTTPStatus.OK
    kinds = sorted(TenantArchive.objects.filter(tenant=acme).values_list("kind", flat=True))
    assert kinds == ["backup", "export"]
    for event in (audit.TENANT_BACKED_UP, audit.TENANT_EXPORTED):
        (row,) = trail(event, "acme")
        assert (row.actor_username, row.details["outcome"]) == ("superuser", "ok")

    page = superuser_client.get(f"/admin/tenants/tenant/{acme.pk}/change/").content.decode()
    archive = TenantArchive.objects.filter(tenant=acme, kind="backup").get()
    link = f"/admin/tenants/tenant/{acme.pk}/archives/{archive.pk}/"
    assert link in page
    download = superuser_client.get(link)
    assert body_of(download) == Path(archive.path).read_bytes()
    # Under another tenant's id, the archive is not there.
    assert (
        superuser_client.get(f"/admin/tenants/tenant/0/archives/{archive.pk}/").status_code == 404
    )


def test_admin_archive_download_needs_a_staff_session(client, superuser_client, acme):
    superuser_client.post(
        "/admin/tenants/tenant/", {"action": "backup_selected", "_selected_action": [acme.pk]}
    )
    archive = TenantArchive.objects.get(tenant=acme)
    response = client.get(f"/admin/tenants/tenant/{acme.pk}/archives/{archive.pk}/")
    assert response.status_code == HTTPStatus.FOUND
    assert "/admin/login/" in response["Location"]


def test_admin_move_action_asks_for_the_server_first(superuser_client, acme):
    response = superuser_client.post(
        "/admin/tenants/tenant/", {"action": "move_selected", "_selected_action": [acme.pk]}
    )
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert 'name="server"' in page and "acme" in page
    acme.refresh_from_db()
    assert acme.server_name == "default"


# --- a move, on PostgreSQL with the second server ----------------------------------------------
@pytest.fixture
def staffmove(second_server, tenant_databases):
    """A tenant on the default server; its databases on both servers dropped afterwards."""
    tenant = provision_tenant(
        slug="staffmove", name="Staff Move", domains=["staffmove.test"], server="default"
    )
    create_contact(tenant, "Moved Along")
    yield tenant
    connections.close_all()
    for server in (None, second_server):
        aliases.unregister_alias(
            aliases.alias_for(tenant.slug, server.name if server else "default")
        )
        cfg = aliases.settings_of_server(server, admin=True)
        cfg["NAME"] = aliases.database_name_for(tenant.slug, server=server)
        servers.drop_database(cfg)


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL leg: a move copies with pg_dump")
def test_staff_move_a_tenant_through_the_api_and_finish_it(
    as_staff, staff, staffmove, second_server, settings
):
    settings.TENANT_CACHE_TTL = 0.2  # the source is dropped once every process saw the flip
    path = "/api/platform/tenants/staffmove/move"
    same = platform("post", path, as_staff, data={"server": "default"})
    assert same.status_code == HTTPStatus.BAD_REQUEST
    assert "already" in same.json()["details"]["server"][0]

    response = platform("post", path, as_staff, data={"server": second_server.name})
    assert response.status_code == HTTPStatus.OK, response.json()
    move = response.json()
    assert (move["source_server"], move["target_server"]) == ("default", second_server.name)
    assert move["state"] == "switched" and move["started_by"] == staff.username
    assert platform("get", path, as_staff).json()["id"] == move["id"]
    staffmove.refresh_from_db()
    assert staffmove.server == second_server

    finished = platform("post", f"{path}/finish", as_staff)
    assert finished.status_code == HTTPStatus.OK, finished.json()
    assert finished.json()["state"] == "finished"
    source = aliases.settings_of_server(None, admin=True)
    source["NAME"] = aliases.database_name_for("staffmove", server=None)
    assert not servers.database_exists(source)
    events = trail(audit.TENANT_MOVED, "staffmove")
    assert {e.details["outcome"] for e in events} == {"ok"}
    assert {e.actor_username for e in events} == {staff.username}


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL leg: a move copies with pg_dump")
def test_admin_moves_a_tenant_to_the_server_chosen(superuser_client, staffmove, second_server):
    response = superuser_client.post(
        "/admin/tenants/tenant/",
        {
            "action": "move_selected",
            "_selected_action": [staffmove.pk],
            "apply": "Move",
            "server": second_server.name,
            "drop_source": "on",
        },
        follow=True,
    )
    assert response.status_code == HTTPStatus.OK
    staffmove.refresh_from_db()
    assert staffmove.server == second_server
    (event,) = [e for e in trail(audit.TENANT_MOVED, "staffmove")]
    assert (event.actor_username, event.details["outcome"]) == ("superuser", "ok")
