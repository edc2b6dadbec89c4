"""The benchmark harness: `make bench` (or `python -m bench.run [--quick]`).

Starts its own PostgreSQL cluster with PostgreSQL's defaults (`bench.servers.PgServer`;
`--system-pg` uses the server on 127.0.0.1:5432 instead) and Debian's pgbouncer in front of
it with the compose file's limits (`bench.servers.Pooler`: tenants go through it, the main
database and DDL direct, as docker-compose.yml ships), a second cluster and pooler when a
scenario needs two servers, provisions bench tenants on it (database names `tk_bench` and
`tkbench_*` only, dropped at the start of each run and at its end; `bench.seed`), starts the
servers the way production runs them (gunicorn sync workers for HTTP, daphne for the
WebSocket stream), runs each scenario of `bench/scenarios/` with a load generator on
loopback, and writes bench/results/latest.md and latest.json. Raw output goes to
bench/results/raw/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import time
from datetime import UTC, datetime

from bench.context import (
    BENCH_SLUG,
    HTTP_PORT,
    LIST_PATH,
    MAIN_DB,
    PEER_DB,
    PREFIX,
    RAW,
    RESULTS,
    SECOND_ADMIN_URL_ENV,
    SECOND_URL_ENV,
    SYSTEM_PG,
    WS_PORT,
    Context,
    full,
    quick,
    say,
)
from bench.load import ensure_wrk
from bench.report import Row, render_json, render_markdown
from bench.scenarios import ORDER, Need, Scenario, scenarios
from bench.seed import seed
from bench.servers import PgServer, Pooler, drop_databases, foreign_load, machine_info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every scenario small (seconds)")
    parser.add_argument(
        "--only", action="append", default=[], choices=ORDER, help="scenario key (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=0, help="runs per scenario (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--big-contacts", type=int, default=0, help="contacts in the big tenant")
    parser.add_argument(
        "--profile", action="append", default=[], help="py-spy the HTTP workers in KEY's run 0"
    )
    parser.add_argument(
        "--system-pg",
        action="store_true",
        help="use the PostgreSQL server on 127.0.0.1:5432 instead of a cluster of its own",
    )
    parser.add_argument(
        "--output",
        default="",
        help="result file stem in bench/results/ (default: latest, or quick with --quick)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = quick() if args.quick else full()
    args.output = args.output or ("quick" if args.quick else "latest")
    if args.runs:
        mode.runs = args.runs
    if args.big_contacts:
        mode.big_contacts = args.big_contacts
    chosen = scenarios(mode, args.only)
    needs = set().union(*(sc.needs for sc in chosen))
    RAW.mkdir(parents=True, exist_ok=True)
    if Need.WRK in needs:
        ensure_wrk()
    stack = contextlib.ExitStack()
    try:
        ctx, own_pg = start_servers(stack, args, mode, needs)
    except BaseException:
        stack.close()
        raise
    started = datetime.now(UTC)
    idle_before = foreign_load()
    say(f"{mode.name} mode; load {idle_before}")
    rows: list[Row] = []
    try:
        seed(ctx, second_server=Need.SECOND_SERVER in needs, peer=Need.PEER in needs)
        with contextlib.ExitStack() as servers:
            if Need.WS_SERVER in needs:
                ctx.ws_server = servers.enter_context(ctx.daphne(WS_PORT))
            for sc in chosen:
                # The 2-worker HTTP server runs only for the scenarios that use it, and is
                # restarted after one that fans out tenant connections.
                if Need.HTTP_SERVER in sc.needs and ctx.http_server is None:
                    ctx.http_server = ctx.gunicorn(HTTP_PORT).__enter__()
                    warm(ctx)
                elif Need.HTTP_SERVER not in sc.needs:
                    stop_http(ctx)
                say(f"scenario {sc.key}: {sc.title}")
                try:
                    rows.extend(run_scenario(ctx, sc))
                finally:
                    if sc.fans_out_connections:
                        stop_http(ctx)
            stop_http(ctx)
    finally:
        if not args.keep:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            with contextlib.suppress(Exception):
                dropped = drop_databases(ctx.pg, MAIN_DB, PREFIX)
                dropped += drop_databases(ctx.pg, PEER_DB, PEER_DB)
                say(f"dropped {dropped} bench database(s)")
        stack.close()  # the poolers, then the clusters (removed)
    write_results(args.output, rows, ctx, started, idle_before, own_cluster=own_pg is not None)
    return 1 if any(row.error for row in rows) else 0


def start_servers(
    stack: contextlib.ExitStack, args: argparse.Namespace, mode, needs: set
) -> tuple[Context, PgServer | None]:
    """The PostgreSQL server(s) and their poolers, entered on `stack`; the run's Context."""
    own_pg = None if args.system_pg else stack.enter_context(PgServer())
    pg_url = own_pg.url if own_pg else SYSTEM_PG
    pooler = stack.enter_context(Pooler(own_pg.port if own_pg else 5432))
    say(
        f"PostgreSQL on {pg_url} (its defaults), PgBouncer on port {pooler.port} "
        f"(max_user_connections {pooler.max_user_connections})"
    )
    ctx = Context(
        mode=mode,
        pg=pg_url,
        pooler=pooler.url,
        pooler_limit=pooler.max_user_connections,
        profile=set(args.profile),
    )
    if Need.SECOND_SERVER in needs:
        second = stack.enter_context(PgServer())
        second_pooler = stack.enter_context(Pooler(second.port))
        ctx.second_pg = second.url
        ctx.env[SECOND_URL_ENV] = second_pooler.url
        ctx.env[SECOND_ADMIN_URL_ENV] = second.url
        say(f"second PostgreSQL on {second.url}, its PgBouncer on port {second_pooler.port}")
    return ctx, own_pg


