"""Moving a tenant between database servers (`move_tenant`, tenants.lifecycle.move): the
copy while it is served, the cut-over that refuses its writes with 503 `Tenant is being
moved` while reads go on, the verification, the flip, the source kept until --finish or
--drop-source, bad input, and a command killed at every step, resumed or rolled back.

On PostgreSQL the target is the session's second server (tests/conftest.py,
`second_database_server`): a cluster of its own, or behind its own pooler on the pooler
leg. On SQLite a move is refused with a message saying it needs PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from http import HTTPStatus

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError
from django.db import connections

from accounts import audit
from accounts.models import AuditEvent
from addressbook.models import Contact
from tenants import lifecycle
from tenants.context import use_tenant
from tenants.db import aliases, breaker, servers
from tenants.db.servers import postgresql
from tenants.lifecycle import move as moves
from tenants.lifecycle import pgcopy
from tenants.models import DatabaseServer, Tenant, TenantMove
from tenants.resolution import resolver
from tenants.services import provision_tenant, tenant_suspend
from tests.factories import bearer_for, create_contact, create_user
from tests.helpers import BASE_DIR, POSTGRES, SECOND_SERVER, client_for, run_command

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
postgres_only = pytest.mark.skipif(
    not POSTGRES, reason="PostgreSQL leg: a move copies with pg_dump between servers"
)
SLUG = "mover"
HOST = f"{SLUG}.test"
MOVED = {
    "status": HTTPStatus.SERVICE_UNAVAILABLE,
    "error": "Service Unavailable",
    "message": "Tenant is being moved",
}


# Processes see a flip within TENANT_CACHE_TTL seconds: the source is dropped only then.
CACHE_TTL = 0.5


@pytest.fixture(autouse=True)
def _short_cache_ttl(settings):
    settings.TENANT_CACHE_TTL = CACHE_TTL


def database_on(server: DatabaseServer | None, name: str) -> dict:
    cfg = aliases.settings_of_server(server, admin=True)
    cfg["NAME"] = name
    return cfg


def names_in(server: DatabaseServer | None, name: str) -> list[str] | None:
    """Contact names in database `name` of `server`, read directly; None when absent."""
    cfg = database_on(server, name)
    if not servers.database_exists(cfg):
        return None
    with psycopg.connect(**postgresql._psycopg_params(cfg, dbname=name)) as conn:
        return sorted(row[0] for row in conn.execute("SELECT name FROM addressbook_contact"))


@pytest.fixture
def second(second_server) -> DatabaseServer:
    return second_server


@pytest.fixture
def mover(second, tenant_databases):
    """A tenant on the default server with a user and five contacts; its databases on both
    servers are dropped afterwards, wherever the move left them."""
    tenant = provision_tenant(slug=SLUG, name="Mover", domains=[HOST], server="default")
    user = create_user(tenant, "mia")
    for index in range(5):
        create_contact(tenant, f"contact {index}")
    tenant.user = user
    yield tenant
    connections.close_all()
    for server in (None, DatabaseServer.objects.filter(name=SECOND_SERVER).first() or second):
        alias = aliases.alias_for(SLUG, server.name if server else aliases.DEFAULT_SERVER)
        aliases.unregister_alias(alias)
        cfg = database_on(server, aliases.database_name_for(SLUG, server=server))
        servers.drop_database(cfg)


def api(tenant: Tenant):
    """A client of the tenant's host with its user's token. First, what a server does at
    each request's edge (tenants.db.connections, which the test client leaves to the test):
    a connection the move's cut-over ended is found unusable and opened again."""
    for alias in list(connections.settings):
        conn = getattr(connections._connections, alias, None)
        if aliases.is_tenant_alias(alias) and conn is not None and not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
    client = client_for(HOST)
    client.credentials(**bearer_for(tenant.user, tenant))
    return client


def listed(tenant: Tenant) -> list[str]:
    response = api(tenant).get("/api/address-book?page_size=500")
    assert response.status_code == HTTPStatus.OK, response.content
    return sorted(row["name"] for row in response.json()["results"])


def contacts(n: int) -> list[str]:
    return sorted(f"contact {index}" for index in range(n))


