"""Moving a tenant's database to another PostgreSQL server (`move_tenant`).

A move is a `TenantMove` row in the main database and these steps, each announced with
`lifecycle.step("move", <step>, slug)`:

1. `copy`: an empty database on the target, filled with `pg_dump | pg_restore` while the
   tenant is served from the source (`tenants.lifecycle.pgcopy`);
2. `catch_up`: chunks written to during the dump are copied again, still while serving;
3. `block_writes`: the tenant is marked `moving` (its writes answer 503 `Tenant is being
   moved`, its reads go on) and the source database refuses writes to every session, so a
   process whose tenant cache is stale cannot write to it either (its error is the same
   503, `tenants.middleware`);
4. `sync`: the chunks that still differ are copied, from a source nobody can change;
5. `verify`: rows and a checksum per table, equal on both sides, or the move rolls back;
6. `flip`: the tenant's server and database change in one transaction, the cache of every
   process is invalidated; the source is kept, read-only;
7. `drop_source`: at `move_finish` (or at once with `drop_source`).

Until `flip` the tenant is served from the source, from then on from the target: a move
killed anywhere leaves it served from exactly one database. Running `move_tenant` again
resumes (a copy that was cut short starts over; a cut-over goes on); `move_rollback`
drops the target and lets the source take writes again; an error before the flip rolls
back by itself.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import audit
from tenants import lifecycle
from tenants.db import aliases, servers
from tenants.db.exceptions import TenantDatabaseError
from tenants.lifecycle import pgcopy
from tenants.models import DatabaseServer, Tenant, TenantMove
from tenants.resolution import resolver
from tenants.services import _exclusive, choose_server, mask_url_credentials

logger = logging.getLogger(__name__)
OPERATION = "move"
# Catch-up rounds while serving: each copies what was written during the one before; the
# cut-over then copies what was written during the last.
CATCH_UP_ROUNDS = 3
# A round that leaves no more than this many chunks to copy is close enough.
CATCH_UP_CHUNKS = 2
# The figures of a move its audit event carries (an event holds a few details).
AUDITED_FIGURES = ("copy_seconds", "write_block_seconds", "cutover_rows")


def open_move(tenant: Tenant) -> TenantMove | None:
    """The tenant's move that is not over yet (copying, in its cut-over or switched)."""
    return (
        TenantMove.objects.select_related("source_server", "target_server")
        .filter(tenant=tenant, state__in=TenantMove.OPEN_STATES)
        .first()
    )


def move_tenant(
    tenant: Tenant, *, to: DatabaseServer, drop_source: bool = False, actor=None
) -> TenantMove:
    """Move `tenant`'s database to the server `to`, or resume its move there. Returns the
    move, `switched` (the source kept, read-only, until `move_finish`) or `finished` with
    `drop_source`. Bad input raises ValidationError and changes nothing; a failure before
    the flip rolls the move back and raises."""
    with _exclusive(f"tenant:{tenant.slug}"):
        tenant.refresh_from_db()
        move = open_move(tenant)
        if move is None:
            validate_move(tenant, to)
            move = _start(tenant, to, drop_source=drop_source, actor=actor)
        else:
            _check_resumable(move, to, drop_source=drop_source)
            if drop_source and not move.drop_source:
                move.drop_source = True
                move.save(update_fields=["drop_source"])
        with lifecycle.audited(
            audit.TENANT_MOVED,
            tenant,
            actor=actor,
            details={"from": move.source_server.name, "to": move.target_server.name},
        ) as details:
            _run(move)
            tenant.refresh_from_db()
            details["state"] = move.state
            details.update({k: move.details[k] for k in AUDITED_FIGURES if k in move.details})
        return move


def move_finish(tenant: Tenant, *, actor=None) -> TenantMove:
    """Drop the source database of the tenant's switched move; the move is `finished`."""
    with _exclusive(f"tenant:{tenant.slug}"):
        tenant.refresh_from_db()
        move = open_move(tenant)
        if move is None:
            raise ValidationError({"move": [f"Tenant '{tenant.slug}' has no move to finish."]})
        if move.state != TenantMove.State.SWITCHED:
            raise ValidationError(
                {
                    "move": [
                        f"The move of '{tenant.slug}' to '{move.target_server.name}' has not "
                        f"switched yet ({move.state}): run move_tenant {tenant.slug} --to "
                        f"{move.target_server.name} to complete it, or --rollback. "
                        "Nothing was changed."
                    ]
                }
            )
        with lifecycle.audited(
            audit.TENANT_MOVED,
            tenant,
            actor=actor,
            details={"from": move.source_server.name, "to": move.target_server.name},
        ) as details:
            _drop_source(move)
            details["state"] = move.state
        return move