def run_scenario(ctx: Context, sc: Scenario) -> list[Row]:
    """`sc` run `ctx.mode.runs` times (the load average noted before each); an exception is
    a harness or server error: recorded in the rows, and the next scenario goes on."""
    runs: list[dict] = []
    loads: list[float] = []
    contention: list[int] = []
    error = ""
    for run in range(ctx.mode.runs):
        state = foreign_load()
        loads.append(state["load1"])
        contention.append(state["pytest_procs"])
        profilers = []
        if run == 0 and ctx.http_server is not None and Need.HTTP_SERVER in sc.needs:
            profilers = ctx.profilers(sc.key, run, ctx.http_server.workers(), ctx.mode.wrk_seconds)
        try:
            result = sc.run(ctx, run)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            say(f"{sc.key} run {run}: ERROR {error}")
            break
        finally:
            for proc in profilers:
                proc.wait(timeout=120)
        runs.append(result)
        say(f"{sc.key} run {run}: {json.dumps(result, default=str)[:300]}")
    return sc.rows(ctx, runs, loads=loads, contention=contention, error=error)


def write_results(
    output: str,
    rows: list[Row],
    ctx: Context,
    started: datetime,
    idle_before: dict,
    *,
    own_cluster: bool,
) -> None:
    """bench/results/`output`.md and .json, and the table on stdout."""
    loads = [v for row in rows for v in row.load_before]
    contention = max((foreign_load()["pytest_procs"], idle_before["pytest_procs"]))
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": ctx.mode.name,
        "runs": ctx.mode.runs,
        "duration_s": round(time.time() - ctx.started),
        "load_before_max": max(loads, default=0.0),
        "idle_note": (
            f"1-minute load average before the runs between {min(loads, default=0):.2f} and "
            f"{max(loads, default=0):.2f} on {os.cpu_count()} cores; "
            + (
                "other test processes were running during the run (figures skewed by CPU "
                "contention)"
                if contention or any("other test" in r.note for r in rows)
                else "no other test processes seen"
            )
        ),
        "server": "gunicorn config.wsgi:application, 2 sync workers, CONN_MAX_AGE=60, "
        f"TENANT_MAX_OPEN_CONNECTIONS={ctx.tenant_cap}; daphne for WebSocket; "
        + (
            "the bench's own PostgreSQL cluster (PostgreSQL's defaults: max_connections 100)"
            if own_cluster
            else "the PostgreSQL server on 127.0.0.1:5432"
        )
        + "; tenants through Debian's pgbouncer (config/pgbouncer, the compose file's "
        f"limits: max_user_connections {ctx.pooler_limit}), the main database and DDL direct",
    }
    machine = machine_info()
    (RESULTS / f"{output}.md").write_text(render_markdown(rows, machine, meta))
    (RESULTS / f"{output}.json").write_text(render_json(rows, machine, meta) + "\n")
    say(f"wrote bench/results/{output}.md and .json in {meta['duration_s']} s")
    print(render_markdown(rows, machine, meta))


def stop_http(ctx: Context) -> None:
    if ctx.http_server is not None:
        ctx.http_server.stop()
        ctx.http_server = None


def warm(ctx: Context) -> None:
    """A few requests so both workers have imported everything and connected."""
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
        conn.request(
            "GET",
            LIST_PATH,
            headers={
                "Host": f"{BENCH_SLUG}.localhost",
                "Authorization": f"Bearer {ctx.tokens[BENCH_SLUG]}",
            },
        )
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"warm-up request answered {resp.status}")
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
