"""API keys for machine clients (API.md, "Machine clients"): a tenant admin creates, lists
and revokes them; a key, shown once as `<prefix>.<secret>` and stored as its prefix and a
digest, authenticates on its tenant's host as `Authorization: Bearer` or `X-Api-Key`, for
the address book only, within its scopes."""

from __future__ import annotations

import logging
from datetime import timedelta
from http import HTTPStatus

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from accounts import services
from accounts.api_keys import api_key_generator
from accounts.models import ApiKey, User
from addressbook.models import Contact
from tenants.context import use_tenant
from tenants.models import Tenant
from tenants.resolution import resolver
from tests.factories import (
    access_token,
    api_key_bearer,
    api_key_header,
    bearer_for,
    bearer_header,
    create_api_key,
)
from tests.helpers import client_for, open_stream
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

INVALID = {"status": 401, "error": "Unauthorized", "message": "Invalid token"}
DENIED = {"status": 403, "error": "Forbidden", "message": "Tenant access denied"}
NO_SCOPE = {"status": 403, "error": "Forbidden", "message": "Insufficient scope"}
MISSING = {"status": 401, "error": "Unauthorized", "message": "Missing authorization header"}
KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "scopes",
    "expires_at",
    "created_by",
    "created_at",
    "last_used_at",
    "revoked_at",
}
HEADERS = {"bearer": api_key_bearer, "x-api-key": api_key_header}


@pytest.fixture
def admin(acme, make_user):
    return make_user(acme, "boss", role=User.Role.ADMIN)


@pytest.fixture
def as_admin(acme, admin, bearer):
    return bearer(admin, acme)


@pytest.fixture
def acme_api(acme):
    return client_for("acme.test")


@pytest.fixture
def reader(acme, admin):
    """A read-only key of acme: `(row, key)`."""
    return create_api_key(acme, admin, scopes=["contacts:read"])


@pytest.fixture
def writer(acme, admin):
    """A read-write key of acme: `(row, key)`."""
    return create_api_key(acme, admin, scopes=["contacts:write"])


def _row(tenant, api_key) -> ApiKey:
    with use_tenant(tenant):
        return ApiKey.objects.get(pk=api_key.pk)


def _update(tenant, api_key, **fields) -> None:
    with use_tenant(tenant):
        ApiKey.objects.filter(pk=api_key.pk).update(**fields)


# --- create, list, revoke -----------------------------------------------------------------
def test_admin_creates_a_key_shown_once_as_prefix_dot_secret(acme_api, admin, as_admin):
    response = acme_api.post(
        "/api/api-keys",
        {"name": "crm sync", "scopes": ["contacts:read"]},
        format="json",
        **as_admin,
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    prefix, secret = body["key"].split(".")
    assert prefix == body["prefix"]
    assert prefix.startswith("tk_acme_")
    assert len(secret) == 43
    assert (body["name"], body["scopes"], body["created_by"]) == (
        "crm sync",
        ["contacts:read"],
        admin.pk,
    )
    assert (body["expires_at"], body["last_used_at"], body["revoked_at"]) == (None, None, None)

    listed = acme_api.get("/api/api-keys", **as_admin)
    assert listed.status_code == HTTPStatus.OK
    assert listed.json()["count"] == 1
    (item,) = listed.json()["results"]
    assert set(item) == KEY_FIELDS
    assert item["prefix"] == prefix
    assert secret not in listed.content.decode()


def test_the_stored_row_holds_the_prefix_and_a_keyed_digest_never_the_secret(
    acme, acme_api, as_admin
):
    body = acme_api.post(
        "/api/api-keys", {"name": "n", "scopes": ["contacts:write"]}, format="json", **as_admin
    ).json()
    prefix, secret = body["key"].split(".")
    with use_tenant(acme):
        row = ApiKey.objects.filter(pk=body["id"]).values().get()
    assert row["prefix"] == prefix
    assert row["secret_digest"] == api_key_generator.digest(secret)
    assert row["secret_digest"] != secret
    assert not any(secret in str(value) for value in row.values())


def test_a_key_with_an_expiry_in_the_future_is_created_with_it(acme_api, as_admin):
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    body = acme_api.post(
        "/api/api-keys",
        {"name": "n", "scopes": ["contacts:read"], "expires_at": expires.isoformat()},
        format="json",
        **as_admin,
    ).json()
    assert body["expires_at"] == expires.isoformat().replace("+00:00", "Z")


def test_an_expiry_in_the_past_is_400_and_creates_nothing(acme, acme_api, as_admin):
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    response = acme_api.post(
        "/api/api-keys",
        {"name": "n", "scopes": ["contacts:read"], "expires_at": past},
        format="json",
        **as_admin,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"] == {"expires_at": ["The expiry must be in the future."]}
    with use_tenant(acme):
        assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["contacts:read"]}, "name"),
        ({"name": "n"}, "scopes"),
        ({"name": "n", "scopes": []}, "scopes"),
        ({"name": "n", "scopes": ["users:write"]}, "scopes"),
        ({"name": "n", "scopes": "contacts:read"}, "scopes"),
        ({"name": "x" * 101, "scopes": ["contacts:read"]}, "name"),
        ({"name": "n", "scopes": ["contacts:read"], "expires_at": "soon"}, "expires_at"),
        ({"name": "n", "scopes": ["contacts:read"], "key": "tk_acme_x.y"}, "key"),
    ],
)
def test_a_bad_create_body_is_400_naming_the_field(acme_api, as_admin, body, field):
    response = acme_api.post("/api/api-keys", body, format="json", **as_admin)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"] == "Validation failed"
    assert {name.split(".")[0] for name in response.json()["details"]} == {field}


