"""The tenant-bound bearer authentication every API view uses."""

from http import HTTPStatus

import pytest

from tests.helpers import client_for

pytestmark = [pytest.mark.django_db(databases="__all__"), pytest.mark.urls("tests.probe_urls")]


def test_valid_token_on_its_own_tenant_authenticates(acme, make_user, bearer):
    user = make_user(acme, "ann")
    response = client_for("acme.test").get("/api/_whoami", **bearer(user, acme))
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"user": "ann", "tenant": "acme"}


def test_missing_header_is_401_with_the_fixed_message(acme):
    response = client_for("acme.test").get("/api/_whoami")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {
        "status": HTTPStatus.UNAUTHORIZED,
        "error": "Unauthorized",
        "message": "Missing authorization header",
    }


def test_garbage_token_is_401_invalid_token(acme):
    response = client_for("acme.test").get(
        "/api/_whoami", HTTP_AUTHORIZATION="Bearer invalid_token"
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Basic dXNlcjpwdw==", "x"])
def test_a_malformed_authorization_header_is_401_invalid_token(acme, header):
    response = client_for("acme.test").get("/api/_whoami", HTTP_AUTHORIZATION=header)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {
        "status": HTTPStatus.UNAUTHORIZED,
        "error": "Unauthorized",
        "message": "Invalid token",
    }


def test_token_of_another_tenant_with_the_same_user_id_is_403(acme, globex, make_user, bearer):
    ann = make_user(acme, "ann", id=4242)
    gus = make_user(globex, "gus", id=4242)
    assert ann.pk == gus.pk  # the same id exists in both databases
    response = client_for("acme.test").get("/api/_whoami", **bearer(gus, globex))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {
        "status": HTTPStatus.FORBIDDEN,
        "error": "Forbidden",
        "message": "Tenant access denied",
    }


@pytest.mark.parametrize(
    "user_id", ["abc", "", 1.5, True, -1, 0, 2**70, None, [1], {"id": 1}, "1 OR 1=1", 999]
)
def test_signed_token_with_a_bad_or_unknown_user_id_is_401(acme, make_user, user_id):
    """The user lookup is one hand-written statement; whatever a correctly signed token
    carries as `user_id`, the answer is 401 `Invalid token`, never a 500."""
    from rest_framework_simplejwt.tokens import AccessToken

    from tenants.context import use_tenant

    ann = make_user(acme, "ann")
    with use_tenant(acme):
        token = AccessToken.for_user(ann)
    token["tenant"] = "acme"
    token["user_id"] = user_id
    response = client_for("acme.test").get("/api/_whoami", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_string_user_id_of_a_real_user_authenticates(acme, make_user):
    from rest_framework_simplejwt.tokens import AccessToken

    from tenants.context import use_tenant

    ann = make_user(acme, "ann")
    with use_tenant(acme):
        token = AccessToken.for_user(ann)
    token["tenant"] = "acme"
    token["user_id"] = str(ann.pk)
    response = client_for("acme.test").get("/api/_whoami", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["user"] == "ann"