def move_rollback(tenant: Tenant, *, actor=None) -> TenantMove:
    """Abandon the tenant's move that has not switched: the target database is dropped,
    the source takes writes again. A switched move cannot be rolled back (the target has
    taken writes since); move the tenant back instead."""
    with _exclusive(f"tenant:{tenant.slug}"):
        tenant.refresh_from_db()
        move = open_move(tenant)
        if move is None:
            raise ValidationError({"move": [f"Tenant '{tenant.slug}' has no move to roll back."]})
        if move.state == TenantMove.State.SWITCHED:
            raise ValidationError(
                {
                    "move": [
                        f"'{tenant.slug}' is served from '{move.target_server.name}' already; "
                        f"finish the move (--finish) or move it back. Nothing was changed."
                    ]
                }
            )
        with lifecycle.audited(
            audit.TENANT_MOVED,
            tenant,
            actor=actor,
            details={"from": move.source_server.name, "to": move.target_server.name},
        ) as details:
            _roll_back(move)
            details["state"] = move.state
        return move


# --- validation ---------------------------------------------------------------------------
def validate_move(tenant: Tenant, to: DatabaseServer) -> None:
    """Everything checked before anything changes; ValidationError with a clear message."""
    if tenant.status != Tenant.Status.ACTIVE:
        raise ValidationError(
            {"slug": [f"Only an active tenant can be moved; '{tenant.slug}' is {tenant.status}."]}
        )
    if tenant.database_url or tenant.server_id is None:
        raise ValidationError(
            {"slug": [f"'{tenant.slug}' has a database URL of its own; only a tenant on a "
                      "registered database server can be moved."]}
        )  # fmt: skip
    if tenant.server_id == to.pk:
        raise ValidationError(
            {"server": [f"Tenant '{tenant.slug}' is on database server '{to.name}' already."]}
        )
    choose_server(to.name)  # accepting and not full, else ValidationError on `server`
    try:
        source = _source_settings_of(tenant)
        target = aliases.settings_of_server(to, admin=True)
    except TenantDatabaseError as exc:
        raise ValidationError({"server": [str(exc)]}) from exc
    if not (aliases.is_postgresql(source) and aliases.is_postgresql(target)):
        raise ValidationError(
            {
                "server": [
                    "Moving a tenant needs PostgreSQL database servers (pg_dump and "
                    "pg_restore); an SQLite tenant file can be copied by hand while the "
                    "tenant is suspended."
                ]
            }
        )
    target["NAME"] = aliases.database_name_for(tenant.slug, server=to)
    try:
        servers.check_server(target)
        if not servers.database_exists(source):
            raise ValidationError({"slug": [f"Database {source['NAME']} does not exist."]})
        if servers.database_exists(target):
            holds = "holds data" if servers.database_has_data(target) else "exists"
            raise ValidationError(
                {
                    "server": [
                        f"Database {target['NAME']} on server '{to.name}' {holds} already; "
                        "remove it first. Nothing was changed."
                    ]
                }
            )
        pgcopy.tools_for(source, target)
    except TenantDatabaseError as exc:
        raise ValidationError({"server": [str(exc)]}) from exc


def _check_resumable(move: TenantMove, to: DatabaseServer, *, drop_source: bool) -> None:
    slug, target = move.tenant.slug, move.target_server.name
    if move.state == TenantMove.State.SWITCHED:
        if move.target_server_id != to.pk or not (move.drop_source or drop_source):
            raise ValidationError(
                {
                    "server": [
                        f"'{slug}' was moved to '{target}'; its source database is kept "
                        f"until move_tenant {slug} --finish, which comes before another move."
                    ]
                }
            )
        return
    if move.target_server_id != to.pk:
        raise ValidationError(
            {
                "server": [
                    f"A move of '{slug}' to '{target}' is under way ({move.state}); run it "
                    "again to complete it, or roll it back (--rollback). Nothing was changed."
                ]
            }
        )


