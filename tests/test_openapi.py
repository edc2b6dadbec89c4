"""The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/): valid, complete, and true
to what the server answers."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from http import HTTPStatus

import jsonschema
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from tests.factories import PASSWORD
from tests.helpers import client_for

PUBLIC_OPERATIONS = {
    "auth_signup",
    "auth_login",
    "auth_login_mfa",
    "auth_refresh",
    "auth_password_reset",
    "auth_password_reset_confirm",
    "auth_verify_email_confirm",
    "platform_login",
    "platform_login_mfa",
    "platform_refresh",
    "health",
    "ready",
    "jwks",
    *(f"logs_gone_{method}" for method in ("get", "post", "put", "patch", "delete")),
}
UNDOCUMENTED_API_ROUTES = {"/api/schema/", "/api/docs/"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _routes(patterns, prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            routes.append("/" + route)
    return routes


def _shape(path: str) -> str:
    """A path with every parameter as `{}`: Django's `<int:pk>` and OpenAPI's `{id}` alike."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


# --- the schema ---------------------------------------------------------------------------
def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    assert (tmp_path / "s.yaml").read_text().startswith("openapi: 3")


def test_every_api_url_is_a_path_of_the_schema(schema):
    routes = {
        route
        for route in _routes(get_resolver().url_patterns)
        if route.startswith("/api/") and route not in UNDOCUMENTED_API_ROUTES
    }
    documented = {_shape(path) for path in schema["paths"]}
    assert routes
    assert {_shape(route) for route in routes} <= documented


def test_operations_endpoints_are_documented_and_metrics_is_not(schema):
    assert {"/health", "/ready", "/api/logs"} <= set(schema["paths"])
    assert "/metrics" not in schema["paths"]


def test_every_operation_has_tags_and_a_unique_operation_id(schema):
    ids = Counter(operation["operationId"] for _p, _m, operation in _operations(schema))
    assert [op_id for op_id, count in ids.items() if count > 1] == []
    tags = {tag["name"] for tag in schema["tags"]}
    assert tags == {"auth", "users", "api-keys", "audit", "address-book", "platform", "operations"}
    for path, method, operation in _operations(schema):
        assert operation.get("tags"), (method, path)
        assert set(operation["tags"]) <= tags, (method, path)


def test_the_bearer_scheme_is_an_http_jwt_scheme(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token issued for the tenant of the request's host.",
    }
    assert "security" not in schema


def test_the_api_key_scheme_is_the_x_api_key_header(schema):
    scheme = schema["components"]["securitySchemes"]["apiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Api-Key")


def test_authenticated_operations_require_the_bearer_token_and_public_ones_do_not(schema):
    for path, method, operation in _operations(schema):
        security = operation.get("security", [])
        if operation["operationId"] in PUBLIC_OPERATIONS:
            assert security == [], (method, path)
            assert (
                "401" not in operation["responses"]
                or path.endswith(("/login", "/login/mfa"))
                or (path.endswith("/refresh"))
                or path.endswith("/confirm")  # an e-mailed link's token: `Invalid token`
            )
        else:
            expected = [{"bearerAuth": []}]
            if path.startswith("/api/address-book"):  # the only operations keys may call
                expected.append({"apiKeyAuth": []})
            assert sorted(security, key=str) == sorted(expected, key=str), (method, path)
            assert "401" in operation["responses"], (method, path)
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


