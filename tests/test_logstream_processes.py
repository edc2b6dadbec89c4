"""Scale-out over real sockets: two daphne processes sharing Redis. A record logged while
one process serves an HTTP request reaches a WebSocket client of the other."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import uuid
from http import HTTPStatus
from pathlib import Path

import pytest

from tests.helpers import BASE_DIR, free_port

REDIS_URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(
    not REDIS_URL,
    reason="REDIS_URL is not set: cross-process delivery needs the Redis channel layer",
)

MINT_TOKENS = """
from accounts.models import User
from accounts.tokens import issue_tokens
from tenants.context import use_tenant
from tenants.models import Tenant
import json
tenant = Tenant.objects.get(slug="xproc")
staff = User.objects.create_user("ops", "ops@platform.test", "Sup3r-Secret-pw", is_staff=True)
with use_tenant(tenant):
    boss = User.objects.get(username="boss")
    tenant_token = issue_tokens(boss, tenant)["access"]
platform_token = issue_tokens(staff, None)["access"]
print(json.dumps({"tenant": tenant_token, "platform": platform_token}))
"""


def manage(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for_health(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"daphne exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"daphne on port {port} did not become healthy:\n{log.read_text()}")


class RawWebSocket:
    """The least a WebSocket client needs (RFC 6455): handshake, read text frames."""

    def __init__(self, port: int, path: str, headers: dict[str, str]):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            response += chunk
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive_text(self) -> str:
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if opcode == 1:
                return payload.decode()
            if opcode == 8:
                raise ConnectionError("closed by server")

    def frames_until(self, needle: str, timeout: float = 15) -> list[str]:
        frames, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                frames.append(self.receive_text())
            except TimeoutError:
                break
            if needle in frames[-1]:
                return frames
        pytest.fail(f"{needle!r} never arrived; got {frames!r}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    """Two daphne processes on one temporary SQLite main database and one Redis."""
    tmp = tmp_path_factory.mktemp("logstream-processes")
    tag = f"logsxp{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TESTING": "1",  # isolates the channel layer prefix and tenant files by the tag
        "TEST_RUN_TAG": tag,
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "TENANT_DATABASE_URL": "",
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TENANT_DEFAULT", None)
    tenant_dir = BASE_DIR / "var" / "test-tenants" / tag
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(
        env, "create_tenant", "xproc", "--name", "Xp", "--domain", "xproc.test",
        "--admin-username", "boss", "--admin-email", "boss@xproc.test",
        "--admin-password", "Sup3r-Secret-pw",
    )  # fmt: skip
    tokens = json.loads(manage(env, "shell", "-c", MINT_TOKENS).strip().splitlines()[-1])
    daphne = BASE_DIR / ".venv" / "bin" / "daphne"
    servers = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp / f"daphne-{name}.log"
            process = subprocess.Popen(
                [str(daphne), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                cwd=BASE_DIR,
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            servers.append((port, process))
            wait_for_health(port, process, log)
        yield {"a": servers[0][0], "b": servers[1][0], "logs": tmp, **tokens}
    finally:
        for _port, process in servers:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tenant_dir, ignore_errors=True)


def http_get(port: int, path: str, *, host: str, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        headers={"Host": host, "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status


def test_record_logged_in_one_process_reaches_a_client_of_the_other(two_servers):
    tenant_client = RawWebSocket(
        two_servers["b"],
        "/logs?format=json",
        {"Host": "xproc.test", "Authorization": f"Bearer {two_servers['tenant']}"},
    )
    staff_client = RawWebSocket(
        two_servers["b"], f"/api/ws/logs?token={two_servers['platform']}", {"Host": "localhost"}
    )
    assert tenant_client.status == HTTPStatus.SWITCHING_PROTOCOLS
    assert staff_client.status == HTTPStatus.SWITCHING_PROTOCOLS
    time.sleep(0.5)  # let both join their groups on Redis
    probe = f"probe-{uuid.uuid4().hex}"
    status = http_get(
        two_servers["a"],
        f"/api/auth/me?probe={probe}",
        host="xproc.test",
        token=two_servers["tenant"],
    )
    assert status == HTTPStatus.OK

    event = json.loads(tenant_client.frames_until(probe)[-1])
    assert event["target"] in ("logstream.access", "config.access")
    assert event["tenant"] == "xproc"
    assert f"/api/auth/me?probe={probe} 200" in event["message"]
    line = staff_client.frames_until(probe)[-1]
    assert "] INFO [logstream.access] GET /api/auth/me?probe=" in line
    assert two_servers["tenant"] not in line
    tenant_client.close()
    staff_client.close()


def test_no_token_reaches_the_servers_output(two_servers):
    token = two_servers["tenant"]
    http_get(two_servers["a"], f"/health?token={token}", host="xproc.test", token=token)
    RawWebSocket(two_servers["a"], f"/logs?token={token}", {"Host": "xproc.test"}).close()
    time.sleep(0.5)
    output = "".join(log.read_text() for log in two_servers["logs"].glob("daphne-*.log"))
    assert "GET /health?token=[REDACTED]" in output
    assert token not in output
    assert two_servers["platform"] not in output


def test_handshake_without_credentials_is_refused_with_http_403(two_servers):
    client = RawWebSocket(two_servers["b"], "/api/ws/logs", {"Host": "xproc.test"})
    assert client.status == HTTPStatus.FORBIDDEN
    client.close()
