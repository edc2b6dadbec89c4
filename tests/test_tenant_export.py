"""export_tenant: one tenant's data as a portable archive (a zip of one JSON-lines file per
model, a README and a manifest), secrets left out; an existing path is never overwritten;
a run killed at any step is finished by running it again."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import zipfile
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import CommandError
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import audit
from accounts.models import AuditEvent, RecoveryCode, RevokedToken, TotpDevice, User
from addressbook.models import Contact
from tenants import lifecycle, services
from tenants.context import use_tenant
from tenants.lifecycle import export
from tenants.lifecycle.export import export_tenant, partial_path
from tenants.models import Tenant, TenantArchive
from tests.factories import PASSWORD, create_api_key, create_audit_event, create_contact
from tests.helpers import run_command
from tests.lifecycle_world import world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(databases="__all__")

# A column of an exported model whose name says it may hold a secret.
SECRET_NAME = re.compile(r"pass|secret|token|hash|digest|code|jti|seed", re.I)
# ...and is no secret all the same.
NAMED_LIKE_A_SECRET = {("accounts.user", "tokens_valid_after")}  # a time


def read_archive(path: Path) -> tuple[dict, str, dict[str, list[dict]], dict[str, bytes]]:
    """(manifest, README, rows per data file, raw bytes per member) of an archive."""
    with zipfile.ZipFile(path) as archive:
        raw = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(raw[export.MANIFEST_NAME])
    data = {
        name: [json.loads(line) for line in content.decode().splitlines()]
        for name, content in raw.items()
        if name.startswith(f"{export.DATA_DIR}/")
    }
    return manifest, raw[export.README_NAME].decode(), data, raw


@pytest.fixture
def rich(tenant_factory, make_user):
    """A tenant with data in every exported model and a secret in every excluded place:
    `(tenant, secrets)`."""
    tenant = tenant_factory("hooli")
    gavin = make_user(tenant, "gavin", email="gavin@hooli.test")
    _, key = create_api_key(tenant, gavin, scopes=("contacts:read",), name="nightly")
    with use_tenant(tenant):
        device = TotpDevice.objects.create(user=gavin, secret="JBSWY3DPEHPK3PXPJBSWY3DP")
        code = RecoveryCode.objects.create(user=gavin, code_hash="c0de" * 16)
        RevokedToken.objects.create(
            jti="jti-revoked-4f6a9c", user_id=gavin.pk, expires_at=timezone.now()
        )
        password_hash = User.objects.get(pk=gavin.pk).password
    create_audit_event(tenant, "login", actor_id=gavin.pk, actor_username="gavin")
    create_contact(tenant, "Zoë Ünicode", email="zoe@example.test", age=41, notes="line\nbreak")
    create_contact(tenant, "Bertram", gender="male")
    secrets = [PASSWORD, password_hash, key, key.partition(".")[2], device.secret, code.code_hash]
    return tenant, secrets


# --- what is exported ---------------------------------------------------------------------
def test_every_tenant_model_is_exported_or_excluded_with_a_reason():
    labels = {model._meta.label_lower for model in export.tenant_models()}
    assert labels == set(export.EXPORTED_MODELS) | set(export.EXCLUDED_MODELS)
    assert not set(export.EXPORTED_MODELS) & set(export.EXCLUDED_MODELS)
    assert "addressbook.contact" in export.EXPORTED_MODELS
    assert all(reason.strip() for reason in export.EXCLUDED_MODELS.values())


def test_a_model_neither_exported_nor_excluded_stops_the_export(rich, tmp_path, monkeypatch):
    tenant, _ = rich
    monkeypatch.delitem(export.EXPORTED_MODELS, "addressbook.contact")
    with pytest.raises(ImproperlyConfigured, match=r"addressbook\.contact"):
        export_tenant(tenant, output=tmp_path / "out.zip")
    assert list(tmp_path.iterdir()) == []
    assert not TenantArchive.objects.filter(tenant=tenant).exists()


def test_no_exported_field_is_named_like_a_secret():
    columns = [
        (entry.label, column.name) for entry in export.export_plan() for column in entry.columns
    ]
    assert ("accounts.user", "username") in columns
    assert [c for c in columns if SECRET_NAME.search(c[1])] == sorted(NAMED_LIKE_A_SECRET)


def test_the_archive_holds_every_row_and_no_secret(rich, tmp_path):
    tenant, secrets = rich
    archive = export_tenant(tenant, output=tmp_path / "h.zip")
    _, _, data, raw = read_archive(archive.path)

    plan = export.export_plan()
    assert set(data) == {entry.path for entry in plan}
    with use_tenant(tenant):
        contacts = list(Contact.objects.order_by("id").values())
        assert [row["id"] for row in data["data/addressbook.contact.jsonl"]] == [
            c["id"] for c in contacts
        ]
        for row, contact in zip(data["data/addressbook.contact.jsonl"], contacts, strict=True):
            assert row["name"] == contact["name"]
            assert row["notes"] == contact["notes"]
            assert row["age"] == contact["age"]
            assert row["created_at"] == contact["created_at"].isoformat().replace("+00:00", "Z")
        assert len(data["data/accounts.user.jsonl"]) == User.objects.count()
        assert len(data["data/accounts.auditevent.jsonl"]) == AuditEvent.objects.count()
    user = next(row for row in data["data/accounts.user.jsonl"] if row["username"] == "gavin")
    assert "password" not in user
    assert user["email"] == "gavin@hooli.test"
    (api_key,) = data["data/accounts.apikey.jsonl"]
    assert "secret_digest" not in api_key
    assert api_key["created_by_id"] == user["id"]
    (device,) = data["data/accounts.totpdevice.jsonl"]
    assert set(device) >= {"user_id", "confirmed_at"} and "secret" not in device
    everything = b"".join(raw.values())
    for secret in secrets:
        assert secret.encode() not in everything
    assert b"jti-revoked-4f6a9c" not in everything


def test_the_manifest_counts_and_checksums_each_file(rich, tmp_path):
    tenant, _ = rich
    manifest, _, data, raw = read_archive(export_tenant(tenant, output=tmp_path / "h.zip").path)
    assert manifest["slug"] == "hooli"
    assert manifest["format"] == export.FORMAT
    assert manifest["schema"]["addressbook"].startswith("00")
    assert {f["path"] for f in manifest["files"]} == set(data) | {export.README_NAME}
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256(raw[entry["path"]]).hexdigest()
        assert entry["bytes"] == len(raw[entry["path"]])
        if entry["path"] != export.README_NAME:
            assert entry["rows"] == len(data[entry["path"]])


def test_the_readme_describes_files_fields_and_what_is_left_out(rich, tmp_path):
    tenant, _ = rich
    _, readme, _, _ = read_archive(export_tenant(tenant, output=tmp_path / "h.zip").path)
    for entry in export.export_plan():
        assert f"`{entry.path}`" in readme
        for column in entry.columns:
            assert f"| `{column.name}` |" in readme
    assert "`accounts.user.password`" in readme
    assert "`accounts.apikey.secret_digest`" in readme
    assert "`accounts.totpdevice.secret`" in readme
    for label in export.EXCLUDED_MODELS:
        assert f"`{label}` (the whole table)" in readme
    assert "Password-reset" in readme


def test_date_times_are_written_in_utc():
    from datetime import datetime
    from datetime import timezone as tz

    paris = tz(timedelta(hours=1))
    assert export._datetime(datetime(2026, 1, 31, 10, 30, tzinfo=paris)) == "2026-01-31T09:30:00Z"
    assert export._datetime(datetime(2026, 1, 31, 9, 30, 0, 5, tzinfo=UTC)) == (
        "2026-01-31T09:30:00.000005Z"
    )
    assert export._datetime(None) is None


def test_permissions_are_written_by_natural_key(tenant_factory, make_user, tmp_path):
    from django.contrib.auth.models import Group, Permission

    tenant = tenant_factory("pied")
    user = make_user(tenant, "richard")
    with use_tenant(tenant):
        permission = Permission.objects.get(codename="view_contact")
        group = Group.objects.create(name="readers")
        group.permissions.add(permission)
        User.objects.get(pk=user.pk).groups.add(group)
    _, _, data, _ = read_archive(export_tenant(tenant, output=tmp_path / "p.zip").path)
    (link,) = data["data/auth.group_permissions.jsonl"]
    assert link["permission"] == ["view_contact", "addressbook", "contact"]
    (membership,) = data["data/accounts.user_groups.jsonl"]
    assert membership == {"id": membership["id"], "user_id": user.pk, "group_id": group.pk}


def test_rows_are_read_in_bounded_pages(tenant_factory, tmp_path, monkeypatch):
    tenant = tenant_factory("paged")
    with use_tenant(tenant):
        Contact.objects.bulk_create(Contact(name=f"c{i:02}") for i in range(30))
    monkeypatch.setattr(export, "CHUNK_SIZE", 7)
    alias = tenant.alias
    with CaptureQueriesContext(connections[alias]) as queries:
        archive = export_tenant(tenant, output=tmp_path / "p.zip")
    selects = [q["sql"] for q in queries if 'FROM "addressbook_contact"' in q["sql"]]
    assert len(selects) == 5  # 7 + 7 + 7 + 7 + 2
    assert all("LIMIT 7" in sql for sql in selects)
    _, _, data, _ = read_archive(archive.path)
    assert [row["name"] for row in data["data/addressbook.contact.jsonl"]] == [
        f"c{i:02}" for i in range(30)
    ]


def test_the_archive_is_one_snapshot_while_writes_go_on(tenant_factory, tmp_path, monkeypatch):
    tenant = tenant_factory("snap")
    create_contact(tenant, "Before")
    write_model = export._write_model
    written = []

    def add_a_contact():
        create_contact(tenant, "During")
        connections.close_all()

    def write_then_add_a_contact(archive, entry, alias):
        result = write_model(archive, entry, alias)
        if not written:  # after the first file: a writer on another connection commits
            thread = threading.Thread(target=add_a_contact)
            thread.start()
            thread.join(timeout=30)
            written.append(True)
        return result

    monkeypatch.setattr(export, "_write_model", write_then_add_a_contact)
    archive = export_tenant(tenant, output=tmp_path / "s.zip")
    _, _, data, _ = read_archive(archive.path)
    assert written
    assert [row["name"] for row in data["data/addressbook.contact.jsonl"]] == ["Before"]
    with use_tenant(tenant):
        assert Contact.objects.filter(name="During").exists()


# --- where it may be written --------------------------------------------------------------
def test_an_existing_output_path_is_refused_and_left_as_it_was(acme, tmp_path):
    output = tmp_path / "taken.zip"
    output.write_text("not mine")
    with pytest.raises(ValidationError, match="exists; nothing was written"):
        export_tenant(acme, output=output)
    assert output.read_text() == "not mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.zip"]
    assert not TenantArchive.objects.filter(tenant=acme).exists()


def test_a_foreign_file_at_the_partial_name_is_refused_and_kept(acme, tmp_path):
    output = tmp_path / "a.zip"
    partial_path(output).write_text("someone's notes")
    with pytest.raises(ValidationError, match="no export in progress"):
        export_tenant(acme, output=output)
    assert partial_path(output).read_text() == "someone's notes"
    assert not output.exists()


def test_a_missing_directory_is_refused(acme, tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        export_tenant(acme, output=tmp_path / "nowhere" / "a.zip")


def test_a_failed_write_leaves_neither_file_nor_record(acme, tmp_path, monkeypatch):
    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(export, "_write_model", broken)
    with pytest.raises(OSError, match="disk full"):
        export_tenant(acme, output=tmp_path / "a.zip")
    assert list(tmp_path.iterdir()) == []
    assert not TenantArchive.objects.filter(tenant=acme).exists()
    event = AuditEvent.objects.using("default").get(event=audit.TENANT_EXPORTED)
    assert event.details["outcome"] == "failed"


def test_the_archive_is_readable_by_its_owner_only(acme, tmp_path):
    archive = export_tenant(acme, output=tmp_path / "private.zip")
    assert Path(archive.path).stat().st_mode & 0o077 == 0


def test_a_second_export_to_the_same_path_is_refused_while_one_runs(
    tenant_factory, tmp_path, monkeypatch
):
    tenant = tenant_factory("twice")
    output = tmp_path / "t.zip"
    write_model = export._write_model
    refusals = []

    def write_and_start_another(archive, entry, alias):
        if not refusals:
            with pytest.raises(ValidationError, match="Another export to this path") as error:
                export_tenant(tenant, output=output)
            refusals.append(error.value)
        return write_model(archive, entry, alias)

    monkeypatch.setattr(export, "_write_model", write_and_start_another)
    archive = export_tenant(tenant, output=output)
    assert refusals
    assert zipfile.ZipFile(output).testzip() is None
    assert archive.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert list(TenantArchive.objects.filter(tenant=tenant)) == [archive]


def test_the_default_path_is_a_new_file_in_the_archive_directory(acme, settings, tmp_path):
    settings.TENANT_ARCHIVE_DIR = tmp_path / "archives"
    path = lifecycle.archive_path(acme.slug, "export", ".zip")
    assert path.parent == tmp_path / "archives" and path.parent.is_dir()
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.name.startswith("acme-export-") and path.suffix == ".zip"
    assert not path.exists()
    assert lifecycle.archive_path(acme.slug, "export", ".zip") != path


# --- which tenants, and the record --------------------------------------------------------
def test_a_suspended_tenant_is_exported(tenant_factory, tmp_path):
    tenant = tenant_factory("leaving")
    create_contact(tenant, "Kept")
    services.tenant_suspend(tenant)
    _, _, data, _ = read_archive(export_tenant(tenant, output=tmp_path / "l.zip").path)
    assert [row["name"] for row in data["data/addressbook.contact.jsonl"]] == ["Kept"]


@pytest.mark.parametrize("status", [Tenant.Status.DROPPED, Tenant.Status.PURGED])
def test_a_tenant_without_a_database_is_refused(tenant_factory, tmp_path, status):
    tenant = tenant_factory("gone")
    services.tenant_suspend(tenant)
    services.tenant_drop(tenant)
    Tenant.objects.filter(pk=tenant.pk).update(status=status)
    tenant.refresh_from_db()
    with pytest.raises(ValidationError, match=f"'gone' is {status}"):
        export_tenant(tenant, output=tmp_path / "g.zip")
    assert list(tmp_path.iterdir()) == []


def test_the_export_is_recorded_as_an_archive_and_an_audit_event(rich, tmp_path, staff):
    tenant, _ = rich
    archive = export_tenant(tenant, output=tmp_path / "h.zip", actor=staff)
    path = Path(archive.path)
    assert archive.kind == TenantArchive.Kind.EXPORT
    assert path == (tmp_path / "h.zip").resolve()
    assert archive.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert archive.size_bytes == path.stat().st_size
    assert archive.created_by == "root"
    event = AuditEvent.objects.using("default").get(event=audit.TENANT_EXPORTED)
    assert (event.target_id, event.actor_username) == ("hooli", "root")
    assert event.details["outcome"] == "ok"
    assert event.details["rows"] >= 5
    assert not partial_path(path).exists()


def test_the_command_writes_the_archive(rich, tmp_path):
    output = tmp_path / "cmd.zip"
    out = run_command("export_tenant", "hooli", "--output", str(output))
    assert "exported to" in out
    assert zipfile.ZipFile(output).testzip() is None
    with pytest.raises(CommandError, match="exists; nothing was written"):
        run_command("export_tenant", "hooli", "--output", str(output))
    with pytest.raises(CommandError, match="Unknown tenant 'nobody'"):
        run_command("export_tenant", "nobody", "--output", str(tmp_path / "n.zip"))


# --- killed at each step ------------------------------------------------------------------
STEPS = ["record", "write", "seal", "publish", "finish"]
SETUP = """
import json
from tenants.services import provision_tenant
from tests.factories import create_contact
for slug in {slugs!r}:
    tenant = provision_tenant(slug=slug, name=slug, domains=[slug + ".test"])
    for i in range(25):
        create_contact(tenant, "contact %d" % i)