# --- the move -----------------------------------------------------------------------------
@postgres_only
def test_a_moved_tenant_is_served_from_the_target_with_every_row(mover, second):
    move = moves.move_tenant(mover, to=second)

    mover.refresh_from_db()
    assert (mover.server, mover.moving) == (second, False)
    assert move.state == TenantMove.State.SWITCHED
    assert listed(mover) == contacts(5)
    assert names_in(second, mover.database_name) == contacts(5)
    # Verified per table: rows and a checksum on both sides.
    assert move.details["tables"]["public.addressbook_contact"]["rows"] == 5
    assert len(move.details["tables"]["public.accounts_user"]["checksum"]) == 32
    # The source is kept, read-only, until --finish.
    source = database_on(None, move.source_database)
    assert names_in(None, move.source_database) == contacts(5)
    assert pgcopy.refuses_writes(source)
    event = AuditEvent.objects.get(event=audit.TENANT_MOVED)
    assert event.target_label == "Mover"
    assert event.details["outcome"] == "ok"
    assert (event.details["from"], event.details["to"]) == ("default", SECOND_SERVER)


@postgres_only
def test_writes_after_the_flip_go_to_the_target_and_sequences_follow(mover, second):
    moves.move_tenant(mover, to=second)
    mover.refresh_from_db()

    response = api(mover).post("/api/address-book", {"name": "after"}, format="json")

    assert response.status_code == HTTPStatus.CREATED, response.content
    assert names_in(second, mover.database_name) == sorted([*contacts(5), "after"])
    assert "after" not in names_in(None, mover.database_name)


@postgres_only
def test_another_tenant_is_untouched_and_not_reachable(mover, second, acme):
    create_contact(acme, "acme only")
    moves.move_tenant(mover, to=second)
    mover.refresh_from_db()

    acme.refresh_from_db()
    assert acme.server.name == "default"
    assert "acme only" in names_in(None, acme.database_name)
    assert "acme only" not in listed(mover)
    assert names_in(second, aliases.database_name_for("acme", server=second)) is None
    # Mover's token is not accepted on acme's host.
    response = client_for("acme.test").get(
        "/api/address-book", **{"HTTP_AUTHORIZATION": api(mover)._credentials["HTTP_AUTHORIZATION"]}
    )
    assert response.status_code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)


@postgres_only
def test_what_changes_while_it_copies_is_caught_up_chunk_by_chunk(mover, second, monkeypatch):
    monkeypatch.setattr(pgcopy, "CHUNK_ROWS", 2)  # five contacts make three chunks
    for index in range(5, 12):
        create_contact(mover, f"contact {index}")
    reached = lifecycle.step

    def write_meanwhile(operation, name, slug):
        reached(operation, name, slug)
        with use_tenant(mover):
            if name == "catch_up":  # after the dump: changed, deleted and new rows
                Contact.objects.filter(name="contact 1").update(name="renamed 1")
                Contact.objects.filter(name="contact 7").delete()
                create_contact(mover, "during copy")
            if name == "block_writes":  # after the catch-up, before writes are refused
                create_contact(mover, "just before")

    monkeypatch.setattr(lifecycle, "step", write_meanwhile)
    move = moves.move_tenant(mover, to=second)

    expected = sorted(
        {*contacts(12), "renamed 1", "during copy", "just before"} - {"contact 1", "contact 7"}
    )
    mover.refresh_from_db()
    assert names_in(second, mover.database_name) == expected
    assert listed(mover) == expected
    assert move.details["cutover_chunks"] >= 1  # "just before" was copied at the cut-over
    assert move.details["tables"]["public.addressbook_contact"]["rows"] == len(expected)


