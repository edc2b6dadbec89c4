"""`manage.py migrate_tenants` with nothing pending, over every bench tenant."""

from __future__ import annotations

import subprocess
import time

from bench.context import Context, raw
from bench.report import Target
from bench.scenarios import Metric, Need
from bench.servers import PY, ROOT, VENV_BIN, manage

KEY = "migrate"
TITLE = "manage.py migrate_tenants, nothing pending, {mode.tenants:,}+ tenants"
NEEDS = {Need.POSTGRESQL, Need.REDIS}
METRICS = (Metric("seconds", "wall time", "s", Target("<=", 15, "s")),)


def run(ctx: Context, run: int) -> dict:
    t0 = time.perf_counter()
    if run == 0 and KEY in ctx.profile:
        spy = [str(VENV_BIN / "py-spy"), "record", "-r", "200", "-f", "raw", "--nonblocking"]
        spy += ["-o", str(raw("profile-migrate.txt")), "--", PY, "manage.py", "migrate_tenants"]
        out = subprocess.run(spy, env=ctx.env, cwd=ROOT, capture_output=True, text=True)
    else:
        out = manage(ctx.env, "migrate_tenants")
    elapsed = time.perf_counter() - t0
    raw(f"migrate-{run}.txt").write_text(out.stdout[-5000:] + out.stderr[-5000:])
    if out.returncode:
        raise RuntimeError(f"migrate_tenants failed: {out.stderr[-500:]}")
    count = out.stdout.count(": up to date") + out.stdout.count(": applied")
    return {"seconds": elapsed, "tenants": count - 1}  # minus the template line


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {"seconds": f"tenants {[r['tenants'] for r in runs]}."}
