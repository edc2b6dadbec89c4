"""Operations endpoints as an outsider sees them: /ready counts failing tenants without
naming them, the probes answer plain HTTP in production while every other path still
redirects, and `/` is a landing page with no tenant data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http import HTTPStatus

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.factories import bearer_header, create_staff
from tests.helpers import (
    BASE_DIR,
    client_for,
    database_unreachable,
    needs_component,
    platform_login,
    require_components,
)

pytestmark = [
    pytest.mark.django_db(databases="__all__", transaction=True),
    pytest.mark.usefixtures("closed_circuits"),
]


@pytest.fixture
def failing_tenant(tenant_factory, make_user, bearer):
    """A tenant whose database went away after a user of it was served: the failure is
    recorded as a real request records it."""
    tenant = tenant_factory("secretco")
    auth = bearer(make_user(tenant, "sam"), tenant)
    with database_unreachable(tenant):
        response = client_for("secretco.test").get("/api/address-book", **auth)
        assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        yield tenant


@pytest.fixture
def platform_auth(acme) -> dict:
    create_staff("opsroot")
    return bearer_header(platform_login("opsroot").json()["access"])


# --- /ready: a count, never a name --------------------------------------------------------
def test_ready_counts_unavailable_tenants_without_naming_them(failing_tenant):
    response = Client().get("/ready")
    body = response.json()
    assert response.status_code == HTTPStatus.OK
    assert set(body) == {"status", "checks", "tenants"}
    assert set(body["checks"]) == {"database", "cache", "channel_layer"}
    assert body["tenants"] == {"unavailable": 1}
    assert b"secretco" not in response.content


def test_ready_counts_zero_when_every_tenant_answers(acme):
    assert Client().get("/ready").json()["tenants"] == {"unavailable": 0}


def test_platform_tenant_health_names_the_unavailable_tenant(failing_tenant, platform_auth):
    response = client_for("globex.test").get(
        "/api/platform/tenants/secretco/health", **platform_auth
    )
    body = response.json()
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert (body["slug"], body["database"], body["status"]) == (
        "secretco",
        "unreachable",
        "unhealthy",
    )


def test_platform_tenant_health_needs_a_platform_token(failing_tenant):
    response = client_for("globex.test").get("/api/platform/tenants/secretco/health")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert b"unreachable" not in response.content


# --- probes over plain HTTP in production -------------------------------------------------
PRODUCTION_ENV = {
    "APP_ENV": "production",
    "DEBUG": "false",
    "SECRET_KEY": "Pq7Lm2Xz9Wc4Vb8Nr1Ty6Ud3Hs5Jk0Gf2Ae7Io4Ky9Mq1Np6Lr3Ts8Uv5Wx0Zb",
    "JWT_SECRET": "Hd4Fs8Ac1Qe6Ru3TiBv9Cx2Dz7Ea5Fb0Gc3Hd8Jk1Lm6Np4Qr9St2Uv7Wx5Yz0",
    "ALLOWED_HOSTS": "api.example.test",
}


@pytest.fixture(scope="module")
def production_redirect_settings() -> dict:
    """SECURE_SSL_REDIRECT and SECURE_REDIRECT_EXEMPT as config.settings computes them with
    APP_ENV=production (imported in a fresh interpreter: settings are read once)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "DJANGO_SETTINGS"))
    }
    env.update(PRODUCTION_ENV)
    code = (
        "import json; from config import settings as s; "
        "print(json.dumps({'SECURE_SSL_REDIRECT': s.SECURE_SSL_REDIRECT, "
        "'SECURE_REDIRECT_EXEMPT': getattr(s, 'SECURE_REDIRECT_EXEMPT', [])}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_and_exempts_exactly_the_probes(
    production_redirect_settings,
):
    assert production_redirect_settings == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_REDIRECT_EXEMPT": [r"^health\Z", r"^ready\Z", r"^metrics\Z"],
    }


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_probes_answer_plain_http_in_production(path, production_redirect_settings, acme):
    with override_settings(**production_redirect_settings):
        response = Client().get(path)
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE)
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/address-book",
        "/admin/",
        "/api/docs/",
        "/healthz",
        "/health/",
        "/health/x",
        "/health%0A",
        "/xhealth",
        "/ready.json",
        "/api/metrics",
        "/admin/health",
    ],
)
def test_every_other_path_still_redirects_to_https_in_production(
    path, production_redirect_settings, acme
):
    with override_settings(**production_redirect_settings):
        response = client_for("acme.test").get(path)
    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert response.headers["Location"] == f"https://acme.test{path}"


