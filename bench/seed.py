"""A bench run's databases and data, made the way the product makes them.

The main database `tk_bench` is created on the server and migrated (`manage.py migrate`);
then, in this process (`django.setup()` with the bench environment), every tenant comes
from `tenants.services.provision_tenant` with its first admin (template clone,
migrations, `accounts.services.user_create`), and every access token from
`accounts.tokens.issue_tokens`, as the login issues them. Only the contacts are written
straight into the tenant databases (`generate_series`): a million rows through the API
would take longer than the whole run.
"""

from __future__ import annotations

import json
import os
import random
import time

from bench.context import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    BENCH_SLUG,
    BIG_SLUG,
    MAIN_DB,
    PEER_DB,
    PREFIX,
    REDIS_URL,
    SECOND_ADMIN_URL_ENV,
    SECOND_PREFIX,
    SECOND_SERVER,
    SECOND_URL_ENV,
    Context,
    raw,
    say,
)
from bench.servers import create_database, drop_databases, flush_redis, manage


def seed(ctx: Context, *, second_server: bool = False, peer: bool = False) -> None:
    """Empty the bench's Redis database and databases, then make them again: `bench` and
    the small tenants `t0001`... with `small_contacts` each, `big` with `big_contacts`,
    one admin in each (the same credentials), a token per tenant in `ctx.tokens`, and the
    files the Lua scripts read (raw/hosts-*.txt, login.json). With `second_server`, the
    second PostgreSQL server is registered (`add_database_server`) and `second_tenants`
    tenants `s0001`... are placed on it; with `peer`, the django-tenants peer is seeded."""
    mode = ctx.mode
    flush_redis(REDIS_URL)
    say(f"dropped {drop_databases(ctx.pg, MAIN_DB, PREFIX)} leftover bench database(s)")
    drop_databases(ctx.pg, PEER_DB, PEER_DB)
    create_database(ctx.pg, MAIN_DB)
    out = manage(ctx.env, "migrate", "--verbosity", "0")
    if out.returncode:
        raise RuntimeError(f"migrate failed: {out.stderr[-2000:]}")
    if second_server:
        # The product's own command, as an operator registers a server (its URLs are read
        # from the environment variables named; the harness set them in ctx.env).
        out = manage(
            ctx.env,
            "add_database_server",
            SECOND_SERVER,
            "--url-env",
            SECOND_URL_ENV,
            "--admin-url-env",
            SECOND_ADMIN_URL_ENV,
        )
        if out.returncode:
            raise RuntimeError(f"add_database_server failed: {out.stderr[-2000:]}")

    os.environ.update(ctx.env)
    import django

    django.setup()
    from tenants.db.aliases import DEFAULT_SERVER
    from tenants.services import AdminSpec, provision_tenant

    admin = AdminSpec(ADMIN_USER, "bench@example.com", ADMIN_PASSWORD)
    t0 = time.time()
    tenants = {
        BENCH_SLUG: provision_tenant(
            slug=BENCH_SLUG, name="Bench", admin=admin, server=DEFAULT_SERVER
        )
    }
    say(f"provisioned '{BENCH_SLUG}' (template migrated) in {time.time() - t0:.1f}s")
    bench_url = ctx.database_url(tenants[BENCH_SLUG].database_name)
    seed_contacts(bench_url, BENCH_SLUG, mode.small_contacts)

    slugs = [f"t{i:04d}" for i in range(1, mode.tenants + 1)]
    t0 = time.time()
    for slug in slugs:
        tenants[slug] = provision_tenant(slug=slug, name=slug, admin=admin, server=DEFAULT_SERVER)
        seed_contacts(ctx.database_url(tenants[slug].database_name), slug, mode.small_contacts)
    tenants[BIG_SLUG] = provision_tenant(
        slug=BIG_SLUG, name=BIG_SLUG, admin=admin, server=DEFAULT_SERVER
    )
    say(f"provisioned {len(slugs) + 1} more tenants in {time.time() - t0:.1f}s")
    t0 = time.time()
    seed_contacts(ctx.database_url(tenants[BIG_SLUG].database_name), BIG_SLUG, mode.big_contacts)
    say(f"seeded {mode.big_contacts:,} contacts in '{BIG_SLUG}' in {time.time() - t0:.1f}s")
    seconds = []
    if second_server:
        t0 = time.time()
        seconds = [f"{SECOND_PREFIX}{i:04d}" for i in range(1, mode.second_tenants + 1)]
        for slug in seconds:
            tenants[slug] = provision_tenant(
                slug=slug, name=slug, admin=admin, server=SECOND_SERVER
            )
            url = f"{ctx.second_pg}/{tenants[slug].database_name}"
            seed_contacts(url, slug, mode.small_contacts)
        took = time.time() - t0
        say(f"provisioned {len(seconds)} tenants on server '{SECOND_SERVER}' in {took:.1f}s")

    issue_access_tokens(ctx, tenants)
    write_hosts(ctx, "hosts-rr.txt", [BENCH_SLUG, *slugs[: mode.rr_tenants - 1]])
    write_hosts(ctx, "hosts-all.txt", [BENCH_SLUG, BIG_SLUG, *slugs])
    # The 1,000-tenant rows: t0001..t1000 in order (uniform round-robin), the same in a
    # fixed random order (the Zipf row's ranks: which tenants are hot is chance, not slug
    # order), and two servers' halves interleaved (each request goes to the other server).
    write_hosts(ctx, "hosts-many.txt", slugs)
    write_hosts(ctx, "hosts-zipf.txt", random.Random(1100).sample(slugs, len(slugs)))
    pairs = zip(slugs[: len(seconds)], seconds, strict=True)
    write_hosts(ctx, "hosts-two.txt", [slug for pair in pairs for slug in pair])
    raw("login.json").write_text(
        json.dumps({"username_or_email": ADMIN_USER, "password": ADMIN_PASSWORD})
    )
    if peer:
        seed_peer(ctx, [BENCH_SLUG, *slugs[: mode.rr_tenants - 1]])


