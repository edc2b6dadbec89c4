"""Security headers, CORS, size and rate limits, allow-lists, /ready, /metrics and the
deployment checks."""

import os
import subprocess
import sys
from http import HTTPStatus
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client

from tests.helpers import BASE_DIR, client_for

pytestmark = pytest.mark.django_db(databases="__all__")


def test_security_headers_on_an_api_response(acme):
    response = client_for("acme.test").get("/api/address-book")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert response["Content-Security-Policy"].startswith("default-src 'none'")


def test_security_headers_on_an_admin_page_allow_its_own_scripts(acme):
    response = Client().get("/admin/login/")
    assert response.status_code == HTTPStatus.OK
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


def test_security_headers_on_early_answers(acme):
    response = client_for("nobody.example").get("/api/address-book")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_cors_preflight_allowed_for_a_listed_origin(acme, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client_for("acme.test").options(
        "/api/address-book",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_cors_preflight_refused_for_another_origin(acme, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = client_for("acme.test").options(
        "/api/address-book",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert "Access-Control-Allow-Origin" not in response


def test_oversized_body_is_413_in_the_envelope(acme, settings):
    settings.MAX_REQUEST_SIZE_BYTES = 100
    response = client_for("acme.test").post(
        "/api/auth/signup", data="x" * 101, content_type="application/json"
    )
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    body = response.json()
    assert body["status"] == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert body["error"] == "Content Too Large"


def test_rate_limit_is_429_with_retry_after(acme, settings):
    settings.RATE_LIMIT_PER_MINUTE = 3
    client = client_for("acme.test")
    client.defaults["REMOTE_ADDR"] = "203.0.113.77"
    statuses = [client.get("/api/address-book").status_code for _ in range(4)]
    assert statuses[:3] == [HTTPStatus.UNAUTHORIZED] * 3
    assert statuses[3] == HTTPStatus.TOO_MANY_REQUESTS
    response = client.get("/api/address-book")
    assert response.json()["error"] == "Too Many Requests"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Health checks are never throttled.
    assert client.get("/health").status_code == HTTPStatus.OK


def test_admin_allow_list_blocks_other_networks(acme, settings):
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8", "2001:db8::/32"]
    outside = Client(REMOTE_ADDR="198.51.100.9")
    response = outside.get("/admin/login/")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Access from this network is not allowed"
    assert outside.post("/api/platform/auth/login", {}).status_code == HTTPStatus.FORBIDDEN
    assert Client(REMOTE_ADDR="10.1.2.3").get("/admin/login/").status_code == HTTPStatus.OK
    assert Client(REMOTE_ADDR="2001:db8::5").get("/admin/login/").status_code == HTTPStatus.OK


def test_admin_allow_list_uses_forwarded_address_only_from_trusted_proxy(acme, settings):
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8"]
    spoofed = Client(REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert spoofed.get("/admin/login/").status_code == HTTPStatus.FORBIDDEN
    settings.TRUSTED_PROXY_IPS = ["198.51.100.0/24"]
    assert spoofed.get("/admin/login/").status_code == HTTPStatus.OK


def test_ready_reports_each_dependency():
    response = Client().get("/ready")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "channel_layer": "ok"},
        "tenants": {"unavailable": 0},
    }


def test_ready_is_503_naming_the_database_when_it_is_unreachable():
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("down")):
        response = Client().get("/ready")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unavailable"
    assert body["checks"]["cache"] == "ok"


def _metric(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    assert wanted is not None
    return 0.0


def test_metrics_counters_move_after_requests(acme):
    client = Client()
    before = _metric(
        client.get("/metrics").content.decode(),
        "http_requests_total",
        route="/health",
        status="200",
    )
    client.get("/health")
    client.get("/health")
    text = client.get("/metrics").content.decode()
    assert _metric(text, "http_requests_total", route="/health", status="200") == before + 2
    assert "http_request_duration_seconds_bucket" in text
    assert _metric(text, "tenants", status="active") >= 1
    assert "log_lines_published" in text
    assert "log_lines_dropped" in text
    assert "websocket_log_clients" in text


def test_metrics_allow_list(acme, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="198.51.100.9").get("/metrics").status_code == HTTPStatus.FORBIDDEN
    assert Client(REMOTE_ADDR="10.9.9.9").get("/metrics").status_code == HTTPStatus.OK


def _check_deploy(env: dict) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APP_", "SECRET", "JWT", "ALLOWED", "DEBUG", "PYTEST"))
    }
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    base["TESTING"] = "0"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=BASE_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_fails_on_development_defaults():
    result = _check_deploy({"DATABASE_URL": "sqlite:////tmp/tk-check-dev.sqlite3"})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config.E001" in output
    assert "config.E002" in output
    assert "config.E004" in output


def test_check_deploy_is_clean_of_django_warnings_under_production_settings():
    result = _check_deploy(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "k8Q2x7Pz1Lm4Vb9Nc3Rt6Yw0Hs5Jd2Fg8Ua1Ee4Io7Ky3Mq6Np0Lr5Ts8Uv1Wx4",
            "JWT_SECRET": "Zr5Tq8Wn2Ym6Xp1Lk9Vj3Hb7Gd4Fs0Ac2Qe5Ru8TiBv3Cx6Dz9Ea2Fb5Gc8Hd1",
            "ALLOWED_HOSTS": "api.example.com",
            "DATABASE_URL": "sqlite:////tmp/tk-check-prod.sqlite3",
            "TENANT_BASE_DOMAIN": "example.com",
            "METRICS_ALLOWED_IPS": "10.0.0.0/8",
            "WS_LOGS_ADMIN_USER": "ops@example.com",
        }
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "security.W" not in output
    assert "config.E" not in output
    assert "config.W001" in output  # REDIS_URL unset
    assert "config.W003" in output  # SQLite
