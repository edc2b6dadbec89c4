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
import time

from bench.context import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    BENCH_SLUG,
    BIG_SLUG,
    MAIN_DB,
    PREFIX,
    REDIS_URL,
    Context,
    raw,
    say,
)
from bench.servers import create_database, drop_databases, flush_redis, manage


def seed(ctx: Context) -> None:
    """Empty the bench's Redis database and databases, then make them again: `bench` and
    the small tenants `t0001`... with `small_contacts` each, `big` with `big_contacts`,
    one admin in each (the same credentials), a token per tenant in `ctx.tokens`, and the
    files the Lua scripts read (raw/hosts-rr.txt, hosts-all.txt, login.json)."""
    mode = ctx.mode
    flush_redis(REDIS_URL)
    say(f"dropped {drop_databases(ctx.pg, MAIN_DB, PREFIX)} leftover bench database(s)")
    create_database(ctx.pg, MAIN_DB)
    out = manage(ctx.env, "migrate", "--verbosity", "0")
    if out.returncode:
        raise RuntimeError(f"migrate failed: {out.stderr[-2000:]}")

    os.environ.update(ctx.env)
    import django

    django.setup()
    from tenants.services import AdminSpec, provision_tenant

    admin = AdminSpec(ADMIN_USER, "bench@example.com", ADMIN_PASSWORD)
    t0 = time.time()
    tenants = {BENCH_SLUG: provision_tenant(slug=BENCH_SLUG, name="Bench", admin=admin)}
    say(f"provisioned '{BENCH_SLUG}' (template migrated) in {time.time() - t0:.1f}s")
    seed_contacts(ctx, tenants[BENCH_SLUG].database_name, mode.small_contacts)

    slugs = [f"t{i:04d}" for i in range(1, mode.tenants + 1)]
    t0 = time.time()
    for slug in slugs:
        tenants[slug] = provision_tenant(slug=slug, name=slug, admin=admin)
        seed_contacts(ctx, tenants[slug].database_name, mode.small_contacts)
    tenants[BIG_SLUG] = provision_tenant(slug=BIG_SLUG, name=BIG_SLUG, admin=admin)
    say(f"provisioned {len(slugs) + 1} more tenants in {time.time() - t0:.1f}s")
    t0 = time.time()
    seed_contacts(ctx, tenants[BIG_SLUG].database_name, mode.big_contacts)
    say(f"seeded {mode.big_contacts:,} contacts in '{BIG_SLUG}' in {time.time() - t0:.1f}s")

    issue_access_tokens(ctx, tenants)
    write_hosts(ctx, "hosts-rr.txt", [BENCH_SLUG, *slugs[: mode.rr_tenants - 1]])
    write_hosts(ctx, "hosts-all.txt", [BENCH_SLUG, BIG_SLUG, *slugs])
    raw("login.json").write_text(
        json.dumps({"username_or_email": ADMIN_USER, "password": ADMIN_PASSWORD})
    )


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


def seed_contacts(ctx: Context, database: str, count: int) -> None:
    """`count` synthetic contacts straight into a tenant database (generate_series)."""
    import psycopg

    with psycopg.connect(ctx.database_url(database), autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO addressbook_contact
                (name, email, phone, address, gender, age, notes, created_at, updated_at)
            SELECT
                'Contact ' || lpad(to_hex((g * 2654435761) %% 4294967296), 8, '0'),
                'user' || g || '@example' || (g %% 50) || '.com',
                '+1 555 ' || lpad((g %% 10000000)::text, 7, '0'),
                g || ' Bench Street, Springfield',
                (ARRAY['male','female','other','unspecified'])[1 + g %% 4],
                CASE WHEN g %% 10 = 0 THEN NULL ELSE g %% 100 END,
                '',
                now() - (g %% 1000) * interval '1 hour',
                now()
            FROM generate_series(1, %s) AS g
            """,
            [count],
        )
        conn.execute("ANALYZE addressbook_contact")
