"""The audit trail: every wired security event is recorded with its actor, address, request
and time, in the database it belongs to (a tenant's, or the main one for the platform's);
tenant admins read their own tenant's trail at GET /api/audit (filtered, cursor-paginated);
staff read every trail in the admin, read-only; old events are purged; no row ever holds a
secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import audit
from accounts.models import AuditEvent, User
from tenants.context import use_tenant
from tenants.models import Tenant
from tests.factories import (
    NEW_PASSWORD,
    PASSWORD,
    WRONG_PASSWORD,
    create_audit_event,
    create_staff,
)
from tests.helpers import (
    client_for,
    link_in,
    login,
    platform_login,
    run_command,
    sent_mail,
    tokens_for,
)

pytestmark = pytest.mark.django_db(databases="__all__")

CLIENT_IP = "203.0.113.7"
DENIED = {"status": 403, "error": "Forbidden", "message": "Tenant access denied"}


def events(tenant, *names: str, **about) -> list[AuditEvent]:
    """The events of the tenant's database (the main one with None), oldest first; those
    named, and with the field values `about`, when given."""
    with use_tenant(tenant):
        queryset = AuditEvent.objects.filter(**about).order_by("id")
        if names:
            queryset = queryset.filter(event__in=names)
        return list(queryset)


def only(tenant, name: str, **about) -> AuditEvent:
    found = events(tenant, name, **about)
    assert len(found) == 1, [(e.event, e.target_label) for e in events(tenant)]
    return found[0]


def recent(event: AuditEvent) -> bool:
    return timezone.now() - timedelta(seconds=60) < event.created_at <= timezone.now()


@pytest.fixture
def boss(acme, make_user):
    return make_user(acme, "boss", role=User.Role.ADMIN)


@pytest.fixture
def as_boss(acme, boss, bearer):
    return bearer(boss, acme)


@pytest.fixture
def mia(acme, make_user, boss):
    return make_user(acme, "mia", role=User.Role.MEMBER)


def audit_page(headers, query: str = "", host: str = "acme.test"):
    return client_for(host).get(f"/api/audit{'?' + query if query else ''}", **headers)


# --- recording: tenant events --------------------------------------------------------------
def test_a_login_is_recorded_with_actor_address_request_and_time(acme, boss):
    response = login("acme.test", "boss", REMOTE_ADDR=CLIENT_IP)
    assert response.status_code == HTTPStatus.OK
    event = only(acme, audit.LOGIN)
    assert (event.actor_id, event.actor_username) == (boss.pk, "boss")
    assert (event.target_type, event.target_id, event.target_label) == (
        "user",
        str(boss.pk),
        "boss",
    )
    assert event.ip == CLIENT_IP
    assert event.request_id == response["X-Request-Id"]
    assert recent(event)


def test_a_login_costs_one_insert_into_the_trail(acme, boss):
    with CaptureQueriesContext(connections[acme.alias]) as queries:
        assert login("acme.test", "boss").status_code == HTTPStatus.OK
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT") and "audit" in q["sql"]]
    assert len(inserts) == 1


def test_a_failed_login_is_recorded_although_it_answers_401(acme, boss):
    response = login("acme.test", "boss", WRONG_PASSWORD, REMOTE_ADDR=CLIENT_IP)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    event = only(acme, audit.LOGIN_FAILED)
    assert event.actor_id is None
    assert (event.target_type, event.target_label) == ("user", "boss")
    assert event.details == {"reason": "wrong_password"}
    assert (event.ip, event.request_id) == (CLIENT_IP, response["X-Request-Id"])


def test_an_identifier_naming_no_account_is_kept_only_as_a_digest(acme, boss):
    typed = "My-0wn-Password-typed-as-name"
    response = login("acme.test", typed, PASSWORD)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    event = only(acme, audit.LOGIN_FAILED)
    assert (event.target_type, event.target_id, event.target_label) == ("", "", "")
    assert event.details["reason"] == "unknown_account"
    assert event.details["identifier_digest"] == audit.identifier_digest(typed)
    assert typed.lower() not in row_text(event).lower()
    # The same name typed again gives the same digest; another name another one.
    assert audit.identifier_digest(f"  {typed.upper()} ") == audit.identifier_digest(typed)
    assert audit.identifier_digest("someone-else") != audit.identifier_digest(typed)


def test_an_inactive_account_login_is_recorded_with_its_reason(acme, make_user):
    make_user(acme, "gone", is_active=False)
    assert login("acme.test", "gone").status_code == HTTPStatus.UNAUTHORIZED
    assert only(acme, audit.LOGIN_FAILED).details == {"reason": "inactive"}


def test_the_attempt_that_locks_an_account_records_the_lockout(acme, boss, low_lockout):
    for _ in range(3):
        login("acme.test", "boss", WRONG_PASSWORD, REMOTE_ADDR=CLIENT_IP)
    assert [e.event for e in events(acme)] == [audit.LOGIN_FAILED] * 3 + [audit.LOCKOUT]
    lockout = only(acme, audit.LOCKOUT)
    assert (lockout.target_label, lockout.ip) == ("boss", CLIENT_IP)


def test_a_password_change_is_recorded(acme, boss, as_boss):
    response = client_for("acme.test").post(
        "/api/auth/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        REMOTE_ADDR=CLIENT_IP,
        **as_boss,
    )
    assert response.status_code == HTTPStatus.OK
    event = only(acme, audit.PASSWORD_CHANGED)
    assert (event.actor_username, event.target_label, event.ip) == ("boss", "boss", CLIENT_IP)


def test_a_wrong_current_password_is_recorded_as_a_failed_password_check(acme, boss, as_boss):
    response = client_for("acme.test").post(
        "/api/auth/password",
        {"old_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        **as_boss,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    event = only(acme, audit.LOGIN_FAILED)
    assert (event.actor_username, event.details) == ("boss", {"reason": "password_change"})
    assert events(acme, audit.PASSWORD_CHANGED) == []


def test_a_role_change_is_recorded_with_the_admin_as_actor(acme, boss, mia, as_boss):
    response = client_for("acme.test").patch(
        f"/api/users/{mia.pk}", {"role": "admin"}, format="json", REMOTE_ADDR=CLIENT_IP, **as_boss
    )
    assert response.status_code == HTTPStatus.OK
    event = only(acme, audit.ROLE_CHANGED)
    assert (event.actor_username, event.target_label) == ("boss", "mia")
    assert event.details == {"from": "member", "to": "admin"}
    assert event.ip == CLIENT_IP


def test_a_deactivation_and_a_reactivation_are_recorded(acme, boss, mia, as_boss):
    client = client_for("acme.test")
    deleted = client.delete(f"/api/users/{mia.pk}", REMOTE_ADDR=CLIENT_IP, **as_boss)
    assert deleted.status_code == HTTPStatus.NO_CONTENT
    client.patch(f"/api/users/{mia.pk}", {"is_active": True}, format="json", **as_boss)
    deactivated = only(acme, audit.USER_DEACTIVATED)
    assert (deactivated.actor_username, deactivated.target_label) == ("boss", "mia")
    assert (deactivated.ip, deactivated.request_id) == (CLIENT_IP, deleted["X-Request-Id"])
    assert recent(deactivated)
    assert only(acme, audit.USER_REACTIVATED).target_label == "mia"


def test_a_refused_change_records_nothing(acme, boss, as_boss):
    response = client_for("acme.test").delete(f"/api/users/{boss.pk}", **as_boss)
    assert response.status_code == HTTPStatus.CONFLICT  # the last admin
    assert events(acme, audit.USER_DEACTIVATED) == []


def test_a_logout_is_recorded_as_a_token_revocation(acme, boss):
    pair = tokens_for("acme.test", "boss")
    response = client_for("acme.test").post(
        "/api/auth/logout",
        {},
        format="json",
        REMOTE_ADDR=CLIENT_IP,
        HTTP_AUTHORIZATION=f"Bearer {pair['access']}",
    )
    assert response.status_code == HTTPStatus.NO_CONTENT
    event = only(acme, audit.TOKENS_REVOKED)
    assert (event.actor_username, event.details) == ("boss", {"by": "logout"})
    assert (event.ip, event.request_id) == (CLIENT_IP, response["X-Request-Id"])
    assert recent(event)


def test_tenant_events_stay_in_the_tenants_database(acme, globex, boss):
    login("acme.test", "boss")
    assert events(globex, audit.LOGIN) == []
    assert events(None, audit.LOGIN) == []


# --- recording: platform events ------------------------------------------------------------
def test_staff_logins_on_the_platform_api_are_recorded_in_the_main_database(acme, staff):
    assert platform_login().status_code == HTTPStatus.OK
    assert platform_login(password=WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    ok, failed = only(None, audit.STAFF_LOGIN), only(None, audit.STAFF_LOGIN_FAILED)
    assert (ok.actor_username, ok.target_label) == ("root", "root")
    assert (failed.actor_id, failed.target_label) == (None, "root")
    assert events(acme, audit.LOGIN, audit.LOGIN_FAILED) == []


def test_staff_logins_on_the_admin_are_recorded(tenant_databases):
    create_staff("keeper")
    client = Client(REMOTE_ADDR=CLIENT_IP)
    for password in (WRONG_PASSWORD, PASSWORD):
        client.post("/admin/login/", {"username": "keeper", "password": password, "next": "/"})
    assert only(None, audit.STAFF_LOGIN_FAILED).ip == CLIENT_IP
    event = only(None, audit.STAFF_LOGIN)
    assert (event.actor_username, event.ip) == ("keeper", CLIENT_IP)


def test_tenant_creation_suspension_and_drop_are_recorded_with_their_actor(as_staff, dropped_after):
    dropped_after.append("audited")
    client = client_for("acme.test")
    created = client.post(
        "/api/platform/tenants",
        {"slug": "audited", "name": "Audited", "domains": ["audited.test"]},
        format="json",
        REMOTE_ADDR=CLIENT_IP,
        **as_staff,
    )
    assert created.status_code == HTTPStatus.CREATED
    assert client.delete("/api/platform/tenants/audited", **as_staff).status_code == HTTPStatus.OK
    run_command("drop_tenant", "audited", "--yes")

    made = only(None, audit.TENANT_CREATED, target_id="audited")
    assert (made.actor_username, made.target_type, made.target_id) == ("root", "tenant", "audited")
    assert made.ip == CLIENT_IP
    assert only(None, audit.TENANT_SUSPENDED, target_id="audited").actor_username == "root"
    dropped = only(None, audit.TENANT_DROPPED, target_id="audited")
    assert (dropped.actor_id, dropped.target_id) == (None, "audited")  # a command: no actor


# --- the service ---------------------------------------------------------------------------
def test_record_event_refuses_an_unknown_event(acme):
    with use_tenant(acme), pytest.raises(ValueError, match="Unknown audit event"):
        audit.record_event("coffee_made")


@pytest.mark.parametrize(
    "details",
    [
        {"password": "x"},
        {"new_token": "x"},
        {"client_secret": "x"},
        {"recovery_code": "x"},
        {"note": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnopqrst"},
        {"note": "k" * 64},
        {"nested": {"a": 1}},
        {f"k{i}": i for i in range(11)},
    ],
)
def test_record_event_refuses_details_that_may_hold_a_secret(acme, details):
    with use_tenant(acme), pytest.raises(ValueError):
        audit.record_event(audit.LOGIN, actor=None, details=details)
    assert events(acme) == []


def test_a_platform_event_goes_to_the_main_database_even_inside_a_tenant(acme):
    with use_tenant(acme):
        audit.record_event(audit.TENANT_MOVED, actor=None, target=acme)
    assert only(None, audit.TENANT_MOVED, target_id="acme").target_label == "Acme Corp"
    assert events(acme) == []


def test_an_event_about_an_api_key_is_one_line(acme, boss):
    with use_tenant(acme):
        audit.record_event(
            audit.API_KEY_CREATED, actor=boss, target=audit.Target("api_key", "tk_ab12", "ci")
        )
    event = only(acme, audit.API_KEY_CREATED)
    assert (event.target_type, event.target_id, event.target_label) == ("api_key", "tk_ab12", "ci")


def test_creating_and_revoking_an_api_key_are_recorded_without_the_secret(acme, boss, as_boss):
    created = client_for("acme.test").post(
        "/api/api-keys", {"name": "ci", "scopes": ["contacts:read"]}, format="json", **as_boss
    )
    assert created.status_code == HTTPStatus.CREATED
    prefix, secret = created.json()["key"].split(".")
    event = only(acme, audit.API_KEY_CREATED)
    assert (event.actor_id, event.target_type, event.target_id) == (boss.pk, "api_key", prefix)
    assert event.target_label == "ci"

    key_id = created.json()["id"]
    revoked = client_for("acme.test").delete(f"/api/api-keys/{key_id}", **as_boss)
    assert revoked.status_code == HTTPStatus.NO_CONTENT
    assert only(acme, audit.API_KEY_REVOKED).target_id == prefix
    with use_tenant(acme):
        assert secret not in json.dumps(list(AuditEvent.objects.values()), default=str)


def test_a_password_reset_is_recorded(acme, boss):
    client_for("acme.test").post("/api/auth/password-reset", {"email": boss.email}, format="json")
    token = link_in(sent_mail()[-1].body).group("token")
    confirmed = client_for("acme.test").post(
        "/api/auth/password-reset/confirm",
        {"token": token, "new_password": "N3w-Secure-pass"},
        format="json",
    )
    assert confirmed.status_code == HTTPStatus.OK
    event = only(acme, audit.PASSWORD_RESET)
    assert (event.actor_id, event.target_id) == (boss.pk, str(boss.pk))


# --- GET /api/audit ------------------------------------------------------------------------
def test_an_admin_reads_the_tenants_events_newest_first(acme, boss, as_boss):
    now = timezone.now()
    for minutes, name in ((30, audit.LOGIN), (20, audit.LOGIN_FAILED), (10, audit.LOCKOUT)):
        create_audit_event(
            acme, name, created_at=now - timedelta(minutes=minutes), actor_username="mia"
        )
    response = audit_page(as_boss)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [e["event"] for e in body["results"]] == [
        audit.LOCKOUT,
        audit.LOGIN_FAILED,
        audit.LOGIN,
    ]
    assert set(body["results"][0]) == {
        "id",
        "event",
        "created_at",
        "actor",
        "target",
        "ip",
        "request_id",
        "details",
    }


def test_an_event_shows_actor_target_address_and_details(acme, boss, mia, as_boss):
    client_for("acme.test").patch(
        f"/api/users/{mia.pk}", {"role": "admin"}, format="json", REMOTE_ADDR=CLIENT_IP, **as_boss
    )
    shown = audit_page(as_boss, "event=role_changed").json()["results"][0]
    assert shown["actor"] == {"id": boss.pk, "username": "boss"}
    assert shown["target"] == {"type": "user", "id": str(mia.pk), "label": "mia"}
    assert shown["ip"] == CLIENT_IP
    assert shown["details"] == {"from": "member", "to": "admin"}
    assert datetime.fromisoformat(shown["created_at"]).tzinfo is not None


def test_the_trail_filters_by_event(acme, boss, as_boss):
    create_audit_event(acme, audit.LOGIN)
    create_audit_event(acme, audit.LOCKOUT)
    results = audit_page(as_boss, "event=lockout").json()["results"]
    assert [e["event"] for e in results] == [audit.LOCKOUT]


def test_the_trail_filters_by_user_name_or_id_as_actor_or_target(acme, boss, as_boss):
    create_audit_event(acme, audit.LOGIN, actor_id=41, actor_username="zed")
    create_audit_event(
        acme, audit.ROLE_CHANGED, target_type="user", target_id="41", target_label="zed"
    )
    create_audit_event(acme, audit.LOGIN, actor_id=42, actor_username="other")
    create_audit_event(acme, audit.TENANT_MOVED, target_type="tenant", target_id="41")
    by_name = audit_page(as_boss, "user=zed").json()["results"]
    by_id = audit_page(as_boss, "user=41").json()["results"]
    assert sorted(e["event"] for e in by_name) == [audit.LOGIN, audit.ROLE_CHANGED]
    assert [e["id"] for e in by_id] == [e["id"] for e in by_name]
    assert audit_page(as_boss, "user=" + "9" * 40).json()["results"] == []


def test_the_trail_filters_by_time(acme, boss, as_boss):
    create_audit_event(acme, audit.LOGIN, created_at=datetime(2026, 1, 1, 12, tzinfo=UTC))
    create_audit_event(acme, audit.LOCKOUT, created_at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    for since in ("2026-02-01T00:00:00Z", "2026-02-01T01:00:00%2B01:00", "2026-02-01"):
        results = audit_page(as_boss, f"since={since}").json()["results"]
        assert [e["event"] for e in results] == [audit.LOCKOUT], since


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("event=coffee_made", "event"),
        ("event=" + "x" * 5000, "event"),
        ("since=yesterday", "since"),
        ("since=2026-13-45T99:00:00Z", "since"),
        ("since=9999-12-31T23:59:59-14:00", "since"),
        ("since=" + "2" * 5000, "since"),
        ("user=" + "u" * 5000, "user"),
        ("page_size=0", "page_size"),
    ],
)
def test_bad_filters_are_400_with_details(acme, boss, as_boss, query, field):
    response = audit_page(as_boss, query)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.json()
    assert body["status"] == HTTPStatus.BAD_REQUEST
    assert field in body["details"]


@pytest.mark.parametrize("cursor", ["garbage", "eyJvIjoibmFtZSxpZCIsImQiOiJuIiwidiI6WzFdfQ", "%00"])
def test_a_bad_cursor_is_400_invalid_cursor(acme, boss, as_boss, cursor):
    response = audit_page(as_boss, f"cursor={cursor}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"] == "Invalid cursor"


def test_the_trail_pages_by_cursor_without_repeating_or_skipping(acme, boss, as_boss):
    moment = timezone.now() - timedelta(hours=1)
    made = [create_audit_event(acme, audit.LOGIN, created_at=moment).pk for _ in range(3)]
    made += [create_audit_event(acme, audit.LOCKOUT).pk for _ in range(2)]
    seen, query = [], "page_size=2"
    for _ in range(5):
        body = audit_page(as_boss, query).json()
        seen += [e["id"] for e in body["results"]]
        if body["next"] is None:
            break
        query = urlsplit(body["next"]).query
        assert "page_size=2" in query
    assert seen == sorted(made, reverse=True)
    back = audit_page(as_boss, urlsplit(body["previous"]).query).json()
    assert [e["id"] for e in back["results"]] == seen[2:4]


def test_a_member_gets_403(acme, mia, bearer):
    response = audit_page(bearer(mia, acme))
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_without_a_token_it_is_401(acme):
    assert client_for("acme.test").get("/api/audit").status_code == HTTPStatus.UNAUTHORIZED


def test_another_tenants_token_is_403_tenant_access_denied(acme, globex, make_user, bearer):
    gus = make_user(globex, "gus", role=User.Role.ADMIN)
    response = audit_page(bearer(gus, globex))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == DENIED


def test_a_platform_token_is_403(acme, as_staff):
    assert audit_page(as_staff).status_code == HTTPStatus.FORBIDDEN


def test_one_tenants_events_are_never_visible_to_another(acme, globex, boss, as_boss, make_user):
    make_user(globex, "gus", role=User.Role.ADMIN)
    login("globex.test", "gus")
    login("globex.test", "gus", WRONG_PASSWORD)
    create_audit_event(globex, audit.ROLE_CHANGED, target_label="globex-only")
    create_audit_event(None, audit.TENANT_CREATED, target_label="platform-only")
    login("acme.test", "boss")
    for query in ("", "user=gus", "event=role_changed", "event=tenant_created", "tenant=globex"):
        response = audit_page(as_boss, query)
        text = response.content.decode()
        assert "gus" not in text and "globex-only" not in text and "platform-only" not in text
    own = audit_page(as_boss).json()["results"]
    assert [e["actor"]["username"] for e in own] == ["boss"]


# --- retention -----------------------------------------------------------------------------
@pytest.fixture
def old_and_new(acme, globex):
    old = timezone.now() - timedelta(days=400)
    for tenant in (None, acme, globex):
        create_audit_event(tenant, audit.LOGIN, created_at=old)
        create_audit_event(tenant, audit.LOGIN, created_at=old)
        create_audit_event(tenant, audit.LOCKOUT)


def kept(tenant) -> list[str]:
    """What `old_and_new` made that is still in the tenant's (or the main) database."""
    return [e.event for e in events(tenant, audit.LOGIN, audit.LOCKOUT)]


