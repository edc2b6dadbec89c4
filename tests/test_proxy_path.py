"""The whole path behind the reverse proxy: Debian's nginx, with the configuration rendered
from config/nginx/tenantkit.conf.template as docker-compose.yml's nginx renders it, in
front of gunicorn (the API) and daphne (the log stream), all on loopback ports.

The processes share a SQLite main database in a temporary file (and Redis when REDIS_URL
is set, which carries log records from gunicorn to daphne). nginx's peer, 127.0.0.1, is
the one trusted proxy; a client connecting from 127.0.0.2 is told apart from one
connecting from 127.0.0.1 by `ADMIN_ALLOWED_IPS`, which admits 127.0.0.2 only.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from http import HTTPStatus
from pathlib import Path

import pytest
import websocket

from bench.servers import VENV_BIN, Server, daphne_argv, gunicorn_argv, manage, wait_for_http
from tests.helpers import BASE_DIR, free_port, marker, needs_component

TEMPLATE = BASE_DIR / "config" / "nginx" / "tenantkit.conf.template"
TEMPLATE_VARIABLES = (
    "NGINX_PORT", "API_UPSTREAM", "LOGSTREAM_UPSTREAM", "NGINX_RESOLVER",
    "MAX_REQUEST_SIZE_BYTES",
)  # fmt: skip
# Debian installs nginx in /usr/sbin, which a non-root user's PATH may lack.
NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
ENVSUBST = shutil.which("envsubst")
REDIS_URL = os.environ.get("REDIS_URL", "")
MAX_BODY = 4096
PASSWORD = "Sup3r-Secret-pw"
CLIENT = "127.0.0.2"  # a client address that is not the trusted proxy's

pytestmark = needs_component(
    "nginx",
    available=bool(NGINX and ENVSUBST),
    install="apt-get install nginx gettext-base",
)

# nginx runs in the foreground with every path it writes under its prefix (-p).
MAIN_CONFIG = """\
daemon off;
{user}
worker_processes 1;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log logs/access.log;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include tenantkit.conf;
}}
"""


def render_template(prefix: Path, values: dict[str, str]) -> None:
    """The template rendered with `envsubst` as the official image does it: only its own
    variables are replaced, nginx's `$variables` stay."""
    rendered = subprocess.run(
        [ENVSUBST, " ".join(f"${{{name}}}" for name in TEMPLATE_VARIABLES)],
        input=TEMPLATE.read_text(),
        env={**os.environ, **values},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (prefix / "tenantkit.conf").write_text(rendered)
    # As root, nginx's workers would run as nobody, who cannot enter pytest's temporary
    # directory to write request bodies there.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONFIG.format(user=user))
    for name in ("logs", "temp"):
        (prefix / name).mkdir()


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """nginx on one port in front of one gunicorn worker (a second request gets through only
    if nothing holds the first) and daphne, on a tenant `<slug>.test` with an admin."""
    tmp = tmp_path_factory.mktemp("proxy-path")
    tag = f"proxy{uuid.uuid4().hex[:8]}"
    slug = f"px{uuid.uuid4().hex[:6]}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("TENANT_DEFAULT", "REDIS_URL")},
        "TESTING": "1",  # isolates the channel layer prefix and tenant files by the tag
        "TEST_RUN_TAG": tag,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "TENANT_DATABASE_URL": "",
        "TRUSTED_PROXY_IPS": "127.0.0.1/32",
        "ADMIN_ALLOWED_IPS": f"{CLIENT}/32",
        "MAX_REQUEST_SIZE_BYTES": str(MAX_BODY),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    if REDIS_URL:
        env["REDIS_URL"] = REDIS_URL
    check(manage(env, "migrate", "--noinput", "--verbosity", "0", timeout=300))
    check(
        manage(
            env, "create_tenant", slug, "--name", "Proxied", "--domain", f"{slug}.test",
            "--admin-username", "boss", "--admin-email", f"boss@{slug}.test",
            "--admin-password", PASSWORD, timeout=300,
        )
    )  # fmt: skip
    api_port, stream_port, nginx_port = free_port(), free_port(), free_port()
    prefix = tmp / "nginx"
    prefix.mkdir()
    render_template(
        prefix,
        {
            "NGINX_PORT": f"127.0.0.1:{nginx_port}",
            "API_UPSTREAM": f"127.0.0.1:{api_port}",
            "LOGSTREAM_UPSTREAM": f"127.0.0.1:{stream_port}",
            "NGINX_RESOLVER": "127.0.0.1",
            "MAX_REQUEST_SIZE_BYTES": str(MAX_BODY),
        },
    )
    servers = [
        Server("gunicorn", gunicorn_argv(str(VENV_BIN / "gunicorn"), api_port, 1), env,
               api_port, tmp / "gunicorn.log"),
        Server("daphne", daphne_argv(stream_port), env, stream_port, tmp / "daphne.log"),
    ]  # fmt: skip
    nginx_log = (tmp / "nginx.out").open("wb")
    nginx = None
    try:
        for server in servers:
            try:
                server.__enter__()
            except RuntimeError as error:
                pytest.fail(f"{server.name}: {error}\n{server.log.read_text()}")
        nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", "nginx.conf", "-e", "logs/error.log"],
            stdout=nginx_log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(nginx_port, nginx, timeout=30)
        except RuntimeError as error:
            pytest.fail(f"nginx: {error}\n{(prefix / 'logs' / 'error.log').read_text()}")
        yield {
            "port": nginx_port, "api": api_port, "stream": stream_port, "slug": slug,
            "host": f"{slug}.test", "logs": tmp,
        }  # fmt: skip
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        nginx_log.close()
        for server in servers:
            server.stop()
        shutil.rmtree(BASE_DIR / "var" / "test-tenants" / tag, ignore_errors=True)


def call(
    port: int, method: str, path: str, *, host: str, headers=None, body=None, source=None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to a loopback port from `source` (an address of the 127/8 block);
    its status, headers and body."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0) if source else None
    )
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def access(stack) -> str:
    """An access token of the tenant's admin, from a login through nginx."""
    status, _, body = call(
        stack["port"], "POST", "/api/auth/login", host=stack["host"],
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username_or_email": "boss", "password": PASSWORD}),
    )  # fmt: skip
    assert status == HTTPStatus.OK, body
    return json.loads(body)["access"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_tenant_is_resolved_from_the_host_nginx_passes_on(stack, access):
    status, headers, body = call(
        stack["port"], "GET", "/api/auth/me", host=stack["host"], headers=bearer(access)
    )
    assert status == HTTPStatus.OK
    assert json.loads(body)["username"] == "boss"
    assert headers["X-Request-Id"]
    assert headers["Server"] == "nginx"  # no version: server_tokens off


def test_an_unknown_host_is_the_products_404_envelope(stack):
    status, _, body = call(stack["port"], "GET", "/api/auth/me", host="nobody.test")
    assert status == HTTPStatus.NOT_FOUND
    assert json.loads(body) == {"status": 404, "error": "Not Found", "message": "Unknown tenant"}


def test_a_clients_tenant_header_does_not_pass_for_the_proxys(stack, access):
    """The product honours X-Tenant from a trusted proxy (as gunicorn shows, asked directly
    from 127.0.0.1); nginx drops the one a client sends."""
    headers = {**bearer(access), "X-Tenant": stack["slug"]}
    direct, _, _ = call(stack["api"], "GET", "/api/auth/me", host="nobody.test", headers=headers)
    assert direct == HTTPStatus.OK
    status, _, body = call(
        stack["port"], "GET", "/api/auth/me", host="nobody.test", headers=headers
    )
    assert status == HTTPStatus.NOT_FOUND
    assert json.loads(body)["message"] == "Unknown tenant"


def test_the_client_address_is_the_one_nginx_saw_whatever_the_client_forwards(stack):
    """`ADMIN_ALLOWED_IPS` admits 127.0.0.2 only. Through nginx, a client on 127.0.0.2 is
    admitted even when it claims another address, and a client on 127.0.0.1 claiming to be
    127.0.0.2 is refused; gunicorn asked directly believes that claim (its peer is a
    trusted proxy), so it is nginx that replaces the header, not appends to it."""
    path = "/api/platform/tenants"
    port, host = stack["port"], stack["host"]
    refused = {
        "status": 403,
        "error": "Forbidden",
        "message": "Access from this network is not allowed",
    }

    for spoofed in ("6.6.6.6", "127.0.0.1", f"6.6.6.6, {CLIENT}"):
        status, _, body = call(
            port, "GET", path, host=host, headers={"X-Forwarded-For": spoofed}, source=CLIENT
        )
        assert status == HTTPStatus.UNAUTHORIZED, (spoofed, body)

    status, _, body = call(port, "GET", path, host=host, headers={"X-Forwarded-For": CLIENT})
    assert status == HTTPStatus.FORBIDDEN
    assert json.loads(body) == refused
    direct, _, _ = call(stack["api"], "GET", path, host=host, headers={"X-Forwarded-For": CLIENT})
    assert direct == HTTPStatus.UNAUTHORIZED


def test_a_log_stream_upgrade_through_nginx_receives_log_lines(stack, access):
    """Without Redis, records reach only a socket of the process that logged them: the probe
    request then goes to daphne itself; with Redis it goes through nginx to gunicorn."""
    socket_ = websocket.create_connection(
        f"ws://127.0.0.1:{stack['port']}/logs?format=json",
        host=stack["host"],
        header=[f"Authorization: Bearer {access}", "X-Forwarded-For: 6.6.6.6"],
        timeout=10,
    )
    try:
        time.sleep(0.5)  # let the consumer join its group
        probe = marker()
        probe_port = stack["port"] if REDIS_URL else stack["stream"]
        status, _, _ = call(
            probe_port, "GET", f"/api/auth/me?probe={probe}", host=stack["host"],
            headers=bearer(access),
        )  # fmt: skip
        assert status == HTTPStatus.OK
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            event = json.loads(socket_.recv())
            if probe in event["message"]:
                break
        else:
            pytest.fail(f"{probe} never arrived")
        assert event["tenant"] == stack["slug"]
        assert f"/api/auth/me?probe={probe} 200" in event["message"]
    finally:
        socket_.close()

    for path in ("/logs", "/api/ws/logs"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(
                f"ws://127.0.0.1:{stack['port']}{path}", host=stack["host"], timeout=10
            )
        assert refused.value.status_code == HTTPStatus.FORBIDDEN


def test_a_body_over_the_limit_is_refused_by_nginx_with_the_products_413(stack, access):
    """nginx's limit is MAX_REQUEST_SIZE_BYTES: a body of that size reaches the product, one
    byte more is refused before gunicorn sees it, with the very body the product answers."""
    headers = {**bearer(access), "Content-Type": "application/json"}
    at_limit = json.dumps({"name": "Al", "notes": "x"}).encode().ljust(MAX_BODY)
    over = at_limit + b" "
    port, host = stack["port"], stack["host"]

    status, _, _ = call(
        port, "POST", "/api/address-book", host=host, headers=headers, body=at_limit
    )
    assert status == HTTPStatus.CREATED

    status, response_headers, body = call(
        port, "POST", "/api/address-book", host=host, headers=headers, body=over
    )
    assert "POST /api/address-book 413" not in (stack["logs"] / "gunicorn.log").read_text()
    product = call(stack["api"], "POST", "/api/address-book", host=host, headers=headers, body=over)
    assert product[0] == status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert body == product[2]
    assert json.loads(body) == {
        "status": 413,
        "error": "Content Too Large",
        "message": f"Request body too large (limit {MAX_BODY} bytes)",
    }
    assert response_headers["Content-Type"] == "application/json"
    assert response_headers["X-Request-Id"]


def test_a_slow_clients_body_holds_no_gunicorn_worker(stack, access):
    """gunicorn runs one sync worker here: while a client trickles a body to nginx, another
    request is still served, because nginx passes a request on only once its body is in."""
    slow = socket.create_connection(("127.0.0.1", stack["port"]), timeout=10)
    try:
        slow.sendall(
            b"POST /api/address-book HTTP/1.1\r\n"
            + f"Host: {stack['host']}\r\nAuthorization: Bearer {access}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        time.sleep(0.5)
        started = time.monotonic()
        status, _, _ = call(
            stack["port"], "GET", "/api/auth/me", host=stack["host"], headers=bearer(access)
        )
        assert status == HTTPStatus.OK
        assert time.monotonic() - started < 5
    finally:
        slow.close()


def test_a_streamed_export_comes_through(stack, access):
    status, headers, body = call(
        stack["port"], "GET", "/api/address-book/export?format=csv", host=stack["host"],
        headers=bearer(access),
    )  # fmt: skip
    assert status == HTTPStatus.OK
    assert headers["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0].startswith(b"id,name,email")
