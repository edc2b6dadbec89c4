"""The auth endpoints on a tenant's host: signup, login, refresh, logout, me, password."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from http import HTTPStatus

import jwt
import pytest
from django.conf import settings as django_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tenants.context import use_tenant
from tests.factories import NEW_PASSWORD, PASSWORD, WRONG_PASSWORD, bearer_header
from tests.helpers import client_for, login, me, tokens_for

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def _no_secret_in_the_logs(caplog):
    """Every log line of every test here is checked: no password, no JWT."""
    caplog.set_level(logging.DEBUG)
    yield
    text = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for secret in (PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, "eyJ", "Bearer "):
        assert secret not in text


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- signup -------------------------------------------------------------------------------
def test_signup_creates_the_first_user_as_admin_and_answers_201(acme):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@example.test", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert set(body) == {"id", "username", "email", "role"}
    assert body["username"] == "ann"
    assert body["email"] == "ann@example.test"
    assert body["role"] == "admin"


def test_later_signups_are_members(acme, make_user):
    make_user(acme, "first")
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "bob", "email": "bob@example.test", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["role"] == "member"


def test_signup_hashes_the_password_with_argon2id(acme):
    client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@example.test", "password": PASSWORD},
        format="json",
    )
    with use_tenant(acme):
        user = User.objects.get(username="ann")
    assert user.password.startswith("argon2$argon2id$")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1A", "This password is too short. It must contain at least 8 characters."),
        ("alllowercase1", "This password must contain an upper-case letter."),
        ("ALLUPPERCASE1", "This password must contain a lower-case letter."),
        ("NoDigitsHere", "This password must contain a digit."),
        ("Aa1" + "x" * 126, "This password is too long. It must contain at most 128 characters."),
    ],
)
def test_weak_passwords_are_400_with_details(acme, password, message):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@example.test", "password": password},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.json()
    assert body["message"] == "Validation failed"
    assert body["error"] == "Bad Request"
    assert message in body["details"]["password"]


def test_invalid_email_is_400_with_details(acme):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "not-an-address", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"]["email"] == ["Enter a valid email address."]


@pytest.mark.parametrize("invisible", ["\u200b", "\u202e", "\u00ad", "\ufeff", "\ue000"])
def test_an_email_with_an_invisible_character_is_400(acme, invisible):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": f"ann@acme.example{invisible}", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"]["email"] == ["Enter a valid email address."]


def test_an_internationalised_email_domain_is_accepted(acme):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@bücher.example", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED


def test_missing_fields_are_400_with_details(acme):
    response = client_for("acme.test").post("/api/auth/signup", {}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()["details"]) == {"username", "email", "password"}


def test_duplicate_username_is_400(acme, make_user):
    make_user(acme, "ann")
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "other@example.test", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "username" in response.json()["details"]


def test_duplicate_email_is_compared_case_insensitively(acme, make_user):
    make_user(acme, "ann", email="ann@example.test")
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann2", "email": "ANN@Example.test", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "email" in response.json()["details"]


def test_a_username_equal_to_another_users_email_is_400(acme, make_user):
    victim = make_user(acme, "vv", email="victim@corp.example")
    client = client_for("acme.test")
    squat = client.post(
        "/api/auth/signup",
        {"username": "Victim@Corp.example", "email": "x2@elsewhere.test", "password": PASSWORD},
        format="json",
    )
    assert squat.status_code == HTTPStatus.BAD_REQUEST
    assert squat.json()["details"]["username"] == ["This username is another user's email address."]
    login = client.post(
        "/api/auth/login",
        {"username_or_email": victim.email, "password": PASSWORD},
        format="json",
    )
    assert login.status_code == HTTPStatus.OK


def test_an_email_equal_to_another_users_username_is_400(acme, make_user):
    make_user(acme, "boss@corp.example", email="boss@elsewhere.test")
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "mallory", "email": "BOSS@corp.example", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"]["email"] == ["This email address is another user's username."]


def test_the_same_username_may_exist_in_two_tenants(acme, globex, make_user):
    make_user(acme, "ann")
    response = client_for("globex.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@example.test", "password": PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["role"] == "admin"  # first user of globex


def test_signup_writes_only_to_the_hosts_tenant_database(acme, globex):
    client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "ann@example.test", "password": PASSWORD},
        format="json",
    )
    with use_tenant(globex):
        assert not User.objects.filter(username="ann").exists()
    assert not User.objects.using("default").filter(username="ann").exists()


def test_unknown_body_fields_are_400(acme):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "a@example.test", "password": PASSWORD, "role": "admin"},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"] == {"role": ["Unknown field."]}


def test_malformed_json_is_400_in_the_envelope(acme):
    response = client_for("acme.test").post(
        "/api/auth/signup", "{not json", content_type="application/json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["status"] == HTTPStatus.BAD_REQUEST


# --- tenant fields in bodies and query strings --------------------------------------------
@pytest.mark.parametrize("field", ["tenant", "tenant_id"])
def test_a_matching_tenant_field_is_accepted_and_ignored(acme, field):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "a@example.test", "password": PASSWORD, field: "acme"},
        format="json",
    )
    assert response.status_code == HTTPStatus.CREATED


@pytest.mark.parametrize("field", ["tenant", "tenant_id"])
def test_a_mismatching_tenant_field_in_the_body_is_403(acme, globex, field):
    response = client_for("acme.test").post(
        "/api/auth/signup",
        {"username": "ann", "email": "a@example.test", "password": PASSWORD, field: "globex"},
        format="json",
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "status": HTTPStatus.FORBIDDEN,
        "error": "Forbidden",
        "message": "Tenant access denied",
    }
    with use_tenant(acme):
        assert not User.objects.filter(username="ann").exists()


def test_a_mismatching_tenant_in_the_query_string_is_403_before_authentication(acme, globex):
    response = client_for("acme.test").get("/api/auth/me?tenant=globex")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


def test_a_matching_tenant_in_the_query_string_is_accepted(acme, make_user):
    make_user(acme, "ann")
    access = tokens_for("acme.test", "ann")["access"]
    response = client_for("acme.test").get("/api/auth/me?tenant=acme", **bearer_header(access))
    assert response.status_code == HTTPStatus.OK


def test_a_mismatching_tenant_on_login_is_403(acme, globex, make_user):
    make_user(acme, "ann")
    response = client_for("acme.test").post(
        "/api/auth/login",
        {"username_or_email": "ann", "password": PASSWORD, "tenant": "globex"},
        format="json",
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


# --- login --------------------------------------------------------------------------------
def test_login_returns_the_token_pair_for_the_hosts_tenant(acme, make_user):
    make_user(acme, "ann")
    response = login("acme.test", "ann")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"token", "access", "refresh", "token_type", "expires_in", "tenant"}
    assert body["token"] == body["access"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == django_settings.ACCESS_TOKEN_TTL
    assert body["tenant"] == "acme"
    claims = jwt.decode(
        body["access"],
        django_settings.JWT_SECRET,
        algorithms=["HS256"],
        audience=django_settings.JWT_AUDIENCE,
        issuer=django_settings.JWT_ISSUER,
    )
    assert claims["tenant"] == "acme"
    assert int(claims["user_id"]) > 0
    assert claims["jti"]
    assert jwt.get_unverified_header(body["access"])["alg"] == "HS256"


def test_login_records_last_login_and_no_outstanding_token(acme, make_user):
    make_user(acme, "ann")
    tokens_for("acme.test", "ann")
    with use_tenant(acme):
        assert User.objects.get(username="ann").last_login is not None
        assert OutstandingToken.objects.count() == 0


def test_login_by_email_is_case_insensitive(acme, make_user):
    make_user(acme, "ann", email="ann@example.test")
    assert login("acme.test", "ANN@example.TEST").status_code == HTTPStatus.OK


def test_wrong_password_is_401_invalid_credentials(acme, make_user):
    make_user(acme, "ann")
    response = login("acme.test", "ann", WRONG_PASSWORD)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {
        "status": HTTPStatus.UNAUTHORIZED,
        "error": "Unauthorized",
        "message": "Invalid credentials",
    }


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(acme, make_user):
    make_user(acme, "ann")
    wrong = login("acme.test", "ann", WRONG_PASSWORD)
    unknown = login("acme.test", "nobody", WRONG_PASSWORD)
    assert unknown.status_code == wrong.status_code == HTTPStatus.UNAUTHORIZED
    assert unknown.json() == wrong.json()


def test_unknown_user_is_checked_against_a_dummy_hash(acme, monkeypatch):
    from accounts import services

    calls = []
    real = services.check_password
    monkeypatch.setattr(
        services, "check_password", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    assert login("acme.test", "nobody").status_code == HTTPStatus.UNAUTHORIZED
    assert len(calls) == 1
    assert calls[0][1].startswith("argon2$argon2id$")


def test_deactivated_user_login_is_401_invalid_credentials(acme, make_user):
    make_user(acme, "ann", is_active=False)
    response = login("acme.test", "ann")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid credentials"


def test_a_user_of_another_tenant_cannot_log_in_on_this_host(acme, globex, make_user):
    make_user(globex, "gus")
    response = login("acme.test", "gus")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid credentials"


def test_login_unknown_fields_are_400(acme):
    response = client_for("acme.test").post(
        "/api/auth/login",
        {"username_or_email": "ann", "password": PASSWORD, "remember": True},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "remember" in response.json()["details"]


# --- me -----------------------------------------------------------------------------------
def test_me_returns_the_user_and_tenant(acme, make_user):
    ann = make_user(acme, "ann", role="admin")
    access = tokens_for("acme.test", "ann")["access"]
    response = me("acme.test", access)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "id": ann.pk,
        "username": "ann",
        "email": "ann@example.test",
        "role": "admin",
        "tenant": "acme",
        "email_verified": False,
    }


def test_me_without_a_header_is_401_missing_authorization_header(acme):
    response = client_for("acme.test").get("/api/auth/me")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {
        "status": HTTPStatus.UNAUTHORIZED,
        "error": "Unauthorized",
        "message": "Missing authorization header",
    }


def test_same_user_id_in_two_tenants_token_on_the_other_host_is_403(acme, globex, make_user):
    ann = make_user(acme, "ann", id=4242)
    gus = make_user(globex, "gus", id=4242)
    assert ann.pk == gus.pk
    access = tokens_for("globex.test", "gus")["access"]
    response = me("acme.test", access)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


def _valid_claims(user, tenant_slug="acme") -> dict:
    token = AccessToken.for_user(user)
    token["tenant"] = tenant_slug
    return dict(token.payload)


def test_expired_token_is_401_invalid_token(acme, make_user):
    ann = make_user(acme, "ann")
    with use_tenant(acme):
        token = AccessToken.for_user(ann)
    token["tenant"] = "acme"
    token.set_exp(from_time=token.current_time - timedelta(hours=1))
    response = me("acme.test", str(token))
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_tampered_token_is_401_invalid_token(acme, make_user):
    make_user(acme, "ann")
    access = tokens_for("acme.test", "ann")["access"]
    header, payload, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = 999
    response = me("acme.test", f"{header}.{b64(claims)}.{signature}")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_alg_none_token_is_401_invalid_token(acme, make_user):
    ann = make_user(acme, "ann")
    claims = _valid_claims(ann)
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    response = me("acme.test", forged)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_token_signed_with_another_key_is_401_invalid_token(acme, make_user):
    ann = make_user(acme, "ann")
    forged = jwt.encode(_valid_claims(ann), "another-key-" * 4, algorithm="HS256")
    response = me("acme.test", forged)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_token_signed_with_another_algorithm_is_401(acme, make_user):
    ann = make_user(acme, "ann")
    forged = jwt.encode(_valid_claims(ann), django_settings.JWT_SECRET, algorithm="HS512")
    response = me("acme.test", forged)
    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_refresh_token_used_as_access_token_is_401(acme, make_user):
    make_user(acme, "ann")
    refresh = tokens_for("acme.test", "ann")["refresh"]
    assert me("acme.test", refresh).status_code == HTTPStatus.UNAUTHORIZED


# --- refresh ------------------------------------------------------------------------------
def refresh_call(host: str, refresh: str):
    return client_for(host).post("/api/auth/refresh", {"refresh": refresh}, format="json")


def test_refresh_returns_a_new_pair(acme, make_user):
    make_user(acme, "ann")
    first = tokens_for("acme.test", "ann")
    response = refresh_call("acme.test", first["refresh"])
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"token", "access", "refresh", "token_type", "expires_in", "tenant"}
    assert body["refresh"] != first["refresh"]
    assert body["tenant"] == "acme"
    assert me("acme.test", body["access"]).status_code == HTTPStatus.OK


def test_rotated_refresh_token_reuse_is_401_invalid_token(acme, make_user):
    make_user(acme, "ann")
    first = tokens_for("acme.test", "ann")
    assert refresh_call("acme.test", first["refresh"]).status_code == HTTPStatus.OK
    again = refresh_call("acme.test", first["refresh"])
    assert again.status_code == HTTPStatus.UNAUTHORIZED
    assert again.json()["message"] == "Invalid token"


def test_a_rotated_refresh_token_is_recorded_outstanding_and_blacklisted(acme, make_user):
    make_user(acme, "ann")
    first = tokens_for("acme.test", "ann")
    assert refresh_call("acme.test", first["refresh"]).status_code == HTTPStatus.OK
    jti = jwt.decode(first["refresh"], options={"verify_signature": False})["jti"]
    with use_tenant(acme):
        outstanding = OutstandingToken.objects.get(jti=jti)
        assert outstanding.token == first["refresh"]
        assert outstanding.created_at is not None
        assert BlacklistedToken.objects.filter(token=outstanding).exists()


def test_a_refresh_token_recorded_when_issued_is_still_blacklisted_on_rotation(acme, make_user):
    """Tokens from releases that recorded them at login, or from SimpleJWT's own for_user."""
    make_user(acme, "ann")
    first = tokens_for("acme.test", "ann")
    with use_tenant(acme):
        RefreshToken(first["refresh"]).outstand()
    assert refresh_call("acme.test", first["refresh"]).status_code == HTTPStatus.OK
    again = refresh_call("acme.test", first["refresh"])
    assert again.status_code == HTTPStatus.UNAUTHORIZED
    assert again.json()["message"] == "Invalid token"