def seed_peer(ctx: Context, slugs: list[str]) -> None:
    """The django-tenants peer (bench/peer/): its database, its public schema, a schema per
    tenant in `slugs` with one user and the same contacts; raw/peer-hosts-rr.txt holds a
    bearer token per tenant (the first line is the bench tenant)."""
    t0 = time.time()
    create_database(ctx.pg, PEER_DB)
    env = ctx.peer_env
    out = manage(env, "migrate_schemas", "--shared", "--verbosity", "0", module="bench.peer.manage")
    if out.returncode:
        raise RuntimeError(f"peer migrate_schemas failed: {out.stderr[-2000:]}")
    slugs_file = raw("peer-slugs.txt")
    slugs_file.write_text("\n".join(slugs) + "\n")
    out = manage(
        env,
        "peer_seed",
        "--slugs-file",
        str(slugs_file),
        "--contacts",
        str(ctx.mode.small_contacts),
        "--username",
        ADMIN_USER,
        "--out",
        str(raw("peer-hosts-rr.txt")),
        module="bench.peer.manage",
    )
    if out.returncode:
        raise RuntimeError(f"peer seed failed: {out.stderr[-2000:]}")
    say(f"seeded the django-tenants peer ({len(slugs)} schemas) in {time.time() - t0:.1f}s")


def issue_access_tokens(ctx: Context, tenants: dict) -> None:
    """An access token of each tenant's bench admin in `ctx.tokens`, and one with
    `tenant: null` for the bypass server (the bench tenant's admin, no tenant active)."""
    from django.db import connections

    from accounts.models import User
    from accounts.tokens import issue_tokens
    from tenants.context import use_tenant

    for slug, tenant in tenants.items():
        with use_tenant(tenant):
            user = User.objects.get(username=ADMIN_USER)
            ctx.tokens[slug] = issue_tokens(user, tenant)["access"]
            if slug == BENCH_SLUG:
                ctx.bypass_token = issue_tokens(user, None)["access"]
        # One connection per tenant would outgrow the server's max_connections.
        connections[tenant.alias].close()


def write_hosts(ctx: Context, name: str, slugs: list[str]) -> None:
    """raw/`name`: `<slug>.localhost <token>` a line, for bench/rotate.lua."""
    raw(name).write_text("".join(f"{s}.localhost {ctx.tokens[s]}\n" for s in slugs))


# The synthetic contacts of every bench tenant, the product's and the peer's alike. Each
# e-mail carries the tenant's slug (`user7@t0042.example7.com`), so a load script can check
# that every contact of a response belongs to the tenant it asked for (bench/rotate_check.lua).
CONTACTS_SQL = """
INSERT INTO addressbook_contact
    (name, email, phone, address, gender, age, notes, created_at, updated_at)
SELECT
    'Contact ' || lpad(to_hex((g * 2654435761) %% 4294967296), 8, '0'),
    'user' || g || '@' || %(slug)s || '.example' || (g %% 50) || '.com',
    '+1 555 ' || lpad((g %% 10000000)::text, 7, '0'),
    g || ' Bench Street, Springfield',
    (ARRAY['male','female','other','unspecified'])[1 + g %% 4],
    CASE WHEN g %% 10 = 0 THEN NULL ELSE g %% 100 END,
    '',
    now() - (g %% 1000) * interval '1 hour',
    now()
FROM generate_series(1, %(count)s) AS g
"""


def seed_contacts(url: str, slug: str, count: int) -> None:
    """`count` synthetic contacts of tenant `slug` straight into its database at `url`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CONTACTS_SQL, {"count": count, "slug": slug})
        conn.execute("ANALYZE addressbook_contact")
