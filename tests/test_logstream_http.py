"""The HTTP side of logging: request ids, the access log, the 410 for the old SSE endpoint,
and the staff log viewer page."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

import pytest
from django.test import Client

from logstream.handlers import to_event
from tests.helpers import client_for

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def access_lines():
    """Every line the access logger writes during the test, as formatted messages."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("logstream.access")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


# --- /api/logs ----------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["acme.test", "unknown.example"])
def test_old_sse_endpoint_is_gone(acme, host):
    response = Client(HTTP_HOST=host).get("/api/logs")
    assert response.status_code == HTTPStatus.GONE
    body = response.json()
    assert body["status"] == HTTPStatus.GONE
    assert body["error"] == "Gone"
    assert "/api/ws/logs" in body["message"]


def test_old_sse_endpoint_is_gone_with_credentials(acme, make_user, bearer):
    user = make_user(acme, "alice")
    response = client_for("acme.test").get("/api/logs", **bearer(user, acme))
    assert response.status_code == HTTPStatus.GONE
    assert response.json()["error"] == "Gone"


# --- request id ---------------------------------------------------------------------------
def test_well_formed_request_id_is_echoed(acme):
    response = Client().get("/health", HTTP_X_REQUEST_ID="edge-01.abc_DEF")
    assert response["X-Request-Id"] == "edge-01.abc_DEF"


@pytest.mark.parametrize("inbound", ["", "has space", "a" * 129, "semi;colon", "<script>"])
def test_malformed_request_id_is_replaced(acme, inbound):
    response = Client().get("/health", HTTP_X_REQUEST_ID=inbound)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-Id"])


def test_every_response_has_a_request_id_even_errors(acme):
    assert Client(HTTP_HOST="nowhere.example").get("/api/auth/me")["X-Request-Id"]
    assert client_for("acme.test").get("/api/auth/me")["X-Request-Id"]


# --- access log ---------------------------------------------------------------------------
def test_access_log_line_has_the_literal_path_with_secrets_redacted(acme, access_lines):
    Client().get("/health?b=2&token=s3cr3t&a=1&password=hunter2", HTTP_X_REQUEST_ID="rid-1")
    assert len(access_lines) == 1
    line = access_lines[0]
    assert line.startswith("GET /health?b=2&token=[REDACTED]&a=1&password=[REDACTED] 200 ")
    assert re.search(r" \d+\.\dms ", line)
    assert "tenant=- " in line
    assert line.endswith("request_id=rid-1")
    assert "s3cr3t" not in line
    assert "hunter2" not in line


def test_access_log_names_tenant_and_user(acme, make_user, bearer, access_lines):
    user = make_user(acme, "alice")
    headers = bearer(user, acme)
    response = client_for("acme.test").get("/api/auth/me?access_token=zzz", **headers)
    assert response.status_code == HTTPStatus.OK
    (line,) = access_lines
    assert line.startswith("GET /api/auth/me?access_token=[REDACTED] 200 ")
    assert f"tenant=acme user={user.pk} " in line
    assert headers["HTTP_AUTHORIZATION"].split()[1] not in line


def test_access_log_record_carries_tenant_and_request_id(acme, monkeypatch):
    queued = []
    monkeypatch.setattr("logstream.handlers.publisher.submit", queued.append)
    client_for("acme.test").get("/api/auth/me", HTTP_X_REQUEST_ID="trace-42")
    events = [to_event(item) for item in queued]
    (event,) = [e for e in events if e["target"] == "logstream.access"]
    assert event["tenant"] == "acme"
    assert event["request_id"] == "trace-42"
    assert event["level"] == "INFO"


# --- log viewer page ----------------------------------------------------------------------
@pytest.fixture
def staff_client(staff, acme):
    client = Client()
    client.force_login(staff)
    return client


def test_log_viewer_is_for_staff_only(acme, make_user):
    anonymous = Client().get("/admin/logs/")
    assert anonymous.status_code == HTTPStatus.FOUND
    assert "/admin/login/" in anonymous["Location"]
    member = Client()
    member.force_login(make_user(None, "clerk"))
    assert member.get("/admin/logs/").status_code == HTTPStatus.FOUND


def test_log_viewer_streams_from_the_websocket_endpoint_in_the_admin_look(staff_client):
    response = staff_client.get("/admin/logs/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "/api/ws/logs" in html
    assert 'id="log-level"' in html
    assert 'id="log-filter"' in html
    assert 'id="log-pause"' in html
    assert "Tenant" in html
    assert 'id="site-name"' in html  # admin/base_site.html's header
    assert not re.search(r"""(src|href)=["']https?://""", html), "no asset from the internet"


def test_admin_index_links_to_the_log_viewer(staff_client):
    response = staff_client.get("/admin/")
    assert response.status_code == HTTPStatus.OK
    assert 'href="/admin/logs/"' in response.content.decode()


def test_log_format_json_writes_one_json_object_per_line(acme, make_user, bearer):
    import io
    import json
    import logging

    from logstream.formatters import JsonLinesFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    access = logging.getLogger("logstream.access")
    access.addHandler(handler)
    try:
        user = make_user(acme, "ann")
        client_for("acme.test").get(
            "/api/auth/me", HTTP_X_REQUEST_ID="req-json-1", **bearer(user, acme)
        )
    finally:
        access.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert set(event) == {"timestamp", "level", "target", "message", "tenant", "request_id"}
    assert event["tenant"] == "acme"
    assert event["request_id"] == "req-json-1"
    assert event["target"] == "logstream.access"
    assert event["message"].startswith("GET /api/auth/me 200")
