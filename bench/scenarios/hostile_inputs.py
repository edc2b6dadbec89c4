"""Every writable field of every operation of the served schema, one pathological value at
a time (`bench/hostile.py`), on the shared HTTP server, with `/health` polled meanwhile:
the slowest answer, `/health`'s worst latency, and the 5xx answers (there should be none).

Probes run against a tenant of their own (`hostile`: a value the server wrongly accepts
changes only it), with a token issued per probe (a probe that logs out or changes a
password cannot disarm the next one)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.context import ADMIN_PASSWORD, HTTP_PORT, Context, raw
from bench.report import Target, percentile
from bench.scenarios import Metric, Need

HOSTILE_SLUG = "hostile"

KEY = "hostile_inputs"
TITLE = (
    "hostile inputs: every writable field (served OpenAPI schema), max length + 1 "
    "and pathological values"
)
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.DJANGO}
METRICS = (
    Metric("slowest_ms", "slowest request", "ms", Target("<=", 50, "ms")),
    Metric("health_max_ms", "/health meanwhile (max)", "ms", Target("<=", 50, "ms")),
    Metric("server_errors", "answers 5xx or none", "", Target("<=", 0)),
)


@dataclass
class HostileTargets:
    """What the probes run against: the served schema, token issuers, path ids."""

    spec: dict
    tenant_token: Callable[[], str]
    platform_token: Callable[[], str]
    path_ids: dict[str, str]


def hostile_targets() -> HostileTargets:
    """The `hostile` tenant, its admin, a second user and a contact, and a platform staff
    user, made by the product's services (once; later runs find them)."""
    from accounts.models import User
    from accounts.services import user_create
    from accounts.tokens import issue_tokens
    from addressbook.models import Contact
    from addressbook.services import contact_create
    from tenants.context import use_tenant
    from tenants.services import AdminSpec, provision_tenant

    tenant = provision_tenant(
        slug=HOSTILE_SLUG,
        name="Hostile inputs",
        admin=AdminSpec("hostileadmin", "hostile@example.com", ADMIN_PASSWORD),
    )
    with use_tenant(tenant):
        admin = User.objects.get(username="hostileadmin")
        victim = User.objects.filter(username="victim").first() or user_create(
            username="victim", email="victim@example.com", password=ADMIN_PASSWORD
        )
        contact = Contact.objects.first() or contact_create(data={"name": "Target"})
    staff = User.objects.filter(username="hostilestaff").first() or user_create(
        username="hostilestaff",
        email="hostilestaff@example.com",
        password=ADMIN_PASSWORD,
        is_staff=True,
    )

    def tenant_token() -> str:
        with use_tenant(tenant):
            return issue_tokens(admin, tenant)["access"]

    status, body = http_exchange(HTTP_PORT, "GET", "/api/schema/?format=json", None, "")
    if status != 200:
        raise RuntimeError(f"/api/schema/?format=json answered {status}")
    return HostileTargets(
        spec=json.loads(body),
        tenant_token=tenant_token,
        platform_token=lambda: issue_tokens(staff, None)["access"],
        path_ids={
            "/api/address-book/{id}": str(contact.pk),
            "/api/users/{id}": str(victim.pk),
            "/api/platform/tenants/{slug}": HOSTILE_SLUG,
        },
    )


def http_exchange(
    port: int, method: str, path: str, body: bytes | None, token: str, timeout: float = 120
) -> tuple[int, bytes]:
    """One request on a connection of its own, read to the end: (status, body). A server
    that answers before reading the whole body (413) and closes is not an error here;
    status 0 means no status line came back."""
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOSTILE_SLUG}.localhost", "Connection: close"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    response = b"".join(chunks)
    status_line, _, rest = response.partition(b"\r\n")
    parts = status_line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, rest.partition(b"\r\n\r\n")[2]


def run(ctx: Context, run: int) -> dict:
    from bench.hostile import probes

    targets = hostile_targets()
    health: list[float] = []
    stop = threading.Event()

    def watch_health() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            status, _ = http_exchange(HTTP_PORT, "GET", "/health", None, "", timeout=30)
            health.append((time.perf_counter() - t0) * 1000 if status == 200 else float("inf"))
            stop.wait(0.02)

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()
    latencies: list[tuple[float, str, int]] = []
    statuses: dict[str, int] = {}
    try:
        for probe in probes(targets.spec, lambda t, name: targets.path_ids.get(t, "1")):
            token = ""
            if probe.auth:
                platform = probe.path.startswith("/api/platform/")
                token = targets.platform_token() if platform else targets.tenant_token()
            t0 = time.perf_counter()
            status, _ = http_exchange(HTTP_PORT, probe.method, probe.path, probe.body, token)
            latencies.append(((time.perf_counter() - t0) * 1000, probe.describe(), status))
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    finally:
        stop.set()
        watcher.join(timeout=60)
    slowest = max(latencies)
    failures = sorted({d for _, d, s in latencies if s >= 500 or s == 0})
    raw(f"hostile-{run}.json").write_text(
        json.dumps(
            {"probes": [{"ms": ms, "probe": d, "status": s} for ms, d, s in latencies]},
            indent=0,
        )
    )
    return {
        "requests": len(latencies),
        "slowest_ms": slowest[0],
        "slowest": f"{slowest[1]} -> {slowest[2]}",
        "p99_ms": percentile(sorted(ms for ms, _, _ in latencies), 99),
        "server_errors": len([s for _, _, s in latencies if s >= 500 or s == 0]),
        "server_error_probes": failures[:20],
        "statuses": statuses,
        "health_max_ms": max(health, default=0.0),
        "health_p99_ms": percentile(sorted(health), 99) if health else 0.0,
        "health_samples": len(health),
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    failing = sorted({p for r in runs for p in r["server_error_probes"]})
    return {
        "slowest_ms": f"requests per run {[r['requests'] for r in runs]}; slowest: "
        f"{'; '.join(sorted({r['slowest'] for r in runs}))}.",
        "health_max_ms": f"p99 {[round(r['health_p99_ms'], 1) for r in runs]} ms over "
        f"{[r['health_samples'] for r in runs]} samples.",
        "server_errors": f"statuses {runs[0]['statuses']}"
        + (f"; 5xx: {'; '.join(failing[:8])}" if failing else "")
        + ".",
    }