@postgres_only
def test_writes_during_the_cut_over_answer_503_with_retry_after_and_reads_go_on(
    mover, second, monkeypatch
):
    seen = {}
    reached = lifecycle.step

    def during_cut_over(operation, name, slug):
        reached(operation, name, slug)
        if name != "sync":
            return
        client = api(mover)
        write = client.post("/api/address-book", {"name": "refused"}, format="json")
        seen["write"] = (write.status_code, write.json(), write.headers.get("Retry-After"))
        seen["read"] = (client.get("/api/address-book").status_code,)
        # A process whose cache still has the tenant as it was before the cut-over: the
        # source database itself refuses the write, with the same answer.
        stale = Tenant.objects.select_related("server").get(pk=mover.pk)
        stale.moving = False
        resolver._store(f"host:{HOST}", stale)
        write = client.post("/api/address-book", {"name": "refused too"}, format="json")
        seen["stale write"] = (write.status_code, write.json(), write.headers.get("Retry-After"))
        # Its connection lost without a word from the server (as when the cut-over ended
        # its session mid-request): the same answer, and no open circuit.
        resolver._store(f"host:{HOST}", stale)
        resolver._checked_at = time.monotonic()
        connections[stale.alias].ensure_connection()
        connections[stale.alias].connection.pgconn.finish()
        write = client.post("/api/address-book", {"name": "lost"}, format="json")
        seen["lost"] = (write.status_code, write.json(), breaker.circuit_open(stale.alias))

    monkeypatch.setattr(lifecycle, "step", during_cut_over)
    moves.move_tenant(mover, to=second)

    assert seen["write"] == (HTTPStatus.SERVICE_UNAVAILABLE, MOVED, "5")
    assert seen["read"] == (HTTPStatus.OK,)
    assert seen["stale write"] == (HTTPStatus.SERVICE_UNAVAILABLE, MOVED, "5")
    assert seen["lost"] == (HTTPStatus.SERVICE_UNAVAILABLE, MOVED, False)
    mover.refresh_from_db()
    assert listed(mover) == contacts(5)


@postgres_only
def test_a_process_that_missed_the_flip_writes_to_the_target_after_one_refusal(mover, second):
    before = Tenant.objects.select_related("server").get(pk=mover.pk)
    moves.move_tenant(mover, to=second)
    # This process's cache still has the tenant on the source, and will not look again
    # for TENANT_CACHE_TTL seconds.
    resolver._store(f"host:{HOST}", before)
    resolver._checked_at = time.monotonic()
    client = api(mover)

    refused = client.post("/api/address-book", {"name": "refused"}, format="json")
    taken = client.post("/api/address-book", {"name": "taken"}, format="json")

    assert (refused.status_code, refused.json()) == (HTTPStatus.SERVICE_UNAVAILABLE, MOVED)
    assert taken.status_code == HTTPStatus.CREATED, taken.content
    mover.refresh_from_db()
    assert names_in(second, mover.database_name) == sorted([*contacts(5), "taken"])
    assert names_in(None, before.database_name) == contacts(5)


@postgres_only
def test_finish_drops_the_source_and_drop_source_does_it_at_once(mover, second):
    moves.move_tenant(mover, to=second)
    with pytest.raises(ValidationError, match="--finish"):
        moves.move_tenant(mover, to=second)

    move = moves.move_finish(mover)

    assert move.state == TenantMove.State.FINISHED
    assert names_in(None, move.source_database) is None
    assert names_in(second, move.target_database) == contacts(5)
    with pytest.raises(ValidationError, match="no move to finish"):
        moves.move_finish(mover)
    # And back, dropping the source at once.
    mover.refresh_from_db()
    back = moves.move_tenant(mover, to=DatabaseServer.objects.get(name="default"), drop_source=True)
    assert back.state == TenantMove.State.FINISHED
    # Dropped once every process has had TENANT_CACHE_TTL seconds to see the flip.
    assert (back.ended_at - back.switched_at).total_seconds() >= CACHE_TTL
    assert names_in(second, back.source_database) is None
    mover.refresh_from_db()
    assert mover.server.name == "default"
    assert listed(mover) == contacts(5)


