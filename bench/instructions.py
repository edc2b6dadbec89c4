"""Instructions a list request costs the server process, counted by callgrind.

Throughput on this 2-core machine drifts by up to 1.8x within a day, so two versions of
the product compared by req/s need many alternated runs; callgrind counts instructions,
which are the same for the same code and inputs whatever else the machine is doing. This
runs `GET /api/address-book` (50 contacts of 200, the benchmark's list request, production
settings, PostgreSQL and Redis) in-process through Django's WSGI handler, round-robin over
`--tenants` tenants, under `valgrind --tool=callgrind` twice (with `--requests` A and B
requests after a warm-up that touches every tenant), and reports (I(B) - I(A)) / (B - A):
the instructions of one request, start-up excluded. The HTTP server's own work (gunicorn's
parsing and writing) is not in it, and is the same for any version of the product.

    python -m bench.instructions seed --tenants 100
    python -m bench.instructions measure --tenants 1
    python -m bench.instructions measure --tenants 50 --cap 64
    python -m bench.instructions measure --tree /path/to/other/checkout   # another version
    python -m bench.instructions measure --tenants 100 --pooled  # tenants through PgBouncer

`seed` makes the databases with the product's own services (`provision_tenant`,
`issue_tokens`); `measure --tree` runs another checkout's code against them (its schema must
match). `--pooled` starts Debian's pgbouncer in front of the server with the shipped limits
(bench.servers.Pooler) and sends the tenants' queries through it, as the compose file does
(TENANT_DATABASE_URL the pooler, TENANT_DATABASE_ADMIN_URL the server): a tenant switch then
costs a pooler connect, SCRAM authentication included.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
MAIN_DB = "tk_instructions"
PREFIX = "tk_instructions_"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
TOKENS = ROOT / "var" / "bench-instructions-tokens.txt"
CONTACTS = 200
POOLER_ENV = "BENCH_INSTRUCTIONS_POOLER_URL"  # set by `measure --pooled` for `serve`


def environment(cap: int) -> dict[str, str]:
    """Production settings, as the benchmark's servers run (bench/servers.py)."""
    strong = "Zq8#vT2$mP9@wL4!nR6^bX1&cY7*dF3(gH5)jK0_"
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 10 + strong * 2,
        "JWT_SECRET": "j" * 10 + strong * 2,
        "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DEBUG": "false",
        "DATABASE_URL": f"{PG}/{MAIN_DB}",
        "TENANT_DB_PREFIX": PREFIX,
        "CONN_MAX_AGE": "60",
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_PER_MINUTE": "0",
        "ACCESS_TOKEN_TTL": "86400",
        "TENANT_MAX_OPEN_CONNECTIONS": str(cap),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def _setup_django(tree: Path, cap: int) -> None:
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    for key in ("TENANT_DEFAULT", "TENANT_DATABASE_URL", "TEST_RUN_TAG", "TESTING"):
        os.environ.pop(key, None)
    os.environ.update(environment(cap))
    if os.environ.get(POOLER_ENV):
        os.environ["TENANT_DATABASE_URL"] = os.environ[POOLER_ENV]
        os.environ["TENANT_DATABASE_ADMIN_URL"] = PG
    import django

    django.setup()


def seed(tenants: int) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{MAIN_DB}%"]
        ).fetchall()
        for (name,) in names:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{MAIN_DB}"')
    _setup_django(ROOT, cap=32)
    from django.core.management import call_command
    from django.db import connections

    from accounts.models import User
    from accounts.tokens import issue_tokens
    from addressbook.models import Contact
    from tenants.context import use_tenant
    from tenants.services import AdminSpec, provision_tenant

    call_command("migrate", verbosity=0)
    admin = AdminSpec("benchadmin", "bench@example.com", "Bench-S3cure-pass")
    lines = []
    for i in range(tenants):
        slug = f"t{i:04d}"
        tenant = provision_tenant(slug=slug, name=slug, admin=admin)
        with use_tenant(tenant):
            Contact.objects.bulk_create(
                Contact(name=f"Contact {n}", email=f"c{n}@example.com", phone="+1 555 0100")
                for n in range(CONTACTS)
            )
            user = User.objects.get(username=admin.username)
            lines.append(f"{slug} {issue_tokens(user, tenant)['access']}")
        connections[tenant.alias].close()
    TOKENS.parent.mkdir(parents=True, exist_ok=True)
    TOKENS.write_text("\n".join(lines))
    print(f"seeded {tenants} tenants with {CONTACTS} contacts each")


def serve(tree: Path, tenants: int, cap: int, requests: int) -> None:
    """The measured process: a warm-up over every tenant, then `requests` requests."""
    _setup_django(tree, cap)
    from django.core.handlers.wsgi import WSGIHandler

    pairs = [line.split() for line in TOKENS.read_text().splitlines()][:tenants]
    app = WSGIHandler()
    statuses: list[str] = []

    def one(n: int) -> None:
        slug, token = pairs[n % len(pairs)]
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/api/address-book",
            "QUERY_STRING": "",
            "SERVER_NAME": f"{slug}.localhost",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": f"{slug}.localhost",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        response = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(response)
        response.close()

    warm = max(20, 2 * len(pairs))
    for n in range(warm + requests):
        one(n)
    bad = {status for status in statuses if not status.startswith("200")}
    if bad:
        raise SystemExit(f"unexpected answers: {bad}")


def _instructions(tree: Path, tenants: int, cap: int, requests: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                "serve",
                "--tree",
                str(tree),
                "--tenants",
                str(tenants),
                "--cap",
                str(cap),
                "--requests",
                str(requests),
            ],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        match = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        if match is None:
            raise SystemExit("callgrind wrote no summary")
        return int(match.group(1))


def measure(tree: Path, tenants: int, cap: int, a: int, b: int, *, pooled: bool) -> None:
    pooler = None
    if pooled:
        from bench.servers import Pooler

        pooler = Pooler(int(PG.rsplit(":", 1)[1])).start()
        os.environ[POOLER_ENV] = pooler.url
    try:
        low, high = _instructions(tree, tenants, cap, a), _instructions(tree, tenants, cap, b)
    finally:
        if pooler is not None:
            pooler.stop()
            del os.environ[POOLER_ENV]
    per_request = (high - low) / (b - a)
    print(
        f"tree={tree} tenants={tenants} cap={cap}{' pooled' if pooled else ''}: "
        f"{per_request / 1e6:.3f} M instructions a request ({a} and {b} requests: {low:,} "
        f"and {high:,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("seed", "measure", "serve"))
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--cap", type=int, default=32)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--counts", default="40,140", help="the two request counts, A,B")
    parser.add_argument("--pooled", action="store_true", help="tenants through pgbouncer")
    args = parser.parse_args()
    if args.command == "seed":
        seed(args.tenants)
    elif args.command == "serve":
        serve(args.tree.resolve(), args.tenants, args.cap, args.requests)
    else:
        a, b = (int(n) for n in args.counts.split(","))
        measure(args.tree.resolve(), args.tenants, args.cap, a, b, pooled=args.pooled)


if __name__ == "__main__":
    main()
