"""The users API for tenant admins: list, create, show, change role or active flag,
deactivate; the last active admin is kept."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from accounts.models import User
from tenants.context import use_tenant
from tests.factories import PASSWORD
from tests.helpers import client_for, me, tokens_for

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def admin(acme, make_user):
    return make_user(acme, "boss", role="admin")


@pytest.fixture
def member(acme, make_user, admin):
    return make_user(acme, "mia", role="member")


@pytest.fixture
def as_admin(acme, admin, bearer):
    return bearer(admin, acme)


def test_admin_lists_the_tenants_users_paginated(acme, admin, member, as_admin):
    response = client_for("acme.test").get("/api/users", **as_admin)
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2
    assert [u["username"] for u in body["results"]] == ["boss", "mia"]
    assert set(body["results"][0]) >= {"id", "username", "email", "role", "is_active"}
    assert "password" not in body["results"][0]


def test_user_list_pages(acme, admin, make_user, as_admin):
    for i in range(3):
        make_user(acme, f"user{i}")
    response = client_for("acme.test").get("/api/users?page_size=2", **as_admin)
    body = response.json()
    assert body["count"] == 4
    assert len(body["results"]) == 2
    assert body["next"] is not None


def test_user_list_shows_only_this_tenants_users(acme, globex, admin, make_user, as_admin):
    make_user(globex, "gus")
    body = client_for("acme.test").get("/api/users", **as_admin).json()
    assert "gus" not in [u["username"] for u in body["results"]]


def test_member_gets_403_on_every_users_endpoint(acme, member, bearer):
    headers = bearer(member, acme)
    client = client_for("acme.test")
    calls = [
        client.get("/api/users", **headers),
        client.post("/api/users", {}, format="json", **headers),
        client.get(f"/api/users/{member.pk}", **headers),
        client.patch(f"/api/users/{member.pk}", {"role": "admin"}, format="json", **headers),
        client.delete(f"/api/users/{member.pk}", **headers),
    ]
    assert [c.status_code for c in calls] == [HTTPStatus.FORBIDDEN] * 5
    assert calls[0].json()["status"] == HTTPStatus.FORBIDDEN


def test_users_api_without_a_token_is_401(acme):
    response = client_for("acme.test").get("/api/users")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Missing authorization header"


def test_admin_token_of_another_tenant_is_403(acme, globex, make_user, bearer):
    make_user(acme, "boss", role="admin")
    gus = make_user(globex, "gus", role="admin")
    response = client_for("acme.test").get("/api/users", **bearer(gus, globex))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


def test_admin_creates_a_user(acme, admin, as_admin):
    response = client_for("acme.test").post(
        "/api/users",
        {"username": "new", "email": "new@example.test", "password": PASSWORD, "role": "admin"},
        format="json",
        **as_admin,
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert body["username"] == "new"
    assert body["role"] == "admin"
    with use_tenant(acme):
        assert User.objects.get(username="new").check_password(PASSWORD)


def test_create_defaults_to_member_and_validates(acme, admin, as_admin):
    client = client_for("acme.test")
    ok = client.post(
        "/api/users",
        {"username": "new", "email": "new@example.test", "password": PASSWORD},
        format="json",
        **as_admin,
    )
    assert ok.json()["role"] == "member"
    bad = client.post(
        "/api/users",
        {"username": "new", "email": "nope", "password": "weak", "role": "owner"},
        format="json",
        **as_admin,
    )
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert set(bad.json()["details"]) == {"role"}


def test_admin_shows_one_user(acme, member, as_admin):
    response = client_for("acme.test").get(f"/api/users/{member.pk}", **as_admin)
    assert response.status_code == HTTPStatus.OK
    assert response.json()["username"] == "mia"


def test_unknown_user_id_is_404(acme, admin, as_admin):
    response = client_for("acme.test").get("/api/users/9999", **as_admin)
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"] == "Not Found"


def test_a_user_of_another_tenant_is_404_even_with_a_matching_id(acme, globex, make_user, bearer):
    boss = make_user(acme, "boss", role="admin", id=5001)
    gus = make_user(globex, "gus", id=5002)
    response = client_for("acme.test").get(f"/api/users/{gus.pk}", **bearer(boss, acme))
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_admin_promotes_a_member(acme, member, as_admin):
    response = client_for("acme.test").patch(
        f"/api/users/{member.pk}", {"role": "admin"}, format="json", **as_admin
    )
    assert response.status_code == HTTPStatus.OK
    assert response.json()["role"] == "admin"


def test_patch_rejects_unknown_fields_and_bad_roles(acme, member, as_admin):
    client = client_for("acme.test")
    unknown = client.patch(f"/api/users/{member.pk}", {"username": "x"}, format="json", **as_admin)
    assert unknown.status_code == HTTPStatus.BAD_REQUEST
    assert unknown.json()["details"] == {"username": ["Unknown field."]}
    bad = client.patch(f"/api/users/{member.pk}", {"role": "owner"}, format="json", **as_admin)
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert "role" in bad.json()["details"]


def test_role_change_makes_the_users_tokens_401_at_once(acme, member, as_admin):
    pair = tokens_for("acme.test", "mia")
    client_for("acme.test").patch(
        f"/api/users/{member.pk}", {"role": "admin"}, format="json", **as_admin
    )
    response = me("acme.test", pair["access"])
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"
    refreshed = client_for("acme.test").post(
        "/api/auth/refresh", {"refresh": pair["refresh"]}, format="json"
    )
    assert refreshed.status_code == HTTPStatus.UNAUTHORIZED
    assert me("acme.test", tokens_for("acme.test", "mia")["access"]).json()["role"] == "admin"


def test_deactivation_by_patch_makes_tokens_401_and_login_fail(acme, member, as_admin):
    access = tokens_for("acme.test", "mia")["access"]
    response = client_for("acme.test").patch(
        f"/api/users/{member.pk}", {"is_active": False}, format="json", **as_admin
    )
    assert response.status_code == HTTPStatus.OK
    assert response.json()["is_active"] is False
    assert me("acme.test", access).status_code == HTTPStatus.UNAUTHORIZED
    login = client_for("acme.test").post(
        "/api/auth/login", {"username_or_email": "mia", "password": PASSWORD}, format="json"
    )
    assert login.json()["message"] == "Invalid credentials"


def test_delete_deactivates_and_keeps_the_row(acme, member, as_admin):
    access = tokens_for("acme.test", "mia")["access"]
    response = client_for("acme.test").delete(f"/api/users/{member.pk}", **as_admin)
    assert response.status_code == HTTPStatus.NO_CONTENT
    with use_tenant(acme):
        assert User.objects.get(pk=member.pk).is_active is False
    assert me("acme.test", access).status_code == HTTPStatus.UNAUTHORIZED


def test_reactivation_lets_the_user_log_in_again(acme, member, as_admin):
    client = client_for("acme.test")
    client.delete(f"/api/users/{member.pk}", **as_admin)
    client.patch(f"/api/users/{member.pk}", {"is_active": True}, format="json", **as_admin)
    assert tokens_for("acme.test", "mia")["tenant"] == "acme"


def test_demoting_the_last_active_admin_is_409(acme, admin, member, as_admin):
    response = client_for("acme.test").patch(
        f"/api/users/{admin.pk}", {"role": "member"}, format="json", **as_admin
    )
    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json() == {
        "status": HTTPStatus.CONFLICT,
        "error": "Conflict",
        "message": "A tenant must keep at least one admin",
    }
    with use_tenant(acme):
        assert User.objects.get(pk=admin.pk).role == "admin"


def test_deactivating_the_last_active_admin_is_409(acme, admin, as_admin):
    client = client_for("acme.test")
    patched = client.patch(
        f"/api/users/{admin.pk}", {"is_active": False}, format="json", **as_admin
    )
    assert patched.status_code == HTTPStatus.CONFLICT
    deleted = client.delete(f"/api/users/{admin.pk}", **as_admin)
    assert deleted.status_code == HTTPStatus.CONFLICT
    assert deleted.json()["message"] == "A tenant must keep at least one admin"


def test_an_inactive_admin_does_not_count_as_the_remaining_admin(acme, admin, make_user, as_admin):
    make_user(acme, "old", role="admin", is_active=False)
    response = client_for("acme.test").patch(
        f"/api/users/{admin.pk}", {"role": "member"}, format="json", **as_admin
    )
    assert response.status_code == HTTPStatus.CONFLICT


def test_an_admin_may_step_down_when_another_admin_remains(acme, admin, make_user, as_admin):
    make_user(acme, "second", role="admin")
    response = client_for("acme.test").patch(
        f"/api/users/{admin.pk}", {"role": "member"}, format="json", **as_admin
    )
    assert response.status_code == HTTPStatus.OK
    # The step-down revoked the token that made the call.
    assert (
        client_for("acme.test").get("/api/users", **as_admin).status_code == HTTPStatus.UNAUTHORIZED
    )


def test_a_mismatching_tenant_query_is_403_on_users(acme, globex, admin, as_admin):
    response = client_for("acme.test").get("/api/users?tenant_id=globex", **as_admin)
    assert response.status_code == HTTPStatus.FORBIDDEN