def test_revoke_is_204_and_the_key_is_refused_at_once(acme, acme_api, as_admin, reader):
    api_key, key = reader
    assert acme_api.get("/api/address-book", **api_key_bearer(key)).status_code == HTTPStatus.OK
    response = acme_api.delete(f"/api/api-keys/{api_key.pk}", **as_admin)
    assert response.status_code == HTTPStatus.NO_CONTENT
    refused = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert (refused.status_code, refused.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)
    assert _row(acme, api_key).revoked_at is not None
    (item,) = acme_api.get("/api/api-keys", **as_admin).json()["results"]
    assert item["revoked_at"] is not None


def test_revoking_a_revoked_key_again_is_204_and_keeps_the_first_time(
    acme, acme_api, as_admin, reader
):
    api_key, _ = reader
    acme_api.delete(f"/api/api-keys/{api_key.pk}", **as_admin)
    first = _row(acme, api_key).revoked_at
    response = acme_api.delete(f"/api/api-keys/{api_key.pk}", **as_admin)
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert _row(acme, api_key).revoked_at == first


def test_revoking_an_unknown_or_another_tenants_key_is_404(acme_api, as_admin, globex, make_user):
    gus = make_user(globex, "gus", role=User.Role.ADMIN)
    theirs, their_key = create_api_key(globex, gus, id=4242)
    for pk in (4242, 999999):
        response = acme_api.delete(f"/api/api-keys/{pk}", **as_admin)
        assert response.status_code == HTTPStatus.NOT_FOUND, pk
        assert response.json()["message"] == "Not found"
    assert _row(globex, theirs).revoked_at is None
    on_globex = client_for("globex.test").get("/api/address-book", **api_key_bearer(their_key))
    assert on_globex.status_code == HTTPStatus.OK


def test_a_member_gets_403_on_every_api_keys_endpoint(acme, acme_api, make_user, bearer, reader):
    api_key, _ = reader
    as_member = bearer(make_user(acme, "mia"), acme)
    for response in (
        acme_api.get("/api/api-keys", **as_member),
        acme_api.post(
            "/api/api-keys", {"name": "n", "scopes": ["contacts:read"]}, format="json", **as_member
        ),
        acme_api.delete(f"/api/api-keys/{api_key.pk}", **as_member),
    ):
        assert response.status_code == HTTPStatus.FORBIDDEN
    assert _row(acme, api_key).revoked_at is None