def test_purge_deletes_the_platforms_old_events_by_default(acme, globex, old_and_new):
    out = run_command("purge_audit_events")
    assert "Purged 2 audit event(s) older than 365 days in the platform database." in out
    assert kept(None) == [audit.LOCKOUT]
    assert len(kept(acme)) == len(kept(globex)) == 3


def test_purge_of_one_tenant_touches_only_its_database(acme, globex, old_and_new):
    out = run_command("purge_audit_events", "--tenant", "acme")
    assert "Purged 2 audit event(s) older than 365 days in tenant acme." in out
    assert kept(acme) == [audit.LOCKOUT]
    assert len(kept(globex)) == len(kept(None)) == 3


def test_purge_of_all_tenants_reports_each_database(acme, globex, old_and_new):
    out = run_command("purge_audit_events", "--all-tenants")
    for where in ("the platform database", "tenant acme", "tenant globex"):
        assert f"Purged 2 audit event(s) older than 365 days in {where}." in out
    for tenant in (None, acme, globex):
        assert kept(tenant) == [audit.LOCKOUT]


def test_purge_follows_the_retention_setting_and_days(acme, settings, old_and_new):
    settings.AUDIT_RETENTION_DAYS = 500
    assert "Purged 0 audit event(s)" in run_command("purge_audit_events", "--tenant", "acme")
    create_audit_event(acme, audit.LOGIN, created_at=timezone.now() - timedelta(days=20))
    out = run_command("purge_audit_events", "--tenant", "acme", "--days", "10")
    assert "Purged 3 audit event(s) older than 10 days in tenant acme." in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tenant", "nope"), "Unknown tenant"),
        (("--days", "0"), "at least 1"),
    ],
)
def test_purge_refuses_bad_arguments(acme, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("purge_audit_events", *args)


def test_purge_refuses_a_dropped_tenant(acme):
    Tenant.objects.create(slug="bygone", name="Bygone", status=Tenant.Status.DROPPED)
    with pytest.raises(CommandError, match="dropped"):
        run_command("purge_audit_events", "--tenant", "bygone")


def test_tenant_command_refuses_to_run_the_purge(acme):
    with pytest.raises(CommandError, match="manages tenants itself"):
        run_command("tenant_command", "--tenant", "acme", "purge_audit_events")


# --- the admin -----------------------------------------------------------------------------
ADMIN_LIST = "/admin/accounts/auditevent/"


def test_staff_read_the_platform_trail_in_the_admin(superuser_client, acme):
    create_audit_event(None, audit.TENANT_CREATED, target_label="platform-marker")
    create_audit_event(acme, audit.LOGIN, actor_username="acme-marker")
    page = superuser_client.get(ADMIN_LIST)
    assert page.status_code == HTTPStatus.OK
    assert "platform-marker" in page.content.decode()
    assert "acme-marker" not in page.content.decode()


def test_staff_read_a_chosen_tenants_trail_in_the_admin(superuser_client, acme, globex):
    create_audit_event(None, audit.TENANT_CREATED, target_label="platform-marker")
    create_audit_event(acme, audit.LOGIN, actor_username="acme-marker")
    create_audit_event(globex, audit.LOGIN, actor_username="globex-marker")
    page = superuser_client.get(f"{ADMIN_LIST}?database=acme").content.decode()
    assert "acme-marker" in page
    assert "platform-marker" not in page and "globex-marker" not in page
    filtered = superuser_client.get(f"{ADMIN_LIST}?database=acme&event=lockout").content.decode()
    assert "acme-marker" not in filtered


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("event=%00", HTTPStatus.OK),  # no such event: no rows
        ("database=%00", HTTPStatus.OK),  # no such tenant: the platform's trail
        ("ip=x", HTTPStatus.BAD_REQUEST),
        ("database=acme&ip=%00", HTTPStatus.BAD_REQUEST),
        ("actor_id=abc", HTTPStatus.BAD_REQUEST),
    ],
)
def test_hand_made_admin_filters_never_reach_the_database_as_errors(
    superuser_client, acme, query, status
):
    assert superuser_client.get(f"{ADMIN_LIST}?{query}").status_code == status


