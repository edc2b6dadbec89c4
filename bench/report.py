"""Pure parts of the harness: summary statistics, target checks, the result table.

Nothing here touches a server or a database, so tests/test_bench_harness.py can check it.
"""

from __future__ import annotations

import json
import math
import operator
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    """`value op threshold`, e.g. Target(">=", 500, "req/s")."""

    op: str
    threshold: float
    unit: str = ""

    def met(self, value: float | None) -> bool | None:
        """True/False; None when there is no figure (the scenario failed to produce one)."""
        if value is None:
            return None
        return _OPS[self.op](value, self.threshold)

    def describe(self) -> str:
        return f"{self.op} {fmt_number(self.threshold)}{' ' + self.unit if self.unit else ''}"


@dataclass
class Summary:
    median: float | None
    min: float | None
    max: float | None
    runs: list[float]


def summarize(values: list[float | None]) -> Summary:
    """Median, min and max of the runs that produced a figure."""
    runs = [float(v) for v in values if v is not None]
    if not runs:
        return Summary(None, None, None, [])
    return Summary(statistics.median(runs), min(runs), max(runs), runs)


def fmt_number(value: float | None) -> str:
    """Short human form: 612.4 -> '612', 0.0123 -> '0.0123', 1234567 -> '1,234,567'."""
    if value is None:
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.3g}"


@dataclass
class Row:
    """One scenario's result: the figure over its runs, the target, and context."""

    key: str
    scenario: str
    metric: str
    unit: str
    summary: Summary
    target: Target | None = None
    note: str = ""
    load_before: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def met(self) -> bool | None:
        if self.error or self.target is None:
            return None
        return self.target.met(self.summary.median)

    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.target is None:
            return "info"
        return {True: "met", False: "MISSED", None: "n/a"}[self.met]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else asdict(self.target)
        data["met"] = self.met
        data["verdict"] = self.verdict()
        return data


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(rows: list[Row], machine: dict[str, Any], meta: dict[str, Any]) -> str:
    """The results page: the machine, how it was run, one table row per scenario."""
    lines = [
        "# Benchmark results",
        "",
        f"- machine: {machine.get('cpus')} cores, {machine.get('ram_gib')} GiB RAM, "
        f"CPU {machine.get('cpu_model')}, {machine.get('os', '')}".rstrip(", "),
        f"- run: {meta.get('started', '')} ({meta.get('mode', '')} mode, "
        f"{meta.get('runs', '')} runs per scenario, {meta.get('duration_s', '')} s in total)",
        f"- idle: {meta.get('idle_note', '')}",
        "- figure: median of the runs, min and max beside it; load = 1-minute load average "
        "before each run",
        "",
        "| scenario | figure (median) | min | max | target | met | load before | notes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        s = row.summary
        unit = f" {row.unit}" if row.unit else ""
        figure = "n/a" if s.median is None else f"{fmt_number(s.median)}{unit}"
        load = ", ".join(f"{v:.2f}" for v in row.load_before)
        note = row.note if not row.error else f"{row.error}. {row.note}".strip()
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    f"{row.scenario} ({row.metric})",
                    figure,
                    fmt_number(s.min),
                    fmt_number(s.max),
                    row.target.describe() if row.target else "(informational)",
                    row.verdict(),
                    load,
                    note,
                )
            )
            + " |"
        )
    lines.append("")
    return "\n".join(lines)


def render_json(rows: list[Row], machine: dict[str, Any], meta: dict[str, Any]) -> str:
    return json.dumps(
        {"machine": machine, "meta": meta, "scenarios": [row.to_json() for row in rows]},
        indent=2,
        sort_keys=False,
    )


# --- parsing load generator output --------------------------------------------------------
_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """wrk's '1.23ms' / '850.00us' / '2.01s' in seconds."""
    text = text.strip()
    for suffix in ("us", "ms", "s", "m", "h"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS_S[suffix]
    return float(text)


def parse_wrk(output: str) -> dict[str, Any]:
    """The figures of a `wrk --latency` run: requests, rps, errors, latency percentiles."""
    result: dict[str, Any] = {"requests": 0, "rps": None, "errors": 0, "non2xx": 0}
    lines = output.splitlines()
    in_dist = False
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "Latency" and len(parts) >= 2 and parts[1][0].isdigit():
            result["latency_avg_s"] = parse_duration(parts[1])
        if line.strip().startswith("Latency Distribution"):
            in_dist = True
            continue
        if in_dist and parts[0].endswith("%") and len(parts) == 2:
            result[f"p{parts[0].rstrip('%').split('.')[0]}_s"] = parse_duration(parts[1])
            continue
        in_dist = False
        if "requests in" in line:
            result["requests"] = int(parts[0])
        elif parts[0] == "routing" and len(parts) == 3:
            # bench/rotate_check.lua's summary: routing checked=N errors=M
            fields = dict(part.split("=", 1) for part in parts[1:])
            result["routing_checked"] = int(fields["checked"])
            result["routing_errors"] = int(fields["errors"])
        elif parts[0] == "Requests/sec:":
            result["rps"] = float(parts[1])
        elif parts[0] == "Non-2xx":
            result["non2xx"] = int(parts[-1])
        elif parts[0] == "Socket" and parts[1] == "errors:":
            # Socket errors: connect 0, read 0, write 0, timeout 0
            numbers = [int(p.strip(",")) for p in parts[2:] if p.strip(",").isdigit()]
            result["errors"] += sum(numbers)
    result["errors"] += result["non2xx"]
    return result


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]