def test_garbage_refresh_token_is_401_invalid_token(acme):
    response = refresh_call("acme.test", "not-a-token")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_access_token_is_not_a_refresh_token(acme, make_user):
    make_user(acme, "ann")
    access = tokens_for("acme.test", "ann")["access"]
    assert refresh_call("acme.test", access).status_code == HTTPStatus.UNAUTHORIZED


def test_refresh_token_of_another_tenant_is_403(acme, globex, make_user):
    make_user(acme, "ann")
    make_user(globex, "gus")
    refresh = tokens_for("globex.test", "gus")["refresh"]
    response = refresh_call("acme.test", refresh)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


def test_refresh_of_a_deactivated_user_is_401(acme, make_user):
    ann = make_user(acme, "ann")
    refresh = tokens_for("acme.test", "ann")["refresh"]
    with use_tenant(acme):
        User.objects.filter(pk=ann.pk).update(is_active=False)
    assert refresh_call("acme.test", refresh).status_code == HTTPStatus.UNAUTHORIZED


def test_refresh_missing_field_is_400(acme):
    response = client_for("acme.test").post("/api/auth/refresh", {}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "refresh" in response.json()["details"]


# --- logout -------------------------------------------------------------------------------
def test_logout_is_204_and_the_access_token_stops_working(acme, make_user):
    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    response = client_for("acme.test").post(
        "/api/auth/logout",
        {"refresh": pair["refresh"]},
        format="json",
        **bearer_header(pair["access"]),
    )
    assert response.status_code == HTTPStatus.NO_CONTENT
    after = me("acme.test", pair["access"])
    assert after.status_code == HTTPStatus.UNAUTHORIZED
    assert after.json()["message"] == "Invalid token"


def test_logout_revokes_the_refresh_token(acme, make_user):
    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    client_for("acme.test").post(
        "/api/auth/logout",
        {"refresh": pair["refresh"]},
        format="json",
        **bearer_header(pair["access"]),
    )
    response = refresh_call("acme.test", pair["refresh"])
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_logout_without_a_body_revokes_the_access_token(acme, make_user):
    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    response = client_for("acme.test").post("/api/auth/logout", **bearer_header(pair["access"]))
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert me("acme.test", pair["access"]).status_code == HTTPStatus.UNAUTHORIZED


def test_logout_without_a_body_revokes_the_refresh_token_of_the_pair_too(acme, make_user):
    make_user(acme, "ann")
    client = client_for("acme.test")
    pair = tokens_for("acme.test", "ann")
    rotated = client.post("/api/auth/refresh", {"refresh": pair["refresh"]}, format="json")
    other = tokens_for("acme.test", "ann")
    new_pair = rotated.json()
    response = client.post("/api/auth/logout", **bearer_header(new_pair["access"]))
    assert response.status_code == HTTPStatus.NO_CONTENT
    refused = client.post("/api/auth/refresh", {"refresh": new_pair["refresh"]}, format="json")
    assert (refused.status_code, refused.json()["message"]) == (
        HTTPStatus.UNAUTHORIZED,
        "Invalid token",
    )
    kept = client.post("/api/auth/refresh", {"refresh": other["refresh"]}, format="json")
    assert kept.status_code == HTTPStatus.OK


def test_logout_leaves_other_sessions_working(acme, make_user):
    make_user(acme, "ann")
    one = tokens_for("acme.test", "ann")
    two = tokens_for("acme.test", "ann")
    client_for("acme.test").post("/api/auth/logout", **bearer_header(one["access"]))
    assert me("acme.test", two["access"]).status_code == HTTPStatus.OK


def test_logout_without_a_token_is_401(acme):
    response = client_for("acme.test").post("/api/auth/logout")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Missing authorization header"


def test_logout_cannot_revoke_another_users_refresh_token(acme, make_user):
    make_user(acme, "ann")
    make_user(acme, "bob")
    ann = tokens_for("acme.test", "ann")
    bob = tokens_for("acme.test", "bob")
    client_for("acme.test").post(
        "/api/auth/logout",
        {"refresh": bob["refresh"]},
        format="json",
        **bearer_header(ann["access"]),
    )
    assert refresh_call("acme.test", bob["refresh"]).status_code == HTTPStatus.OK


# --- password change ----------------------------------------------------------------------


def change_password(access: str, old: str = PASSWORD, new: str = NEW_PASSWORD):
    return client_for("acme.test").post(
        "/api/auth/password",
        {"old_password": old, "new_password": new},
        format="json",
        **bearer_header(access),
    )


def test_password_change_returns_a_new_pair_and_old_tokens_stop_working(acme, make_user):
    make_user(acme, "ann")
    old = tokens_for("acme.test", "ann")
    response = change_password(old["access"])
    assert response.status_code == HTTPStatus.OK
    new = response.json()
    assert set(new) == {"token", "access", "refresh", "token_type", "expires_in", "tenant"}
    assert me("acme.test", old["access"]).status_code == HTTPStatus.UNAUTHORIZED
    assert refresh_call("acme.test", old["refresh"]).status_code == HTTPStatus.UNAUTHORIZED
    # The new pair, issued within the same second as the change, works.
    assert me("acme.test", new["access"]).status_code == HTTPStatus.OK
    assert refresh_call("acme.test", new["refresh"]).status_code == HTTPStatus.OK


def test_password_change_takes_effect_for_login(acme, make_user):
    make_user(acme, "ann")
    change_password(tokens_for("acme.test", "ann")["access"])
    assert login("acme.test", "ann", PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    assert login("acme.test", "ann", NEW_PASSWORD).status_code == HTTPStatus.OK


def test_password_change_with_a_wrong_old_password_is_400(acme, make_user):
    make_user(acme, "ann")
    access = tokens_for("acme.test", "ann")["access"]
    response = change_password(access, old=WRONG_PASSWORD)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "old_password" in response.json()["details"]
    assert me("acme.test", access).status_code == HTTPStatus.OK


def test_password_change_to_a_weak_password_is_400(acme, make_user):
    make_user(acme, "ann")
    response = change_password(tokens_for("acme.test", "ann")["access"], new="weakpass")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "new_password" in response.json()["details"]


def test_password_change_requires_a_token(acme):
    response = client_for("acme.test").post(
        "/api/auth/password",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Missing authorization header"


def test_password_change_in_one_tenant_leaves_the_other_alone(acme, globex, make_user):
    make_user(acme, "ann")
    make_user(globex, "ann")
    globex_pair = tokens_for("globex.test", "ann")
    change_password(tokens_for("acme.test", "ann")["access"])
    assert me("globex.test", globex_pair["access"]).status_code == HTTPStatus.OK
    assert login("globex.test", "ann", PASSWORD).status_code == HTTPStatus.OK


# --- platform tokens on tenant endpoints --------------------------------------------------
def test_platform_token_on_auth_me_is_403(acme):
    User.objects.create_user("root", "root@example.test", PASSWORD, is_staff=True)
    response = client_for("acme.test").post(
        "/api/platform/auth/login",
        {"username_or_email": "root", "password": PASSWORD},
        format="json",
    )
    access = response.json()["access"]
    forbidden = me("acme.test", access)
    assert forbidden.status_code == HTTPStatus.FORBIDDEN
    assert forbidden.json()["message"] == "Tenant access denied"