@postgres_only
def test_a_copy_that_differs_rolls_back_and_the_source_takes_writes_again(
    mover, second, monkeypatch
):
    monkeypatch.setattr(pgcopy.SyncResult, "differences", lambda self: ['"public"."x"'])

    with pytest.raises(pgcopy.CopyError, match="differs"):
        moves.move_tenant(mover, to=second)

    move = TenantMove.objects.get(tenant=mover)
    assert move.state == TenantMove.State.ROLLED_BACK
    assert "differs" in move.last_error
    mover.refresh_from_db()
    assert (mover.server.name, mover.moving) == ("default", False)
    assert names_in(second, move.target_database) is None
    response = api(mover).post("/api/address-book", {"name": "writable"}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    failed = AuditEvent.objects.get(event=audit.TENANT_MOVED)
    assert failed.details["outcome"] == "failed"


@postgres_only
def test_a_copy_that_fails_rolls_back_and_drops_only_the_new_target(mover, second, monkeypatch):
    monkeypatch.setattr(pgcopy, "tools_for", lambda source, target: ("false", "false"))

    with pytest.raises(pgcopy.CopyError, match="pg_restore failed"):
        moves.move_tenant(mover, to=second)

    move = TenantMove.objects.get(tenant=mover)
    assert move.state == TenantMove.State.ROLLED_BACK
    assert names_in(second, move.target_database) is None
    assert names_in(None, move.source_database) == contacts(5)
    mover.refresh_from_db()
    assert (mover.server.name, mover.moving) == ("default", False)


# --- bad input ----------------------------------------------------------------------------
def nothing_changed(tenant: Tenant, second: DatabaseServer) -> None:
    tenant.refresh_from_db()
    assert tenant.server.name == "default"
    assert not tenant.moving
    assert not TenantMove.objects.filter(tenant=tenant).exists()
    if POSTGRES:
        assert names_in(second, aliases.database_name_for(tenant.slug, server=second)) is None


@postgres_only
def test_a_move_to_the_server_it_is_on_is_refused(mover, second):
    with pytest.raises(ValidationError, match="is on database server 'default' already"):
        moves.move_tenant(mover, to=mover.server)
    nothing_changed(mover, second)


@postgres_only
@pytest.mark.parametrize("status", [DatabaseServer.Status.OFFLINE, DatabaseServer.Status.DRAINING])
def test_a_move_to_a_server_that_takes_no_tenant_is_refused(mover, second, status):
    second.status = status
    second.save()
    with pytest.raises(ValidationError, match=f"is {status}; it takes no new tenant"):
        moves.move_tenant(mover, to=second)
    nothing_changed(mover, second)


@postgres_only
def test_a_move_to_an_unknown_server_is_refused_by_the_command(mover, second):
    with pytest.raises(CommandError, match="Unknown database server 'nowhere'"):
        run_command("move_tenant", SLUG, "--to", "nowhere")
    nothing_changed(mover, second)


@postgres_only
def test_a_suspended_or_dropped_tenant_is_not_moved(mover, second):
    tenant_suspend(mover)
    with pytest.raises(ValidationError, match="'mover' is suspended"):
        moves.move_tenant(mover, to=second)
    Tenant.objects.filter(pk=mover.pk).update(status=Tenant.Status.DROPPED)
    mover.refresh_from_db()
    with pytest.raises(ValidationError, match="'mover' is dropped"):
        moves.move_tenant(mover, to=second)
    nothing_changed(mover, second)


@postgres_only
def test_a_target_database_that_holds_data_is_refused(mover, second):
    target = database_on(second, aliases.database_name_for(SLUG, server=second))
    servers.create_database(target)
    with psycopg.connect(**postgresql._psycopg_params(target, dbname=target["NAME"])) as conn:
        conn.execute("CREATE TABLE precious (id int)")
        conn.execute("INSERT INTO precious VALUES (1)")

    with pytest.raises(ValidationError, match="holds data already"):
        moves.move_tenant(mover, to=second)

    mover.refresh_from_db()
    assert mover.server.name == "default"
    assert not TenantMove.objects.exists()
    assert servers.database_has_data(target)  # untouched


@pytest.mark.skipif(POSTGRES, reason="SQLite leg")
def test_on_sqlite_a_move_says_it_needs_postgresql(second_server, tenant_factory):
    tenant = tenant_factory("sqlmover")
    with pytest.raises(ValidationError, match="needs PostgreSQL database servers"):
        moves.move_tenant(tenant, to=second_server)
    tenant.refresh_from_db()
    assert tenant.server.name == "default"
    assert not TenantMove.objects.exists()


# --- killed at each step ------------------------------------------------------------------
def killed_at(step: str, *args: str) -> int:
    """`move_tenant` in a process of its own, SIGKILLed at `move:<step>`; its exit code."""
    default = connections["default"].settings_dict
    url = "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
        **{k: default[k] or "" for k in ("USER", "HOST", "PORT", "NAME")}
    )
    env = {**os.environ, "DATABASE_URL": url, "TESTING": "1", "TENANT_CACHE_TTL": str(CACHE_TTL)}
    result = subprocess.run(
        [sys.executable, "-m", "tests.killed_command", f"move:{step}", "move_tenant", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -9, result.stderr[-3000:]
    return result.returncode


def served_from_one_database(tenant: Tenant, expected: list[str]) -> None:
    """The tenant's placement holds every row and answers; the other copy, if any, takes
    no write: the source is read-only once the cut-over began, the target is not placed."""
    tenant.refresh_from_db()
    resolver.invalidate()
    assert names_in(tenant.server if tenant.server.name != "default" else None,
                    tenant.database_name) == expected  # fmt: skip
    assert listed(tenant) == expected


STEPS = ["copy", "catch_up", "block_writes", "sync", "verify", "flip"]


@postgres_only
@pytest.mark.parametrize("step", STEPS)
def test_a_move_killed_at_each_step_leaves_one_database_and_a_rerun_finishes_it(
    mover, second, step
):
    killed_at(step, SLUG, "--to", SECOND_SERVER)
    move = TenantMove.objects.get(tenant=mover)
    mover.refresh_from_db()
    assert mover.server.name == "default"  # not flipped: the flip is the last step here
    assert move.state in (TenantMove.State.COPYING, TenantMove.State.CUTOVER)
    served_from_one_database(mover, contacts(5))
    if move.state == TenantMove.State.CUTOVER:
        assert mover.moving
        assert pgcopy.refuses_writes(database_on(None, move.source_database))

    out = run_command("move_tenant", SLUG, "--to", SECOND_SERVER)

    assert "moved from 'default' to 'second'" in out
    move.refresh_from_db()
    assert move.state == TenantMove.State.SWITCHED
    mover.refresh_from_db()
    assert (mover.server, mover.moving) == (second, False)
    served_from_one_database(mover, contacts(5))
    response = api(mover).post("/api/address-book", {"name": "resumed"}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content


@postgres_only
@pytest.mark.parametrize("step", ["copy", "sync"])
def test_a_killed_move_rolled_back_is_served_from_the_source_which_takes_writes(
    mover, second, step
):
    killed_at(step, SLUG, "--to", SECOND_SERVER)
    with pytest.raises(CommandError, match="has not switched yet"):
        run_command("move_tenant", SLUG, "--finish")
    with pytest.raises(CommandError, match="is under way"):
        run_command("move_tenant", SLUG, "--to", "default")

    out = run_command("move_tenant", SLUG, "--rollback")

    assert "rolled back" in out
    move = TenantMove.objects.get(tenant=mover)
    assert move.state == TenantMove.State.ROLLED_BACK
    assert names_in(second, move.target_database) is None
    mover.refresh_from_db()
    assert (mover.server.name, mover.moving) == ("default", False)
    response = api(mover).post("/api/address-book", {"name": "writable"}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    served_from_one_database(mover, sorted([*contacts(5), "writable"]))


@postgres_only
def test_a_move_killed_before_dropping_its_source_drops_it_when_run_again(mover, second):
    killed_at("drop_source", SLUG, "--to", SECOND_SERVER, "--drop-source")
    move = TenantMove.objects.get(tenant=mover)
    assert move.state == TenantMove.State.SWITCHED
    served_from_one_database(mover, contacts(5))
    assert names_in(None, move.source_database) == contacts(5)  # kept, read-only

    with pytest.raises(CommandError, match="served from 'second' already"):
        run_command("move_tenant", SLUG, "--rollback")
    run_command("move_tenant", SLUG, "--finish")

    move.refresh_from_db()
    assert move.state == TenantMove.State.FINISHED
    assert names_in(None, move.source_database) is None
    served_from_one_database(mover, contacts(5))