def test_the_api_keys_endpoints_without_credentials_are_401(acme_api, reader):
    api_key, _ = reader
    for response in (
        acme_api.get("/api/api-keys"),
        acme_api.post("/api/api-keys", {"name": "n", "scopes": ["contacts:read"]}, format="json"),
        acme_api.delete(f"/api/api-keys/{api_key.pk}"),
    ):
        assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, MISSING)


# --- authentication -----------------------------------------------------------------------
@pytest.mark.parametrize("header", HEADERS)
def test_a_key_authenticates_on_its_tenants_address_book(
    acme, acme_api, make_contact, reader, header
):
    make_contact(acme, "Ada")
    _, key = reader
    response = acme_api.get("/api/address-book", **HEADERS[header](key))
    assert response.status_code == HTTPStatus.OK
    assert [c["name"] for c in response.json()["results"]] == ["Ada"]


def test_a_jwt_keeps_working_beside_keys(acme, acme_api, admin, reader):
    response = acme_api.get("/api/auth/me", **bearer_header(access_token(admin, acme)))
    assert response.status_code == HTTPStatus.OK
    garbage = acme_api.get("/api/auth/me", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert (garbage.status_code, garbage.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


@pytest.mark.parametrize("header", HEADERS)
def test_another_tenants_key_is_403_tenant_access_denied(globex, make_user, acme_api, header):
    gus = make_user(globex, "gus", role=User.Role.ADMIN)
    _, key = create_api_key(globex, gus, scopes=["contacts:write"])
    for method in ("get", "post"):
        response = getattr(acme_api, method)("/api/address-book", **HEADERS[header](key))
        assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, DENIED)


def test_a_key_on_a_platform_endpoint_is_403_tenant_access_denied(acme_api, writer):
    _, key = writer
    for path in ("/api/platform/tenants", "/api/platform/tenants/acme"):
        response = acme_api.get(path, **api_key_bearer(key))
        assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, DENIED), path


def _tampered(key: str) -> str:
    prefix, secret = key.split(".")
    return f"{prefix}.{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"


def _unknown(key: str) -> str:
    prefix, secret = key.split(".")
    return f"{prefix[:-1]}{'a' if prefix[-1] != 'a' else 'b'}.{secret}"


MALFORMED = {
    "wrong secret": _tampered,
    "unknown prefix": _unknown,
    "no secret": lambda key: key.split(".")[0] + ".",
    "short secret": lambda key: key[:-1],
    "long secret": lambda key: key + "A",
    "two dots": lambda key: key + ".x",
    "bad id": lambda key: key.replace("tk_acme_", "tk_acme_!", 1),
    "bare prefix": lambda key: "tk_",
    "huge": lambda key: "tk_" + "a" * 100_000,
    "non-ascii": lambda key: key[:-1] + "é",
    "nul": lambda key: key[:-1] + "\x00",
}


@pytest.mark.parametrize("kind", MALFORMED)
@pytest.mark.parametrize("header", HEADERS)
def test_a_wrong_unknown_or_malformed_key_is_401_invalid_token(acme_api, reader, kind, header):
    _, key = reader
    response = acme_api.get("/api/address-book", **HEADERS[header](MALFORMED[kind](key)))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


def test_an_empty_x_api_key_is_401_invalid_token(acme_api):
    response = acme_api.get("/api/address-book", HTTP_X_API_KEY="")
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


def test_a_key_and_a_token_together_are_401_invalid_token(acme, acme_api, admin, reader):
    _, key = reader
    response = acme_api.get(
        "/api/address-book",
        **api_key_header(key),
        **bearer_header(access_token(admin, acme)),
    )
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


@pytest.mark.parametrize("header", HEADERS)
def test_an_expired_key_is_401_invalid_token(acme, acme_api, reader, header):
    api_key, key = reader
    assert acme_api.get("/api/address-book", **HEADERS[header](key)).status_code == HTTPStatus.OK
    _update(acme, api_key, expires_at=timezone.now() - timedelta(seconds=1))
    response = acme_api.get("/api/address-book", **HEADERS[header](key))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


