"""The benchmark's scenarios, one module each.

A scenario module declares, at its top:

- `KEY`: the name `--only` and `--profile` take and the prefix of its rows' keys;
- `TITLE`: the table's scenario column, formatted with the run's `mode`
  (`"{mode.rr_tenants} tenants"`);
- `NEEDS`: what has to be there for it (`Need`); the runner starts the shared servers from it;
- `METRICS`: its rows, one `Metric` each: the key of `run()`'s result, a label, a unit, the
  target (None: informational);

and defines `run(ctx, run) -> dict` (one run: metric key -> figure, plus whatever the notes
need) and, optionally, `notes(runs, ctx) -> dict` (metric key -> the context that belongs
beside that figure) and `FANS_OUT_CONNECTIONS = True` (the shared HTTP server is restarted
after it: its workers hold a connection per tenant they served).

`ORDER` is the run order: the scenarios on the shared HTTP server first, then the scale-out
rows (each starts its own fresh servers: bench/scale.py), then the ones that start other
processes.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from bench.report import Row, Target, summarize

if TYPE_CHECKING:
    from bench.context import Context, Mode

ORDER = (
    "list",
    "open",
    "bypass",
    "login",
    "deep",
    "daphne",
    "hostile_inputs",
    "cpu_tenants",
    "peer",
    "zipf",
    "uniform",
    "two_servers",
    "rate_limit",
    "provision",
    "migrate",
    "rss",
    "export",
    "backup_restore",
    "ws",
    "ws_frames",
    "logcall",
    "move_tenant",
)


class Need(enum.Enum):
    POSTGRESQL = "PostgreSQL (the bench's own cluster, or --system-pg)"
    REDIS = "Redis on 127.0.0.1:6379"
    HTTP_SERVER = "the shared gunicorn (2 sync workers) on HTTP_PORT"
    WS_SERVER = "daphne on WS_PORT for the log stream"
    WRK = "wrk (Debian package)"
    WEBSOCKETS = "the websockets package (the bench extra)"
    DJANGO = "the product's code in the runner's process (django.setup() with the bench env)"
    PEER = "the django-tenants peer project (bench/peer/), seeded beside the product"
    SECOND_SERVER = "a second PostgreSQL server behind its own PgBouncer, 500 tenants on it"


@dataclass(frozen=True)
class Metric:
    key: str  # in run()'s result
    label: str
    unit: str
    target: Target | None


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    needs: frozenset[Need]
    metrics: tuple[Metric, ...]
    run: Callable[[Context, int], dict]
    notes: Callable[[list[dict], Context], dict[str, str]]
    fans_out_connections: bool = False

    @classmethod
    def from_module(cls, module: ModuleType, mode: Mode) -> Scenario:
        return cls(
            key=module.KEY,
            title=module.TITLE.format(mode=mode),
            needs=frozenset(module.NEEDS),
            metrics=tuple(module.METRICS),
            run=module.run,
            notes=getattr(module, "notes", _no_notes),
            fans_out_connections=getattr(module, "FANS_OUT_CONNECTIONS", False),
        )

    def rows(
        self,
        ctx: Context,
        runs: list[dict],
        *,
        loads: list[float],
        contention: list[int],
        error: str,
    ) -> list[Row]:
        """One table row per metric: its figure over `runs`, target and notes."""
        note = f"other test processes seen: {max(contention)}" if any(contention) else ""
        notes = self.notes(runs, ctx) if runs else {}
        return [
            Row(
                key=f"{self.key}.{metric.key}",
                scenario=self.title,
                metric=metric.label,
                unit=metric.unit,
                summary=summarize([r.get(metric.key) for r in runs]),
                target=metric.target,
                note=f"{notes.get(metric.key, '')} {note}".strip(),
                load_before=loads,
                extra={"runs": runs},
                error=error,
            )
            for metric in self.metrics
        ]


def _no_notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {}


def module(key: str) -> ModuleType:
    return importlib.import_module(f"bench.scenarios.{key}")


def scenarios(mode: Mode, only: list[str] | None = None) -> list[Scenario]:
    """The scenarios `only` names (all when empty), in run order."""
    return [Scenario.from_module(module(key), mode) for key in ORDER if not only or key in only]
