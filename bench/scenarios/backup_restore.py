"""`backup_tenant` and `restore_tenant` of the big tenant (pg_dump -Fc / pg_restore of the
server's major version), as an operator runs them: rows per second of each. The restore is
into the same tenant (a new database, verified, migrated, switched to); `--finish` then
drops the database it kept aside, outside the measured time."""

from __future__ import annotations

import time

from bench.context import BIG_SLUG, Context, raw
from bench.scenarios import Metric, Need
from bench.servers import manage

KEY = "backup_restore"
TITLE = "backup and restore of a tenant with {mode.big_contacts:,} contacts"
NEEDS = {Need.POSTGRESQL, Need.REDIS}
METRICS = (
    Metric("backup_rows_per_s", "backup_tenant throughput", "rows/s", None),
    Metric("restore_rows_per_s", "restore_tenant throughput", "rows/s", None),
    Metric("backup_mb", "backup file size", "MB", None),
)


def _timed(ctx: Context, name: str, *args: str) -> float:
    t0 = time.perf_counter()
    out = manage(ctx.env, *args)
    elapsed = time.perf_counter() - t0
    raw(name).write_text(out.stdout[-5000:] + out.stderr[-5000:])
    if out.returncode:
        raise RuntimeError(f"{args[0]} failed: {out.stderr[-500:]}")
    return elapsed


def run(ctx: Context, run: int) -> dict:
    archive = raw(f"backup-restore-{run}.tar")
    archive.unlink(missing_ok=True)
    contacts = ctx.mode.big_contacts
    backup_s = _timed(ctx, f"backup-{run}.txt", "backup_tenant", BIG_SLUG, "--output", str(archive))
    size_mb = archive.stat().st_size / 1e6
    restore_s = _timed(
        ctx, f"restore-{run}.txt", "restore_tenant", BIG_SLUG, "--input", str(archive), "--yes"
    )
    _timed(ctx, f"restore-finish-{run}.txt", "restore_tenant", BIG_SLUG, "--finish", "--yes")
    archive.unlink(missing_ok=True)
    return {
        "backup_rows_per_s": contacts / backup_s,
        "restore_rows_per_s": contacts / restore_s,
        "backup_mb": size_mb,
        "backup_s": backup_s,
        "restore_s": restore_s,
    }


def notes(runs: list[dict], ctx: Context) -> dict[str, str]:
    return {
        "backup_rows_per_s": f"wall seconds {[round(r['backup_s'], 2) for r in runs]} "
        "(the command's own process start included).",
        "restore_rows_per_s": f"wall seconds {[round(r['restore_s'], 2) for r in runs]}: "
        "checksum, pg_restore --jobs=2, row counts checked, migrate, fence, switch.",
    }