print(json.dumps("ok"))
"""
STATE = """
import json, zipfile
from pathlib import Path
from tenants.lifecycle.export import partial_path
from tenants.models import TenantArchive
found = {{}}
for slug, output in {outputs!r}.items():
    rows = list(TenantArchive.objects.filter(tenant__slug=slug).values("path", "sha256"))
    contacts = None
    if Path(output).exists():
        with zipfile.ZipFile(output) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            contacts = sum(1 for _ in archive.read("data/addressbook.contact.jsonl").splitlines())
    found[slug] = {{
        "rows": rows,
        "contacts": contacts,
        "partial": partial_path(Path(output)).exists(),
    }}
print(json.dumps(found))
"""


def test_an_export_killed_at_any_step_is_finished_by_running_it_again(world):  # noqa: F811
    slugs = [f"kill-{step}" for step in STEPS]
    assert world.shell(SETUP.format(slugs=slugs)) == "ok"
    outputs = {slug: str(world.tmp / f"{slug}.zip") for slug in slugs}
    for step, slug in zip(STEPS, slugs, strict=True):
        world.killed(f"export:{step}", "export_tenant", slug, "--output", outputs[slug])
    killed = world.shell(STATE.format(outputs=outputs))
    assert killed["kill-record"]["rows"] == []
    assert killed["kill-write"]["rows"][0]["sha256"] == ""
    assert killed["kill-publish"]["partial"] and killed["kill-publish"]["contacts"] is None
    assert killed["kill-finish"]["partial"] and killed["kill-finish"]["contacts"] == 25

    for slug in slugs:
        result = world.manage("export_tenant", slug, "--output", outputs[slug])
        assert result.returncode == 0, (slug, result.stderr)
    finished = world.shell(STATE.format(outputs=outputs))
    for slug in slugs:
        state = finished[slug]
        assert state["contacts"] == 25, slug
        assert not state["partial"], slug
        (row,) = state["rows"]
        digest = hashlib.sha256(Path(outputs[slug]).read_bytes()).hexdigest()
        assert row == {"path": outputs[slug], "sha256": digest}, slug