def test_a_key_is_refused_once_its_creator_is_deactivated_even_after_reactivation(
    acme, acme_api, admin, make_user, reader
):
    """Deactivation (by the API, the admin or anything else) stops the creator's keys at
    once, and they stay refused after a reactivation: the account's credentials were
    revoked. The creator makes new keys."""
    make_user(acme, "other", role=User.Role.ADMIN)
    _, key = reader
    with use_tenant(acme):
        services.user_deactivate(user=admin)
    response = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)
    with use_tenant(acme):
        services.user_update(user=admin, is_active=True)
    response = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


@pytest.mark.parametrize("change", ["demotion", "tokens revoked (password change or reset)"])
def test_an_account_recovery_or_demotion_ends_the_creators_earlier_keys(
    acme, acme_api, admin, make_user, reader, change
):
    """Whoever took over an admin account cannot keep the address book through a key made
    meanwhile: what revokes the account's tokens (a password change or reset, a role
    change) refuses its earlier keys too. Keys made afterwards work."""
    make_user(acme, "other", role=User.Role.ADMIN)
    _, key = reader
    with use_tenant(acme):
        if change == "demotion":
            services.user_update(user=admin, role=User.Role.MEMBER)
        else:
            admin.tokens_valid_after = timezone.now()
            admin.save(update_fields=["tokens_valid_after"])
    response = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)
    _, fresh = create_api_key(acme, User.objects.using(acme.alias).get(pk=admin.pk))
    assert acme_api.get("/api/address-book", **api_key_bearer(fresh)).status_code == HTTPStatus.OK


def test_a_key_of_a_suspended_tenant_is_403_tenant_suspended(acme, acme_api, reader):
    _, key = reader
    Tenant.objects.filter(pk=acme.pk).update(status=Tenant.Status.SUSPENDED)
    resolver.invalidate()  # an update() sends no signal
    response = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant suspended"


# --- scopes -------------------------------------------------------------------------------
def _address_book_calls(contact_id: int):
    """(method, path, body, needs write) for every address-book operation."""
    return [
        ("get", "/api/address-book", None, False),
        ("get", f"/api/address-book/{contact_id}", None, False),
        ("get", "/api/address-book/export?format=json", None, False),
        ("get", "/api/address-book/stats", None, False),
        ("post", "/api/address-book", {"name": "New"}, True),
        ("put", f"/api/address-book/{contact_id}", {"name": "Put"}, True),
        ("patch", f"/api/address-book/{contact_id}", {"name": "Patched"}, True),
        ("delete", f"/api/address-book/{contact_id}", None, True),
    ]


def test_a_read_key_reads_the_address_book_and_writes_nothing(acme, acme_api, make_contact, reader):
    contact = make_contact(acme, "Ada")
    _, key = reader
    for method, path, body, writes in _address_book_calls(contact.pk):
        response = getattr(acme_api, method)(path, body, format="json", **api_key_header(key))
        if writes:
            assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, NO_SCOPE)
        else:
            assert response.status_code == HTTPStatus.OK, (method, path)
    with use_tenant(acme):
        assert list(Contact.objects.values_list("name", flat=True)) == ["Ada"]


def test_a_write_key_reads_creates_changes_and_deletes(acme, acme_api, make_contact, writer):
    contact = make_contact(acme, "Ada")
    _, key = writer
    expected = {"get": HTTPStatus.OK, "post": HTTPStatus.CREATED, "put": HTTPStatus.OK}
    expected |= {"patch": HTTPStatus.OK, "delete": HTTPStatus.NO_CONTENT}
    for method, path, body, _ in _address_book_calls(contact.pk):
        response = getattr(acme_api, method)(path, body, format="json", **api_key_bearer(key))
        assert response.status_code == expected[method], (method, path, response.content)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/users", None),
        ("post", "/api/users", {"username": "x", "email": "x@example.test", "password": "x"}),
        ("get", "/api/users/1", None),
        ("get", "/api/api-keys", None),
        ("post", "/api/api-keys", {"name": "n", "scopes": ["contacts:write"]}),
        ("delete", "/api/api-keys/1", None),
        ("post", "/api/auth/password", {"old_password": "x", "new_password": "y"}),
        ("get", "/api/auth/me", None),
        ("post", "/api/auth/logout", {}),
    ],
)
def test_a_key_never_reaches_users_keys_or_the_account(acme, acme_api, writer, method, path, body):
    api_key, key = writer
    response = getattr(acme_api, method)(path, body, format="json", **api_key_bearer(key))
    assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, NO_SCOPE)
    assert _row(acme, api_key).revoked_at is None


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_a_key_never_opens_the_log_stream(acme, admin, writer):
    _, key = writer
    for kwargs in (
        {"headers": [(b"authorization", f"Bearer {key}".encode())]},
        {"headers": [(b"x-api-key", key.encode())]},
        {"query": f"token={key}"},
    ):
        communicator, connected = await open_stream(host="acme.test", **kwargs)
        assert not connected, kwargs
        await communicator.disconnect()