# --- the landing page ---------------------------------------------------------------------
LANDING_LINKS = ["/api/docs/", "/admin/", "/health", "/ready", "/api/schema/"]


@pytest.mark.parametrize("host", ["acme.test", "globex.test", "nobody.example", "localhost"])
def test_root_serves_a_landing_page_on_any_host(host, acme, globex, make_contact):
    make_contact(acme, name="Acme Private Contact")
    response = client_for(host).get("/", HTTP_ACCEPT="text/html")
    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert response.headers["Content-Type"].startswith("text/html")
    assert "tenantkit" in page
    for link in LANDING_LINKS:
        assert f'href="{link}"' in page
    assert "Acme" not in page and "acme" not in page and "Globex" not in page
    assert "Private Contact" not in page


def test_landing_page_loads_no_external_assets(acme):
    page = client_for("acme.test").get("/").content.decode()
    for external in ("http://", "https://", 'href="//', 'src="//', "<script", "<link", "@import"):
        assert external not in page


def test_landing_page_answers_json_to_a_json_client(acme):
    response = client_for("acme.test").get("/", HTTP_ACCEPT="application/json")
    body = response.json()
    assert response.status_code == HTTPStatus.OK
    assert body["name"] == "tenantkit"
    assert sorted(body["links"].values()) == sorted(LANDING_LINKS)


def test_landing_page_refuses_writes(acme):
    response = client_for("acme.test").post("/", {}, format="json")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json() == {
        "status": HTTPStatus.METHOD_NOT_ALLOWED,
        "error": "Method Not Allowed",
        "message": "Method not allowed",
    }


