"""The benchmark harness's pure parts: statistics, target checks, the result table, wrk
output parsing, the bypass settings module, and the own PostgreSQL cluster. No load."""

import importlib
import json
import os
import shutil

import pytest

from bench.report import (
    Row,
    Summary,
    Target,
    fmt_number,
    parse_duration,
    parse_wrk,
    percentile,
    render_json,
    render_markdown,
    summarize,
)
from tests.helpers import needs_component

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:18100/api/address-book
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    52.31ms    8.12ms 120.00ms   80.00%
    Req/Sec   612.00     40.00   700.00     70.00%
  Latency Distribution
     50%   51.00ms
     75%   55.00ms
     90%   60.00ms
     99%    1.20s
  6120 requests in 10.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:    612.00
Transfer/sec:      2.00MB
"""


def test_summarize_median_min_max():
    s = summarize([3.0, 1.0, 2.0])
    assert (s.median, s.min, s.max) == (2.0, 1.0, 3.0)
    assert summarize([4, 1]).median == 2.5


def test_summarize_ignores_missing_runs_and_handles_none():
    assert summarize([None, 5.0, None]).median == 5.0
    empty = summarize([])
    assert (empty.median, empty.min, empty.max, empty.runs) == (None, None, None, [])


@pytest.mark.parametrize(
    ("op", "threshold", "value", "expected"),
    [
        (">=", 500, 500, True),
        (">=", 500, 499.9, False),
        ("<=", 0.5, 0.5, True),
        ("<=", 0.5, 0.51, False),
        ("<=", 0, 0, True),
        (">=", 0.9, None, None),
    ],
)
def test_target_comparison(op, threshold, value, expected):
    assert Target(op, threshold).met(value) is expected


def test_row_verdicts():
    target = Target(">=", 500, "req/s")
    ok = Row("a", "list", "throughput", "req/s", summarize([600, 610, 590]), target)
    missed = Row("b", "list", "throughput", "req/s", summarize([400]), target)
    info = Row("c", "daphne", "throughput", "req/s", summarize([100]), None)
    broken = Row("d", "list", "throughput", "req/s", summarize([]), target, error="boom")
    assert [r.verdict() for r in (ok, missed, info, broken)] == ["met", "MISSED", "info", "ERROR"]
    assert broken.met is None


def test_markdown_table_has_one_row_per_scenario_and_the_machine():
    rows = [
        Row(
            "list.rps",
            "GET /api/address-book",
            "throughput",
            "req/s",
            summarize([612.4, 600.0, 630.2]),
            Target(">=", 500, "req/s"),
            note="a | b",
            load_before=[0.1, 0.2, 0.3],
        ),
        Row("provision.median_s", "provision", "median", "s", Summary(0.21, 0.2, 0.3, [0.21])),
    ]
    machine = {"cpus": 2, "ram_gib": 23.5, "cpu_model": "AMD EPYC", "os": "Linux"}
    text = render_markdown(rows, machine, {"mode": "quick", "runs": 3, "idle_note": "idle"})
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 2 + len(rows)  # header, separator, one per row
    assert "2 cores, 23.5 GiB RAM, CPU AMD EPYC" in text
    assert (
        "| GET /api/address-book (throughput) | 612 req/s | 600 | 630 | >= 500 req/s | met |"
        in (text)
    )
    assert "0.10, 0.20, 0.30" in text
    assert "a \\| b" in text  # a pipe in a note does not break the table
    assert "(informational) | info" in text


def test_json_output_round_trips():
    row = Row("x.y", "s", "m", "ms", summarize([1, 2, 3]), Target("<=", 10, "ms"))
    data = json.loads(render_json([row], {"cpus": 2}, {"mode": "full"}))
    scenario = data["scenarios"][0]
    assert scenario["summary"]["median"] == 2
    assert scenario["target"] == {"op": "<=", "threshold": 10, "unit": "ms"}
    assert scenario["met"] is True and scenario["verdict"] == "met"
    assert data["machine"] == {"cpus": 2}


def test_number_formatting():
    assert fmt_number(612.4) == "612"
    assert fmt_number(1234567) == "1,234,567"
    assert fmt_number(15.25) == "15.2"
    assert fmt_number(1.234) == "1.23"
    assert fmt_number(0.0123) == "0.0123"
    assert fmt_number(None) == "n/a"


def test_parse_wrk_output():
    result = parse_wrk(WRK_OUTPUT)
    assert result["rps"] == 612.0
    assert result["requests"] == 6120
    assert result["errors"] == 2 + 1 + 4  # socket errors plus non-2xx
    assert result["p50_s"] == pytest.approx(0.051)
    assert result["p99_s"] == pytest.approx(1.2)
    assert result["latency_avg_s"] == pytest.approx(0.05231)


def test_parse_duration_and_percentile():
    assert parse_duration("850.00us") == pytest.approx(0.00085)
    assert parse_duration("2.5s") == 2.5
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([], 50) is None


def test_bypass_settings_remove_tenancy_only(monkeypatch):
    monkeypatch.setenv("BENCH_BYPASS_DATABASE_URL", "postgres://u@127.0.0.1:5432/tkbench_x")
    import config.settings as base

    bypass = importlib.reload(importlib.import_module("bench.settings_bypass"))
    assert "tenants.middleware.TenantMiddleware" in base.MIDDLEWARE
    assert "tenants.middleware.TenantMiddleware" not in bypass.MIDDLEWARE
    assert [m for m in base.MIDDLEWARE if "TenantMiddleware" not in m] == bypass.MIDDLEWARE
    assert bypass.DATABASE_ROUTERS == []
    assert bypass.DATABASES["default"]["NAME"] == "tkbench_x"
    assert bypass.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert bypass.INSTALLED_APPS == base.INSTALLED_APPS


def _postgresql_server_binaries_installed() -> bool:
    from bench.servers import binaries

    try:
        binaries()
    except RuntimeError:
        return False
    return True


@needs_component(
    "PostgreSQL's server binaries",
    available=_postgresql_server_binaries_installed(),
    install="apt-get install postgresql",
)
@needs_component(
    "runuser (PostgreSQL refuses to run as root)",
    available=os.geteuid() != 0 or shutil.which("runuser") is not None,
    install="apt-get install util-linux",
)
def test_own_postgresql_cluster_starts_with_the_defaults_and_is_removed():
    """The harness's own PostgreSQL cluster: started from the machine's binaries with
    PostgreSQL's defaults as the compose file's server keeps them (max_connections 100,
    nothing raised), and gone (server and files) after the `with` block."""
    import psycopg

    from bench.servers import MAX_CONNECTIONS, SETTINGS, PgServer

    assert MAX_CONNECTIONS == 100
    assert set(SETTINGS) == {"listen_addresses"}
    with PgServer() as pg:
        root = pg.root
        with psycopg.connect(f"{pg.url}/postgres") as conn:
            value = conn.execute("SHOW max_connections").fetchone()[0]
            assert int(value) == MAX_CONNECTIONS
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"{pg.url}/postgres", connect_timeout=2)


def _scenario_modules():
    import pkgutil

    import bench.scenarios

    names = [info.name for info in pkgutil.iter_modules(bench.scenarios.__path__)]
    return [importlib.import_module(f"bench.scenarios.{name}") for name in sorted(names)]


def test_every_scenario_module_declares_its_key_title_targets_and_needs():
    from bench.context import full
    from bench.scenarios import ORDER, Metric, Need, Scenario

    modules = _scenario_modules()
    assert modules
    for module in modules:
        assert isinstance(module.KEY, str) and module.KEY, module.__name__
        assert module.__name__ == f"bench.scenarios.{module.KEY}"
        assert isinstance(module.TITLE, str) and module.TITLE
        assert module.NEEDS and all(isinstance(need, Need) for need in module.NEEDS)
        assert module.METRICS and all(isinstance(m, Metric) for m in module.METRICS)
        # A target each, or None: an informational figure.
        assert all(m.target is None or isinstance(m.target, Target) for m in module.METRICS)
        assert callable(module.run)
        scenario = Scenario.from_module(module, full())
        assert "{" not in scenario.title  # every placeholder is filled from the mode
    keys = [module.KEY for module in modules]
    assert len(keys) == len(set(keys))
    assert sorted(ORDER) == sorted(keys)  # each module runs, in one place in the order
    metric_keys = [f"{m.KEY}.{metric.key}" for m in modules for metric in m.METRICS]
    assert len(metric_keys) == len(set(metric_keys))


def test_scenario_rows_carry_its_title_targets_and_notes():
    from bench.context import Context, quick
    from bench.scenarios import scenarios

    (scenario,) = scenarios(quick(), ["two_servers"])
    ctx = Context(mode=quick(), pg="postgres://postgres@127.0.0.1:1", env={"X": "1"})
    runs = [
        {"ratio": 0.95, "routing_errors": 0, "checked": 1200, "rps_one": 600.0,
         "rps_two": 570.0, "errors": 0, "first": "one"},
        {"ratio": 0.97, "routing_errors": 0, "checked": 1300, "rps_one": 610.0,
         "rps_two": 592.0, "errors": 0, "first": "two"},
    ]  # fmt: skip
    ratio, routing = scenario.rows(ctx, runs, loads=[0.5, 0.6], contention=[0, 2], error="")
    assert ratio.key == "two_servers.ratio" and routing.key == "two_servers.routing_errors"
    assert ratio.scenario == (
        "same across 2 PostgreSQL servers x 20 tenants vs 1 server x 40, round-robin, each "
        "behind PgBouncer"
    )
    assert ratio.target == Target(">=", 0.95) and routing.target == Target("<=", 0)
    assert ratio.verdict() == "met" and ratio.summary.median == pytest.approx(0.96)
    assert ratio.note == (
        "1 server [600, 610] req/s, 2 servers [570, 592]; first measured ['one', 'two']; "
        "HTTP errors [0, 0]. other test processes seen: 2"
    )
    assert routing.note == "answers checked [1200, 1300]. other test processes seen: 2"
    failed, _ = scenario.rows(ctx, [], loads=[0.5], contention=[0], error="RuntimeError: x")
    assert failed.verdict() == "ERROR" and failed.note == ""


def test_parse_wrk_reads_the_routing_check_summary():
    out = WRK_OUTPUT + "routing checked=6120 errors=3\n"
    assert parse_wrk(out)["routing_checked"] == 6120
    assert parse_wrk(out)["routing_errors"] == 3
    assert "routing_errors" not in parse_wrk(WRK_OUTPUT)


def _pgbouncer_installed() -> bool:
    return os.access("/usr/sbin/pgbouncer", os.X_OK) or shutil.which("pgbouncer") is not None


def test_the_pooler_has_the_compose_files_limits():
    """bench.servers.Pooler renders config/pgbouncer's template with the values the compose
    file gives its pgbouncer service, only the addresses changed."""
    import yaml

    from bench.servers import ROOT, Pooler

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    shipped = compose["services"]["pgbouncer"]["environment"]
    pooler = Pooler(5432)
    try:
        for key in (
            "PGBOUNCER_MAX_CLIENT_CONN",
            "PGBOUNCER_DEFAULT_POOL_SIZE",
            "PGBOUNCER_MAX_DB_CONNECTIONS",
            "PGBOUNCER_MAX_USER_CONNECTIONS",
        ):
            assert pooler.values[key] == str(shipped[key]), key
        assert pooler.values["PGBOUNCER_AUTH_TYPE"] == "md5"  # as shipped
        assert pooler.max_user_connections == int(shipped["PGBOUNCER_MAX_USER_CONNECTIONS"])
    finally:
        pooler.stop()


@needs_component(
    "PostgreSQL's server binaries",
    available=_postgresql_server_binaries_installed(),
    install="apt-get install postgresql",
)
@needs_component("pgbouncer", available=_pgbouncer_installed(), install="apt-get install pgbouncer")
def test_the_pooler_serves_a_cluster_in_transaction_mode_with_the_shipped_limits():
    import psycopg

    from bench.servers import PgServer, Pooler

    with PgServer() as pg, Pooler(pg.port) as pooler:
        with psycopg.connect(f"{pg.url}/postgres", autocommit=True) as conn:
            conn.execute('CREATE DATABASE "tkbench_pooled"')
        # A database created after the pooler started is served (the wildcard entry).
        with psycopg.connect(f"{pooler.url}/tkbench_pooled", autocommit=True) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == "tkbench_pooled"
        console = f"{pooler.url}/pgbouncer"
        with psycopg.connect(console, autocommit=True, prepare_threshold=None) as conn:
            config = {row[0]: row[1] for row in conn.execute("SHOW CONFIG")}
        assert config["pool_mode"] == "transaction"
        assert config["max_user_connections"] == "60"
        assert config["default_pool_size"] == "5"
        assert config["max_db_connections"] == "5"
        root = pooler.root
    assert not root.exists()


class _TenantEcho:
    """A small HTTP server answering like the product's list: the X-Request-Id echoed, and
    contacts of the tenant of the Host header, except for the hosts in `wrong` (another
    tenant's contacts). It counts the requests per host."""

    def __init__(self, wrong: set[str] = frozenset()):
        import collections
        import http.server
        import threading

        hits = self.hits = collections.Counter()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                slug = self.headers["Host"].split(".")[0]
                hits[slug] += 1
                owner = "intruder" if slug in wrong else slug
                body = json.dumps(
                    {"results": [{"email": f"user{i}@{owner}.example{i}.com"} for i in range(3)]}
                ).encode()
                self.send_response(200)
                self.send_header("X-Request-Id", self.headers.get("X-Request-Id", "none"))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _hosts_file(tmp_path, slugs):
    path = tmp_path / "hosts.txt"
    path.write_text("".join(f"{slug}.localhost token-{slug}\n" for slug in slugs))
    return path


@needs_component("wrk", available=shutil.which("wrk") is not None, install="apt-get install wrk")
def test_rotate_check_counts_answers_with_another_tenants_contacts(tmp_path, monkeypatch):
    """bench/rotate_check.lua: an answer whose contacts are not the asked tenant's is a
    routing error, and only those are."""
    import bench.load

    monkeypatch.setattr(bench.load, "raw", lambda name: tmp_path / name)
    hosts = _hosts_file(tmp_path, ["t0001", "t0002", "t0003", "t0004"])
    for wrong, expect_errors in ((set(), False), ({"t0003"}, True)):
        with _TenantEcho(wrong) as server:
            result = bench.load.wrk(
                server.port, "/api/address-book", seconds=1, connections=4,
                script="rotate_check.lua", script_args=[str(hosts)], tag="check",
            )  # fmt: skip
        assert result["routing_checked"] >= result["requests"] > 0
        if expect_errors:
            # A quarter of the requests (one tenant of four) came back with the wrong data.
            assert 0.15 < result["routing_errors"] / result["routing_checked"] < 0.35
        else:
            assert result["routing_errors"] == 0


@needs_component("wrk", available=shutil.which("wrk") is not None, install="apt-get install wrk")
def test_rotate_zipf_draws_a_few_hot_tenants_and_a_long_tail(tmp_path, monkeypatch):
    """bench/rotate.lua with `zipf=1.1`: the line of rank k is drawn about in proportion to
    1/k^1.1; without it, round-robin (every line equally)."""
    import bench.load

    monkeypatch.setattr(bench.load, "raw", lambda name: tmp_path / name)
    slugs = [f"t{i:04d}" for i in range(1, 101)]
    hosts = _hosts_file(tmp_path, slugs)
    with _TenantEcho() as server:
        bench.load.wrk(
            server.port, "/", seconds=2, connections=2, script="rotate.lua",
            script_args=[str(hosts), "0", "zipf=1.1"], tag="zipf",
        )  # fmt: skip
        zipf = dict(server.hits)
        server.hits.clear()
        bench.load.wrk(
            server.port, "/", seconds=1, connections=2, script="rotate.lua",
            script_args=[str(hosts)], tag="rr",
        )  # fmt: skip
        uniform = dict(server.hits)
    total = sum(zipf.values())
    weights = [1 / k**1.1 for k in range(1, 101)]
    expected_top = weights[0] / sum(weights)  # about 0.19
    assert abs(zipf["t0001"] / total - expected_top) < 0.05
    assert zipf["t0001"] > 3 * zipf.get("t0005", 0) > 0
    assert sum(zipf.get(slug, 0) for slug in slugs[50:]) / total < 0.2  # the long tail
    assert max(uniform.values()) - min(uniform.values()) <= 2 * 2  # one lap per connection


def test_the_peer_project_serves_the_products_contact_columns():
    """bench/peer/: django-tenants' Contact has the product's columns and table, its list
    the product's page size and ordering."""
    import subprocess
    import sys

    from addressbook.models import CONTACT_FIELDS, Contact
    from bench.servers import ROOT

    script = (
        "from bench.peer.contacts.models import Contact; "
        "from bench.peer.contacts.views import ContactPage, ContactSerializer; "
        "print(Contact._meta.db_table, ContactPage.page_size, ','.join(ContactPage.ordering), "
        "','.join(ContactSerializer.Meta.fields), "
        "','.join(f.column for f in Contact._meta.concrete_fields))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "bench.peer.settings",
        "PEER_DATABASE_URL": "postgres://postgres@127.0.0.1:1/peer",
        "PEER_SECRET_KEY": "x" * 50,
    }
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    table, page_size, ordering, fields, columns = out.stdout.split()
    assert table == Contact._meta.db_table
    assert int(page_size) == 50
    assert ordering == "name,id"
    assert tuple(fields.split(",")) == CONTACT_FIELDS
    assert set(columns.split(",")) == {f.column for f in Contact._meta.concrete_fields}