# --- last use -----------------------------------------------------------------------------
def test_last_use_is_recorded_at_most_once_a_minute(acme, acme_api, reader):
    api_key, key = reader
    acme_api.get("/api/address-book", **api_key_bearer(key))
    first = _row(acme, api_key).last_used_at
    assert first is not None
    acme_api.get("/api/address-book", **api_key_bearer(key))
    assert _row(acme, api_key).last_used_at == first
    stale = timezone.now() - timedelta(minutes=2)
    _update(acme, api_key, last_used_at=stale)
    acme_api.get("/api/address-book", **api_key_bearer(key))
    assert _row(acme, api_key).last_used_at > stale


def test_a_recent_last_use_costs_no_write(acme, acme_api, reader):
    _, key = reader
    acme_api.get("/api/address-book", **api_key_bearer(key))
    statements = []

    def record(execute, sql, *args):
        statements.append(sql)
        return execute(sql, *args)

    with connections[acme.alias].execute_wrapper(record):
        response = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert response.status_code == HTTPStatus.OK
    assert statements  # the wrapper saw the request's queries
    assert not [sql for sql in statements if sql.lstrip().upper().startswith("UPDATE")]


# --- throttling ---------------------------------------------------------------------------
def test_failed_key_attempts_lock_the_client_address_out_with_retry_after(
    acme_api, reader, low_lockout
):
    _, key = reader
    for _ in range(3):
        response = acme_api.get("/api/address-book", **api_key_header(_tampered(key)))
        assert response.status_code == HTTPStatus.UNAUTHORIZED
    for attempt in (_tampered(key), key):
        locked = acme_api.get("/api/address-book", **api_key_header(attempt))
        assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert locked.json()["message"] == "Too many requests"
        assert int(locked["Retry-After"]) > 0
    elsewhere = acme_api.get("/api/address-book", REMOTE_ADDR="203.0.113.9", **api_key_header(key))
    assert elsewhere.status_code == HTTPStatus.OK


def test_keys_of_another_tenant_count_as_failed_attempts(
    acme_api, globex, make_user, reader, low_lockout
):
    gus = make_user(globex, "gus", role=User.Role.ADMIN)
    _, foreign = create_api_key(globex, gus)
    for _ in range(3):
        assert acme_api.get("/api/address-book", **api_key_header(foreign)).status_code == 403
    _, key = reader
    locked = acme_api.get("/api/address-book", **api_key_header(key))
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_junk_keys_on_one_tenant_never_lock_out_another_tenants_keys(
    acme_api, globex, reader, low_lockout
):
    """Failed attempts count per tenant and address: a shared address (an office, a NAT)
    guessing at globex leaves acme's keys working."""
    _, key = reader
    globex_api = client_for("globex.test")
    for _ in range(4):
        globex_api.get("/api/address-book", **api_key_header("tk_globex_junk.junk"))
    assert acme_api.get("/api/address-book", **api_key_header(key)).status_code == HTTPStatus.OK


def test_a_revoked_key_is_no_guess_and_never_locks_the_address(
    acme, acme_api, reader, writer, low_lockout
):
    revoked, old = reader
    _update(acme, revoked, revoked_at=timezone.now())
    for _ in range(5):
        assert acme_api.get("/api/address-book", **api_key_header(old)).status_code == 401
    _, key = writer
    assert acme_api.get("/api/address-book", **api_key_header(key)).status_code == HTTPStatus.OK