# --- CI: a missing component fails, it does not skip ---------------------------------------
def test_a_missing_component_skips_unless_ci_requires_every_component(request, monkeypatch):
    request.node.add_marker(
        needs_component("frobnicator", available=False, install="apt-get install frob")
    )
    monkeypatch.delenv("TENANTKIT_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"frobnicator is not installed \(apt-get"):
        require_components(request.node)
    monkeypatch.setenv("TENANTKIT_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="frobnicator is not installed"):
        require_components(request.node)


def test_an_installed_component_neither_skips_nor_fails(request, monkeypatch):
    request.node.add_marker(needs_component("sh", available=True, install="-"))
    monkeypatch.setenv("TENANTKIT_REQUIRE_ALL", "1")
    require_components(request.node)


@pytest.mark.parametrize(
    ("module", "component"),
    [
        ("tests.test_log_viewer_browser", "chromium"),
        ("tests.test_resilience_redis", "redis-server"),
    ],
)
def test_tests_of_an_installed_program_declare_it_as_a_component(module, component):
    """So that CI's TENANTKIT_REQUIRE_ALL=1 turns their absence into a failure."""
    import importlib

    marks = importlib.import_module(module).pytestmark
    marks = marks if isinstance(marks, list) else [marks]
    assert {m.kwargs.get("name") for m in marks if m.name == "needs_component"} == {component}
    assert not [m for m in marks if m.name == "skipif"]


def test_ci_requires_every_component_and_installs_them():
    script = (BASE_DIR / ".ci" / "run").read_text()
    assert "export TENANTKIT_REQUIRE_ALL=1" in script
    for package in ("chromium", "chromium-driver", "redis-server"):
        assert f" {package}" in script


# --- the benchmark's hostile inputs -------------------------------------------------------
@pytest.fixture
def served_schema(acme) -> dict:
    return client_for("acme.test").get("/api/schema/?format=json").json()


def _writable_fields(spec: dict) -> set[tuple[str, str, str]]:
    from bench.hostile import BODY_METHODS, _fields

    found = set()
    for template, operations in spec["paths"].items():
        for method, op in operations.items():
            content = op.get("requestBody", {}).get("content", {})
            if method in BODY_METHODS and "application/json" in content:
                for keys, _field in _fields(content["application/json"]["schema"], spec):
                    found.add((method.upper(), template, "body:" + ".".join(keys)))
    return found


def test_hostile_probes_cover_every_writable_field_of_the_served_schema(served_schema):
    from bench.hostile import probes, resolve

    all_probes = list(probes(served_schema, lambda template, name: "1"))
    by_field: dict[tuple[str, str, str], set[str]] = {}
    for probe in all_probes:
        by_field.setdefault((probe.method, probe.template, probe.target), set()).add(probe.kind)
    fields = _writable_fields(served_schema)
    assert ("POST", "/api/address-book", "body:phone") in fields
    assert ("POST", "/api/platform/tenants", "body:admin.username") in fields
    for key in fields:
        kinds = by_field[key]
        assert {"pattern_32k", "body_limit", "lone_surrogate", "nul", "nested_50k"} <= kinds, key
    contact = resolve(served_schema["components"]["schemas"]["ContactRequest"], served_schema)
    assert contact["properties"]["name"]["maxLength"]
    assert "max_length+1" in by_field[("POST", "/api/address-book", "body:name")]


def test_hostile_body_limit_probes_straddle_the_request_size_limit(served_schema):
    from bench.hostile import MAX_BODY, probes

    assert settings.MAX_REQUEST_SIZE_BYTES == MAX_BODY
    sizes = {"body_limit": set(), "over_body_limit": set()}
    for probe in probes(served_schema, lambda template, name: "1"):
        if probe.kind in sizes:
            sizes[probe.kind].add(len(probe.body) > MAX_BODY)
    assert sizes == {"body_limit": {False}, "over_body_limit": {True}}


def test_no_hostile_input_gets_a_server_error(served_schema, acme, make_user, bearer, make_contact):
    """The benchmark's probes, through the test client: whatever each field's validators
    do, no answer is a 5xx (the benchmark measures how long they take)."""
    from accounts.tokens import issue_tokens
    from bench.hostile import probes

    admin = make_user(acme, "hostileadmin", role="admin")
    victim = make_user(acme, "victim")
    contact = make_contact(acme, name="Target")
    staff = create_staff("hostilestaff", email="hs@example.test")
    ids = {
        "/api/address-book/{id}": str(contact.pk),
        "/api/users/{id}": str(victim.pk),
        "/api/platform/tenants/{slug}": "acme",
    }
    client = client_for("acme.test")
    failures = []
    for probe in probes(served_schema, lambda template, name: ids.get(template, "1")):
        if probe.auth and probe.path.startswith("/api/platform/"):
            auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_tokens(staff, None)['access']}"}
        elif probe.auth:
            auth = bearer(admin, acme)
        else:
            auth = {}
        response = client.generic(
            probe.method, probe.path, probe.body or b"", "application/json", **auth
        )
        if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
            failures.append((probe.describe(), response.status_code))
    assert failures == []


@pytest.mark.parametrize("status", [413, 429, 431])
def test_daphnes_status_line_carries_the_standard_reason_phrase(status):
    from twisted.web import http

    import config.asgi  # noqa: F401 (sets the phrases daphne sends)
    from config.errors import reason_phrase

    assert http.RESPONSES[status].decode() == reason_phrase(status)
    assert http.RESPONSES[429] == b"Too Many Requests"