# --- the steps ----------------------------------------------------------------------------
def _start(tenant: Tenant, to: DatabaseServer, *, drop_source: bool, actor) -> TenantMove:
    return TenantMove.objects.create(
        tenant=tenant,
        source_server=tenant.server,
        source_database=tenant.database_name,
        target_server=to,
        target_database=aliases.database_name_for(tenant.slug, server=to),
        drop_source=drop_source,
        started_by=getattr(actor, "username", "") or "",
    )


def _run(move: TenantMove) -> None:
    slug = move.tenant.slug
    try:
        target_hashes = None  # read again in full by a resumed cut-over
        resumed_cutover = move.state == TenantMove.State.CUTOVER
        if move.state == TenantMove.State.COPYING:
            lifecycle.step(OPERATION, "copy", slug)
            _copy(move)
            lifecycle.step(OPERATION, "catch_up", slug)
            target_hashes = _catch_up(move)
            lifecycle.step(OPERATION, "block_writes", slug)
            _block_writes(move)
        if move.state == TenantMove.State.CUTOVER:
            if resumed_cutover:  # killed after the block, maybe before the source's
                _block_writes(move)
            lifecycle.step(OPERATION, "sync", slug)
            result = _timed(
                move, "sync_seconds", pgcopy.sync, *_both(move), target_hashes=target_hashes
            )
            lifecycle.step(OPERATION, "verify", slug)
            _verify(move, result)
            lifecycle.step(OPERATION, "flip", slug)
            _flip(move)
    except BaseException as exc:
        if move.state in (TenantMove.State.COPYING, TenantMove.State.CUTOVER):
            _fail(move, exc)
        raise
    if move.state == TenantMove.State.SWITCHED and move.drop_source:
        _drop_source(move)


def _both(move: TenantMove) -> tuple[dict[str, Any], dict[str, Any]]:
    return _source_settings(move), _target_settings(move)


def _source_settings_of(tenant: Tenant) -> dict[str, Any]:
    return aliases.tenant_database_settings(tenant, admin=True)


def _source_settings(move: TenantMove) -> dict[str, Any]:
    cfg = aliases.settings_of_server(move.source_server, admin=True)
    cfg["NAME"] = move.source_database
    return cfg


def _target_settings(move: TenantMove, *, admin: bool = True) -> dict[str, Any]:
    cfg = aliases.settings_of_server(move.target_server, admin=admin)
    cfg["NAME"] = move.target_database
    return cfg