def test_the_admin_trail_is_read_only(superuser_client, acme):
    event = create_audit_event(None, audit.TENANT_CREATED)
    assert superuser_client.get(f"{ADMIN_LIST}add/").status_code == HTTPStatus.FORBIDDEN
    response = superuser_client.post(
        ADMIN_LIST, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
    delete = superuser_client.post(f"{ADMIN_LIST}{event.pk}/delete/", {"post": "yes"})
    assert delete.status_code in (HTTPStatus.FORBIDDEN, HTTPStatus.FOUND)
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    change = superuser_client.post(f"{ADMIN_LIST}{event.pk}/change/", {"event": "login"})
    assert change.status_code in (HTTPStatus.FORBIDDEN, HTTPStatus.OK)
    assert AuditEvent.objects.get(pk=event.pk).event == audit.TENANT_CREATED


# --- no secret ------------------------------------------------------------------------------
def row_text(event: AuditEvent) -> str:
    fields = [f.name for f in AuditEvent._meta.concrete_fields]
    return json.dumps({name: getattr(event, name) for name in fields}, default=str)


def test_no_row_ever_holds_a_password_or_a_token(acme, boss, mia, as_boss, low_lockout):
    typed_password = "Typed-In-Name-F1eld"
    login("acme.test", typed_password, PASSWORD)  # a password in the username field
    login("acme.test", "mia", WRONG_PASSWORD)
    pair = tokens_for("acme.test", "boss")
    client = client_for("acme.test")
    client.post(
        "/api/auth/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {pair['access']}",
    )
    new_pair = tokens_for("acme.test", "boss", NEW_PASSWORD)
    client.post(
        "/api/auth/logout",
        {"refresh": new_pair["refresh"]},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {new_pair['access']}",
    )
    rows = [row_text(event) for event in events(acme)]
    assert len(rows) >= 5
    secrets = [typed_password, PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]
    secrets += [pair["access"], pair["refresh"], new_pair["access"], new_pair["refresh"]]
    for text in rows:
        for secret in secrets:
            assert secret.lower() not in text.lower()
        assert "eyJ" not in text
