"""Tenant lifecycle: moving a tenant between servers, backing it up and restoring it,
exporting its data and purging what a dropped tenant left behind.

Every operation is a sequence of named steps, each safe to interrupt: `step(name)` marks the
boundary between two of them (it logs, and the tests kill a command there to prove that a
re-run finishes or rolls back), and `audited(...)` records the operation's outcome in the
platform's audit trail, who asked for it included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from accounts import audit

logger = logging.getLogger(__name__)


def step(operation: str, name: str, slug: str) -> None:
    """The boundary before step `name` of `operation` for tenant `slug`. Work after it must
    be safe to lose: a process killed here leaves the tenant served from one database."""
    logger.info("Tenant %s: %s, step %s", slug, operation, name)


def archive_path(slug: str, kind: str, suffix: str) -> Path:
    """A new file name under TENANT_ARCHIVE_DIR (created when missing, readable by its
    owner only) for a `kind` ("backup", "export") of tenant `slug`: where the admin and the
    platform API write, so a client never names a path on the server."""
    directory = Path(settings.TENANT_ARCHIVE_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return directory / f"{slug}-{kind}-{stamp}{suffix}"


@contextmanager
def audited(event: str, tenant, *, actor=None, details: Mapping | None = None) -> Iterator[dict]:
    """Record `event` about `tenant` once the block ends: outcome `ok`, or `failed` with the
    error's class when it raised (the error goes on). The block may add details (scalars,
    no secrets) to the dict it is given."""
    extra: dict = dict(details or {})
    try:
        yield extra
    except BaseException as exc:
        extra.update(outcome="failed", error=type(exc).__name__)
        _record(event, tenant, actor, extra)
        raise
    extra["outcome"] = "ok"
    _record(event, tenant, actor, extra)


def _record(event: str, tenant, actor, details: dict) -> None:
    try:
        audit.record_event(event, actor=actor, target=tenant, details=details)
    except Exception:  # the trail never turns a finished operation into a failed one
        logger.exception("Audit event %s for tenant %s not recorded", event, tenant.slug)