def test_every_error_response_is_the_envelope(schema):
    envelope = schema["components"]["schemas"]["Error"]
    assert envelope["required"] == ["error", "message", "status"]
    assert envelope["additionalProperties"] is False
    for path, method, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if int(code) >= HTTPStatus.BAD_REQUEST and (path, code) not in {("/ready", "503")}:
                content = response["content"]
                assert set(content) == {"application/json"}, (method, path, code)
                ref = content["application/json"]["schema"]
                if path != "/api/platform/tenants/{slug}/health":
                    assert ref == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_limits_and_tenant_errors_are_documented_where_they_happen(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert {"400", "413", "500"} <= set(responses), (method, path)
        if path in ("/health", "/ready"):
            assert "429" not in responses
        else:
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
        tenant_path = not path.startswith(
            ("/api/platform/", "/health", "/ready", "/api/logs", "/.well-known/")
        )
        assert ("404" in responses) is (tenant_path or "404" in responses), (method, path)
        if tenant_path:
            assert {"403", "404", "503"} <= set(responses), (method, path)


def test_request_bodies_reject_unknown_fields(schema):
    components = schema["components"]["schemas"]
    requests = [name for name in components if name.endswith("Request")]
    assert "ContactRequest" in requests
    for name in requests:
        assert components[name]["additionalProperties"] is False, name


def test_contact_list_and_export_parameters_have_types_and_enums(schema):
    def parameters(path):
        return {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}

    listing = parameters("/api/address-book")
    assert set(listing) == {
        "search", "name", "email", "phone", "gender", "age", "age_min", "age_max",
        "ordering", "cursor", "page_size",
    }  # fmt: skip
    assert listing["age_min"]["type"] == "integer"
    assert listing["page_size"]["minimum"] == 1
    export = parameters("/api/address-book/export")
    assert export["format"]["enum"] == ["csv", "json"]
    gender = schema["components"]["schemas"]["GenderEnum"]["enum"]
    assert gender == ["male", "female", "other", "unspecified"]
    content = schema["paths"]["/api/address-book/export"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/csv", "application/json"}


# --- Swagger UI without a CDN -------------------------------------------------------------
def test_swagger_ui_loads_only_local_static_assets():
    client = Client()
    response = client.get("/api/docs/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == HTTPStatus.OK, asset


def test_schema_endpoint_serves_the_schema_on_any_host():
    response = Client(HTTP_HOST="nobody.example.org").get("/api/schema/?format=json")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["info"]["title"] == "tenantkit API"


# --- the server answers as documented -----------------------------------------------------
def _json_schema(node, components: dict):
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, `nullable` spelled
    as a null alternative."""
    if isinstance(node, list):
        return [_json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _json_schema(components[node["$ref"].rsplit("/", 1)[1]], components)
    out = {
        key: _json_schema(value, components)
        for key, value in node.items()
        if key not in ("nullable", "readOnly", "writeOnly", "description", "title")
    }
    if key_properties := out.get("properties"):
        out["properties"] = {
            name: _json_schema(value, components) for name, value in key_properties.items()
        }
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def assert_documented(schema, path: str, method: str, response) -> None:
    operation = schema["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path} {response.status_code} undocumented"
    if response.status_code == HTTPStatus.NO_CONTENT:
        assert "content" not in documented
        return
    media_type = response["Content-Type"].split(";")[0]
    assert media_type in documented["content"], (path, media_type)
    if media_type != "application/json":
        return
    body_schema = _json_schema(
        documented["content"][media_type]["schema"], schema["components"]["schemas"]
    )
    if response.streaming:
        body = json.loads(b"".join(response.streaming_content))
    else:
        body = response.json()
    jsonschema.validate(body, body_schema)


@pytest.mark.django_db(databases="__all__")
def test_tenant_responses_match_the_schema(schema, acme, make_user, bearer):
    admin = make_user(acme, "boss", role="admin")
    client = client_for("acme.test")
    headers = bearer(admin, acme)

    def call(method, path, url=None, **kwargs):
        response = getattr(client, method)(url or path, format="json", **kwargs)
        assert_documented(schema, path, method, response)
        return response

    login = call(
        "post", "/api/auth/login", data={"username_or_email": "boss", "password": PASSWORD}
    )
    assert login.status_code == HTTPStatus.OK
    call("post", "/api/auth/login", data={"username_or_email": "boss", "password": "nope"})
    call("post", "/api/auth/login", data={"username_or_email": "boss", "extra": 1})
    call("post", "/api/auth/refresh", data={"refresh": login.json()["refresh"]})
    call("get", "/api/auth/me", **headers)
    call("get", "/api/auth/me")
    call("get", "/api/users", **headers)
    call("get", "/api/users/{id}", f"/api/users/{admin.pk}", **headers)
    call("patch", "/api/users/{id}", f"/api/users/{admin.pk}", data={"role": "member"}, **headers)
    trail = call("get", "/api/audit", "/api/audit?page_size=1", **headers)
    assert trail.json()["results"] and trail.json()["next"]
    call("get", "/api/audit", "/api/audit?event=nope&since=never", **headers)
    call("get", "/api/audit", "/api/audit?cursor=nope", **headers)
    created = call(
        "post", "/api/address-book", data={"name": "Ann", "email": None, "age": 30}, **headers
    )
    assert created.status_code == HTTPStatus.CREATED
    call("post", "/api/address-book", data={"name": "Bob", "gender": "male"}, **headers)
    contact = f"/api/address-book/{created.json()['id']}"
    call("get", "/api/address-book", "/api/address-book?page_size=1&ordering=-age", **headers)
    call("get", "/api/address-book/{id}", contact, **headers)
    call("patch", "/api/address-book/{id}", contact, data={"age": None}, **headers)
    call("get", "/api/address-book/stats", **headers)
    call("get", "/api/address-book/export", "/api/address-book/export?format=json", **headers)
    call("get", "/api/address-book/export", "/api/address-book/export?format=csv", **headers)
    call("delete", "/api/address-book/{id}", contact, **headers)
    call("get", "/api/address-book/{id}", contact, **headers)
    call("get", "/api/address-book", "/api/address-book?tenant=globex", **headers)
    call("post", "/api/auth/logout", **headers)

    unknown = client_for("nobody.example.org").get("/api/auth/me")
    assert unknown.status_code == HTTPStatus.NOT_FOUND
    assert_documented(schema, "/api/auth/me", "get", unknown)


@pytest.mark.django_db(databases="__all__")
def test_platform_and_operations_responses_match_the_schema(schema, acme):
    from accounts.models import User

    User.objects.create_user("root", "root@example.test", PASSWORD, is_staff=True)
    client = client_for("any.example.org")
    login = client.post(
        "/api/platform/auth/login",
        {"username_or_email": "root", "password": PASSWORD},
        format="json",
    )
    assert_documented(schema, "/api/platform/auth/login", "post", login)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {login.json()['access']}"}
    for path, url in [
        ("/api/platform/tenants", "/api/platform/tenants"),
        ("/api/platform/tenants/{slug}", "/api/platform/tenants/acme"),
        ("/api/platform/tenants/{slug}", "/api/platform/tenants/nope"),
        ("/api/platform/tenants/{slug}/health", "/api/platform/tenants/acme/health"),
    ]:
        assert_documented(schema, path, "get", client.get(url, **headers))
    for path in ("/health", "/ready", "/api/logs", "/.well-known/jwks.json"):
        assert_documented(schema, path, "get", client.get(path))


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
def test_the_key_set_of_each_key_algorithm_matches_the_schema(
    schema, algorithm, settings, tmp_path
):
    settings.JWT_ALGORITHM = algorithm
    settings.JWT_KEY_DIR = tmp_path / "jwt-keys"
    for _ in range(2):  # a current and a previous key
        call_command("rotate_jwt_keys", stdout=io.StringIO())
    response = client_for("any.example").get("/.well-known/jwks.json")
    assert len(response.json()["keys"]) == 2
    assert_documented(schema, "/.well-known/jwks.json", "get", response)
