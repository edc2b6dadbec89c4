"""A page 90% deep in the big tenant's contacts (keyset cursor) against the first page:
p50 latency on one connection."""

from __future__ import annotations

from bench.context import BIG_SLUG, HTTP_PORT, LIST_PATH, PREFIX, Context
from bench.load import wrk
from bench.report import Target
from bench.scenarios import Metric, Need

KEY = "deep"
TITLE = "page deep (90%) in {mode.big_contacts:,} contacts vs first page"
NEEDS = {Need.POSTGRESQL, Need.REDIS, Need.HTTP_SERVER, Need.WRK, Need.DJANGO}
METRICS = (Metric("ratio", "p50 latency ratio", "", Target("<=", 2)),)


def _deep_cursor(ctx: Context) -> str:
    """The list's own cursor for the contact 90% of the way down the name order."""
    import psycopg

    from config.pagination import FORWARD, encode_cursor

    with psycopg.connect(ctx.database_url(f"{PREFIX}{BIG_SLUG}")) as conn:
        total = conn.execute("SELECT count(*) FROM addressbook_contact").fetchone()[0]
        name, pk = conn.execute(
            "SELECT name, id FROM addressbook_contact ORDER BY name, id OFFSET %s LIMIT 1",
            [int(total * 0.9)],
        ).fetchone()
    return encode_cursor(("name", "id"), FORWARD, (name, pk))


def run(ctx: Context, run: int) -> dict:
    cursor = _deep_cursor(ctx)
    common = {
        "seconds": ctx.mode.wrk_seconds,
        "connections": 1,
        "host": f"{BIG_SLUG}.localhost",
        "token": ctx.tokens[BIG_SLUG],
    }
    first = wrk(HTTP_PORT, LIST_PATH, tag=f"first-{run}", **common)
    deep = wrk(HTTP_PORT, f"{LIST_PATH}?cursor={cursor}", tag=f"deep-{run}", **common)
    if first["errors"] or deep["errors"]:
        raise RuntimeError("errors on the first or the deep page")
    return {
        "ratio": deep["p50_s"] / first["p50_s"],
        "first_ms": first["p50_s"] * 1000,
        "deep_ms": deep["p50_s"] * 1000,
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "ratio": f"first {[round(r['first_ms'], 2) for r in runs]} ms, "
        f"deep {[round(r['deep_ms'], 2) for r in runs]} ms (p50, 1 conn)."
    }
