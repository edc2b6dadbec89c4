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
def test_own_postgresql_cluster_starts_sized_and_is_removed():
    """The harness's own PostgreSQL cluster: started from the machine's binaries, sized for
    the round-robin scenario, and gone (server and files) after the `with` block."""
    import psycopg

    from bench.servers import MAX_CONNECTIONS, PgServer

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

    (scenario,) = scenarios(quick(), ["round_robin"])
    ctx = Context(mode=quick(), pg="postgres://postgres@127.0.0.1:1", env={"X": "1"})
    runs = [
        {"ratio": 0.95, "rps_one": 600.0, "rps_many": 570.0, "sessions_per_req": 0.0},
        {"ratio": 0.97, "rps_one": 610.0, "rps_many": 592.0, "sessions_per_req": 0.01},
    ]
    (row,) = scenario.rows(ctx, runs, loads=[0.5, 0.6], contention=[0, 2], error="")
    assert row.key == "round_robin.ratio"
    assert row.scenario == "same across 10 tenants round-robin vs 1 tenant"
    assert row.target == Target(">=", 0.90)
    assert row.verdict() == "met" and row.summary.median == pytest.approx(0.96)
    assert row.note == (
        "1 tenant [600, 610] req/s, 10 tenants [570, 592]; new DB sessions per request "
        "[0.0, 0.01]. other test processes seen: 2"
    )
    (failed,) = scenario.rows(ctx, [], loads=[0.5], contention=[0], error="RuntimeError: x")
    assert failed.verdict() == "ERROR" and failed.note == ""
