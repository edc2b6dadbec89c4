"""Errors under /api/ leave in the envelope, whatever raised them."""

from http import HTTPStatus

import pytest

from tests.helpers import client_for

pytestmark = pytest.mark.django_db(databases="__all__")


def test_unknown_api_path_is_a_json_404_even_with_debug(acme, settings):
    settings.DEBUG = True
    response = client_for("acme.test").get("/api/no-such-endpoint")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {
        "status": HTTPStatus.NOT_FOUND,
        "error": "Not Found",
        "message": "Not found",
    }


def test_platform_api_unknown_path_is_a_json_404(acme):
    response = client_for("anything.example").get("/api/platform/nothing-here")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"] == "Not Found"


def test_non_api_paths_keep_django_pages(acme):
    response = client_for("acme.test").get("/no-such-page")
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_error_body_is_compact_json_as_clients_see_it(acme):
    response = client_for("acme.test").get("/api/address-book")
    assert response.content == (
        b'{"status":401,"error":"Unauthorized","message":"Missing authorization header"}'
    )