def test_a_jwt_is_never_throttled_by_failed_keys(acme, acme_api, admin, reader, low_lockout):
    _, key = reader
    for _ in range(4):
        acme_api.get("/api/address-book", **api_key_header(_tampered(key)))
    response = acme_api.get("/api/address-book", **bearer_header(access_token(admin, acme)))
    assert response.status_code == HTTPStatus.OK


# --- secrets ------------------------------------------------------------------------------
def test_no_key_reaches_a_log_line_or_an_error_body(acme, acme_api, as_admin, globex, make_user):
    seen = len(collector.output)
    body = acme_api.post(
        "/api/api-keys", {"name": "n", "scopes": ["contacts:read"]}, format="json", **as_admin
    ).json()
    key = body["key"]
    secret = key.split(".")[1]
    acme_api.get("/api/address-book", **api_key_bearer(key))
    acme_api.post("/api/address-book", {"name": "x"}, format="json", **api_key_header(key))
    acme_api.get("/api/address-book", **api_key_header(_tampered(key)))
    client_for("globex.test").get("/api/address-book", **api_key_bearer(key))
    acme_api.delete(f"/api/api-keys/{body['id']}", **as_admin)
    acme_api.get("/api/address-book", **api_key_bearer(key))
    logging.getLogger("accounts.tests").warning("a client pasted its key: %s", key)
    assert secret in collector.secrets  # the collector saw it: the session check covers it
    output = collector.output[seen:]
    assert {"log", "error body"} <= {exposure.kind for exposure in output}
    assert not [e for e in output if secret in e.text]


def test_the_leak_collector_records_every_key_secret_it_digests(acme, admin):
    _, key = create_api_key(acme, admin)
    assert key.split(".")[1] in collector.secrets


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_the_stream_never_carries_a_key(acme, admin):
    token = (await sync_to_async(bearer_for)(admin, acme))["HTTP_AUTHORIZATION"]
    _, key = await sync_to_async(create_api_key)(acme, admin)
    communicator, connected = await open_stream(
        headers=[(b"authorization", token.encode())], query="format=json"
    )
    assert connected
    await sync_to_async(_log_in_tenant)(acme, f"leaked {key}")
    frame = await communicator.receive_from(timeout=5)
    while "leaked" not in frame:  # the key's creation may be published after the connect
        assert key.split(".")[1] not in frame
        frame = await communicator.receive_from(timeout=5)
    assert key.split(".")[1] not in frame
    assert key.split(".")[0] in frame
    await communicator.disconnect()


def _log_in_tenant(tenant, message: str) -> None:
    with use_tenant(tenant):
        logging.getLogger("addressbook.keys").warning(message)


# --- the format and the digest ------------------------------------------------------------
def test_a_key_of_the_longest_slug_parses_and_one_character_more_does_not():
    slug = "a" * 63
    prefix, secret = api_key_generator.make_key(slug)
    parsed = api_key_generator.parse(f"{prefix}.{secret}")
    assert (parsed.prefix, parsed.tenant_slug, parsed.secret) == (prefix, slug, secret)
    assert api_key_generator.parse(f"{prefix}.{secret}A") is None
    assert api_key_generator.parse(f"tk_{'a' * 64}_{prefix[-12:]}.{secret}") is None


def test_keys_survive_a_secret_key_rotation_through_the_fallbacks(acme_api, reader, settings):
    _, key = reader
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old]
    assert acme_api.get("/api/address-book", **api_key_bearer(key)).status_code == HTTPStatus.OK
    settings.SECRET_KEY_FALLBACKS = []
    response = acme_api.get("/api/address-book", **api_key_bearer(key))
    assert (response.status_code, response.json()) == (HTTPStatus.UNAUTHORIZED, INVALID)


def test_a_read_key_may_ask_head_and_options(acme_api, reader):
    _, key = reader
    assert acme_api.head("/api/address-book", **api_key_bearer(key)).status_code == HTTPStatus.OK
    response = acme_api.options("/api/address-book", **api_key_bearer(key))
    assert response.status_code == HTTPStatus.OK