def _timed(move: TenantMove, key: str, function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    move.details[key] = round(time.monotonic() - started, 3)
    move.save(update_fields=["details"])
    return result


def _copy(move: TenantMove) -> None:
    """A new database on the target, restored from a dump of the source. A copy cut short
    before (this move's own database: it did not exist when the move began) starts over."""
    source, target = _both(move)
    if servers.database_exists(target):
        _guard_not_served_from(move, move.target_server, move.target_database)
        servers.drop_database(target)
    servers.create_database(target, template={"NAME": "template0"})
    app_user = _target_settings(move, admin=False).get("USER") or ""
    role = app_user if app_user and app_user != target.get("USER") else ""
    copied = _timed(move, "copy_seconds", pgcopy.dump_restore, source, target, role=role)
    move.details.update(copied)
    move.save(update_fields=["details"])


def _catch_up(move: TenantMove) -> dict[str, pgcopy.TableHash]:
    """Sync rounds while the tenant is served; returns the target's hashes after the last
    (the cut-over then reads only the source in full)."""
    started = time.monotonic()
    rounds = []
    for _ in range(CATCH_UP_ROUNDS):
        result = pgcopy.sync(*_both(move))
        rounds.append(result.chunks_copied)
        if result.chunks_copied <= CATCH_UP_CHUNKS:
            break
    move.details.update(
        catch_up_seconds=round(time.monotonic() - started, 3), catch_up_chunks=rounds
    )
    move.save(update_fields=["details"])
    return result.target


def _block_writes(move: TenantMove) -> None:
    """The tenant's writes answer 503 from now on (its cached row says `moving` in every
    process within TENANT_CACHE_TTL seconds), and its source database refuses them at once
    to every session, whatever the caches still say."""
    now = timezone.now()
    with transaction.atomic(using="default"):
        Tenant.objects.filter(pk=move.tenant_id).update(moving=True, updated_at=now)
        if move.state != TenantMove.State.CUTOVER:
            move.state = TenantMove.State.CUTOVER
            move.cutover_at = now
            move.save(update_fields=["state", "cutover_at"])
    resolver.invalidate()
    move.details["sessions_ended"] = pgcopy.refuse_writes(_source_settings(move))
    move.save(update_fields=["details"])


def _verify(move: TenantMove, result: pgcopy.SyncResult) -> None:
    differing = result.differences()
    move.details.update(
        cutover_chunks=result.chunks_copied,
        cutover_rows=result.rows_copied,
        tables=result.summary(),
    )
    move.save(update_fields=["details"])
    if differing:
        names = ", ".join(name.replace('"', "") for name in differing)
        raise pgcopy.CopyError(f"The copy differs from the source in: {names}.")


def _flip(move: TenantMove) -> None:
    tenant = Tenant.objects.select_related("server").get(pk=move.tenant_id)
    old_alias = tenant.alias
    now = timezone.now()
    with transaction.atomic(using="default"):
        Tenant.objects.filter(pk=tenant.pk).update(
            server=move.target_server,
            database_name=move.target_database,
            moving=False,
            updated_at=now,
        )
        move.state = TenantMove.State.SWITCHED
        move.switched_at = now
        move.details["write_block_seconds"] = round((now - move.cutover_at).total_seconds(), 3)
        move.save(update_fields=["state", "switched_at", "details"])
    resolver.invalidate()
    aliases.unregister_alias(old_alias)
    move.tenant.refresh_from_db()
    logger.info(
        "Tenant %s moved to server %s (writes refused for %.1f s)",
        tenant.slug,
        move.target_server.name,
        move.details["write_block_seconds"],
    )


def _drop_source(move: TenantMove) -> None:
    lifecycle.step(OPERATION, "drop_source", move.tenant.slug)
    # Every process sees the flip within TENANT_CACHE_TTL seconds; until then one may still
    # read from the source (or find its write refused), never from a database that is gone.
    seen_by = move.switched_at + timedelta(seconds=settings.TENANT_CACHE_TTL + 1)
    remaining = (seen_by - timezone.now()).total_seconds()
    if remaining > 0:
        time.sleep(remaining)
    source = _source_settings(move)
    _guard_not_served_from(move, move.source_server, move.source_database)
    servers.drop_database(source)
    move.state = TenantMove.State.FINISHED
    move.ended_at = timezone.now()
    move.save(update_fields=["state", "ended_at"])
    logger.warning(
        "Tenant %s: source database %s on server %s dropped after its move",
        move.tenant.slug,
        move.source_database,
        move.source_server.name,
    )


def _roll_back(move: TenantMove) -> None:
    lifecycle.step(OPERATION, "rollback", move.tenant.slug)
    target = _target_settings(move)
    _guard_not_served_from(move, move.target_server, move.target_database)
    servers.drop_database(target)
    if move.state == TenantMove.State.CUTOVER:
        pgcopy.allow_writes(_source_settings(move))
    with transaction.atomic(using="default"):
        Tenant.objects.filter(pk=move.tenant_id).update(moving=False, updated_at=timezone.now())
        move.state = TenantMove.State.ROLLED_BACK
        move.ended_at = timezone.now()
        move.save(update_fields=["state", "ended_at", "last_error"])
    resolver.invalidate()


def _fail(move: TenantMove, exc: BaseException) -> None:
    """Roll back a move that failed before its flip, keeping the reason."""
    move.last_error = mask_url_credentials(f"{type(exc).__name__}: {exc}")[:2000]
    logger.error("Move of tenant %s failed, rolling back: %s", move.tenant.slug, move.last_error)
    try:
        _roll_back(move)
    except Exception:
        logger.exception("Rollback of the move of %s failed; run --rollback", move.tenant.slug)
        TenantMove.objects.filter(pk=move.pk).update(last_error=move.last_error)


def _guard_not_served_from(move: TenantMove, server: DatabaseServer, name: str) -> None:
    """Never drop the database the tenant is served from (a belt to the states' braces)."""
    tenant = Tenant.objects.get(pk=move.tenant_id)
    if tenant.server_id == server.pk and tenant.database_name == name:
        raise TenantDatabaseError(
            f"Database {name} on server '{server.name}' serves tenant '{tenant.slug}'; "
            "it is not dropped."
        )
