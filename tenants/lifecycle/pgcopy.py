"""Copying one tenant database between PostgreSQL servers, and proving the copy equal.

- `dump_restore`: PostgreSQL's own tools, `pg_dump -Fc | pg_restore`, of the newest major
  version of the two servers (a pg_dump older than its server refuses to run), through
  each server's direct URL; the password goes in the environment, never on a command line.
- `sync`: makes the target equal to a consistent snapshot of the source by comparing the
  two chunk by chunk (`CHUNK_ROWS` rows of primary key range; per chunk its row count and
  the sum of a 64-bit hash of each row's text, which needs no sort and so no spill to
  disk, unlike an md5 of the rows in key order) and copying only the chunks that differ.
  Run while the tenant is served it catches up on what was written during the dump; run
  once writes are refused it is the short cut-over, and its hashes are the verification.
- `refuse_writes` / `allow_writes`: the source database's default transaction becomes
  read-only, and every session opened before is ended (a pooler opens new ones, which are
  read-only), so no process, whatever its cache says, writes to it any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tenants.db.aliases import direct_server_settings
from tenants.db.exceptions import TenantDatabaseError
from tenants.db.servers.base import quote_name
from tenants.db.servers.postgresql import _admin_connection, _psycopg_params

# Rows of primary key range per chunk: a writer touches one or two chunks at the end of a
# table, so the cut-over copies a few thousand rows however large the table is.
CHUNK_ROWS = 10_000
# How long an ended session may take to go (pg_terminate_backend's wait, milliseconds).
TERMINATE_WAIT_MS = 5_000
INTEGER_TYPES = ("int2", "int4", "int8")


class CopyError(TenantDatabaseError):
    """A copy step failed or the copy differs from its source."""


# --- connections and tools ----------------------------------------------------------------
def connect(cfg: dict[str, Any]) -> psycopg.Connection:
    """An autocommit connection to the database of `cfg`, through its server's direct URL."""
    direct = direct_server_settings(cfg)
    try:
        return psycopg.connect(**_psycopg_params(direct, dbname=cfg["NAME"]))
    except psycopg.OperationalError as exc:
        raise CopyError(f"Database {cfg['NAME']} cannot be opened.") from exc


def server_major(cfg: dict[str, Any]) -> int:
    with _admin_connection(cfg) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10_000


def tool(name: str, major: int) -> str:
    """The path of PostgreSQL program `name` of version `major` (Debian's layout), else of
    PATH's when there is none; CopyError when neither is there."""
    debian = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    if os.access(debian, os.X_OK):
        return str(debian)
    found = shutil.which(name)
    if found is None:
        raise CopyError(f"{name} of PostgreSQL {major} is not installed.")
    return found


def tools_for(source: dict[str, Any], target: dict[str, Any]) -> tuple[str, str]:
    """pg_dump and pg_restore of the newer of the two servers' major versions."""
    major = max(server_major(source), server_major(target))
    return tool("pg_dump", major), tool("pg_restore", major)


def _libpq_env(cfg: dict[str, Any]) -> dict[str, str]:
    """The environment that points libpq's programs at the server of `cfg` (directly)."""
    direct = direct_server_settings(cfg)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in (
        ("PGHOST", direct.get("HOST")),
        ("PGPORT", direct.get("PORT")),
        ("PGUSER", direct.get("USER")),
        ("PGPASSWORD", direct.get("PASSWORD")),
        ("PGCONNECT_TIMEOUT", str(direct.get("OPTIONS", {}).get("connect_timeout", 5))),
    ):
        if value:
            env[key] = str(value)
    return env


def dump_restore(
    source: dict[str, Any], target: dict[str, Any], *, role: str = ""
) -> dict[str, float]:
    """Copy the database of `source` into the existing, empty database of `target`:
    `pg_dump -Fc | pg_restore`, objects owned by `role` when given (the user the tenant's
    connections use on the target, when it is not the admin user). Returns bytes copied."""
    pg_dump, pg_restore = tools_for(source, target)
    restore_argv = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error"]
    if role:
        restore_argv.append(f"--role={role}")
    restore_argv.append(f"--dbname={target['NAME']}")
    # Fixed programs and options; the database names are the product's own, each given as
    # an option's value; credentials only in the environment.
    dump = subprocess.Popen(  # noqa: S603
        [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--dbname={source['NAME']}"],
        env=_libpq_env(source),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    counted = _CountingPipe(dump.stdout)
    restore = subprocess.Popen(  # noqa: S603
        restore_argv,
        env=_libpq_env(target),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    restore_errors: list[bytes] = []
    reader = threading.Thread(target=lambda: restore_errors.append(restore.stderr.read()))
    reader.start()
    try:
        counted.copy_to(restore.stdin)
    except BrokenPipeError:
        dump.kill()  # pg_restore stopped on an error (reported below): so does the dump
    finally:
        dump.stdout.close()
        with contextlib.suppress(BrokenPipeError):
            restore.stdin.close()
    dump_errors = dump.stderr.read()
    dump.wait()
    restore.wait()
    reader.join()
    if restore.returncode != 0:
        raise CopyError(f"pg_restore failed: {_last_line(b''.join(restore_errors))}")
    if dump.returncode != 0:
        raise CopyError(f"pg_dump failed: {_last_line(dump_errors)}")
    return {"dump_bytes": counted.total}


class _CountingPipe:
    def __init__(self, stream) -> None:
        self.stream, self.total = stream, 0

    def copy_to(self, out) -> None:
        while chunk := self.stream.read(1 << 20):
            self.total += len(chunk)
            out.write(chunk)


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


# --- refusing writes ----------------------------------------------------------------------
def refuse_writes(cfg: dict[str, Any]) -> int:
    """Make the database of `cfg` read-only for every session from now on, and end the
    sessions opened before (a transaction in flight is rolled back; a pooler reconnects,
    read-only). Returns the sessions ended."""
    name = quote_name(cfg["NAME"])
    with _admin_connection(cfg) as conn:
        conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        return _end_sessions(conn, cfg["NAME"])


def allow_writes(cfg: dict[str, Any]) -> int:
    """Undo `refuse_writes`: the sessions that started read-only are ended too."""
    name = quote_name(cfg["NAME"])
    with _admin_connection(cfg) as conn:
        conn.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
        return _end_sessions(conn, cfg["NAME"])


def _end_sessions(conn: psycopg.Connection, database: str) -> int:
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        [TERMINATE_WAIT_MS, database],
    ).fetchall()
    return len(rows)


def refuses_writes(cfg: dict[str, Any]) -> bool:
    """Whether new sessions of the database of `cfg` start read-only."""
    with connect(cfg) as conn:
        return conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"


# --- comparing and syncing ----------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    name: str  # schema-qualified, quoted
    key: str | None  # the quoted single-column integer primary key, else None
    columns: str  # names and types, in order: two sides with the same text match


@dataclass
class TableHash:
    """A table's chunks: chunk number -> (rows, sum of the rows' 64-bit text hashes). The
    rows' text holds the key, so the sum stands for the set of rows."""

    chunks: dict[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(count for count, _ in self.chunks.values())

    @property
    def checksum(self) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for number in sorted(self.chunks):
            count, total = self.chunks[number]
            digest.update(f"{number}:{count}:{total}\n".encode())
        return digest.hexdigest()


LAYOUT_SQL = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       (SELECT quote_ident(a.attname) FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1
           AND a.atttypid::regtype::text IN ('smallint', 'integer', 'bigint')),
       (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                          ', ' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
 ORDER BY 1
"""


def layout(conn: psycopg.Connection) -> list[Table]:
    return [Table(name, key, columns or "") for name, key, columns in conn.execute(LAYOUT_SQL)]


def chunk_range(number: int) -> tuple[int, int]:
    """The key range of chunk `number` (`key / CHUNK_ROWS`, which truncates toward 0)."""
    if number > 0:
        return number * CHUNK_ROWS, number * CHUNK_ROWS + CHUNK_ROWS - 1
    if number < 0:
        return number * CHUNK_ROWS - CHUNK_ROWS + 1, number * CHUNK_ROWS
    return -CHUNK_ROWS + 1, CHUNK_ROWS - 1


# Per chunk: rows, and the sum of hashtextextended() of each row's text (exact, numeric).
ROW_HASH_SUM = "count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text"


def hash_table(
    conn: psycopg.Connection, table: Table, only: Iterable[int] | None = None
) -> TableHash:
    """The chunks of `table` (only those numbered in `only`, when given)."""
    result = TableHash()
    if table.key is None:
        count, total = conn.execute(f"SELECT {ROW_HASH_SUM} FROM {table.name} t").fetchone()
        if count:
            result.chunks[0] = (int(count), total)
        return result
    sql = f"SELECT {table.key} / {CHUNK_ROWS}, {ROW_HASH_SUM} FROM {table.name} t"
    if only is None:
        rows = conn.execute(f"{sql} GROUP BY 1").fetchall()
    else:
        rows = []
        for number in only:
            low, high = chunk_range(number)
            rows += conn.execute(
                f"{sql} WHERE {table.key} BETWEEN %s AND %s GROUP BY 1", [low, high]
            ).fetchall()
    for number, count, total in rows:
        result.chunks[int(number)] = (int(count), total)
    return result


def hash_tables(conn: psycopg.Connection, tables: list[Table]) -> dict[str, TableHash]:
    # A table has a few hundred chunks at most, but the planner expects a group per row and
    # would sort every row (spilling to disk) rather than hash the groups.
    conn.execute("SET enable_sort = off")
    try:
        return {table.name: hash_table(conn, table) for table in tables}
    finally:
        conn.execute("RESET enable_sort")


@dataclass
class SyncResult:
    source: dict[str, TableHash]
    target: dict[str, TableHash]
    chunks_copied: int
    rows_copied: int

    def differences(self) -> list[str]:
        """Tables whose row count or checksum differs between the two sides."""
        return [
            name
            for name, theirs in self.source.items()
            if (theirs.rows, theirs.checksum)
            != (self.target[name].rows, self.target[name].checksum)
        ]

    def summary(self) -> dict[str, dict]:
        return {
            name.replace('"', ""): {"rows": table.rows, "checksum": table.checksum}
            for name, table in self.source.items()
        }


def sync(
    source_cfg: dict[str, Any],
    target_cfg: dict[str, Any],
    *,
    target_hashes: dict[str, TableHash] | None = None,
) -> SyncResult:
    """Make the target's tables equal to one snapshot of the source's: both sides are
    hashed (at the same time, one thread each), the chunks that differ are deleted on the
    target and copied again from the same snapshot, in one transaction on the target (so
    foreign keys, deferred as Django declares them, hold at its end), then the sequences
    follow. The target's hashes of the copied chunks are taken again afterwards, so the
    result compares the final contents of both sides.

    `target_hashes`, the target's hashes as the previous sync of this process left them,
    spares reading the target again: nothing but the move writes to it before the flip."""
    with connect(source_cfg) as source, connect(target_cfg) as target:
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with source.transaction():
            tables = layout(source)
            target_tables = layout(target)
            if [(t.name, t.columns) for t in tables] != [
                (t.name, t.columns) for t in target_tables
            ]:
                raise CopyError("The target's tables differ from the source's (a migration?).")
            if target_hashes is None:
                source_hashes, target_hashes = _hash_both(source, target, tables)
            else:
                source_hashes = hash_tables(source, tables)
                target_hashes = {
                    name: TableHash(dict(table.chunks)) for name, table in target_hashes.items()
                }
            changed = {
                table.name: sorted(
                    number
                    for number in source_hashes[table.name].chunks.keys()
                    | target_hashes[table.name].chunks.keys()
                    if source_hashes[table.name].chunks.get(number)
                    != target_hashes[table.name].chunks.get(number)
                )
                for table in tables
            }
            rows = 0
            with target.transaction():
                for table in tables:
                    _delete_chunks(target, table, changed[table.name])
                for table in tables:
                    rows += _copy_chunks(source, target, table, changed[table.name])
                _copy_sequences(source, target)
        for table in tables:
            if changed[table.name]:
                fresh = hash_table(target, table, changed[table.name])
                chunks = target_hashes[table.name].chunks
                for number in changed[table.name]:
                    chunks.pop(number, None)
                chunks.update(fresh.chunks)
    return SyncResult(
        source=source_hashes,
        target=target_hashes,
        chunks_copied=sum(len(numbers) for numbers in changed.values()),
        rows_copied=rows,
    )


def _hash_both(source, target, tables) -> tuple[dict[str, TableHash], dict[str, TableHash]]:
    found: dict[str, dict[str, TableHash]] = {}
    failures: list[BaseException] = []

    def hash_target() -> None:
        try:
            found["target"] = hash_tables(target, tables)
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    worker = threading.Thread(target=hash_target)
    worker.start()
    try:
        found["source"] = hash_tables(source, tables)
    finally:
        worker.join()
    if failures:
        raise failures[0]
    return found["source"], found["target"]


def _delete_chunks(target, table: Table, numbers: list[int]) -> None:
    if not numbers:
        return
    if table.key is None:
        target.execute(f"DELETE FROM {table.name}")
        return
    for number in numbers:
        low, high = chunk_range(number)
        target.execute(f"DELETE FROM {table.name} WHERE {table.key} BETWEEN %s AND %s", [low, high])


def _copy_chunks(source, target, table: Table, numbers: list[int]) -> int:
    """Copy the rows of chunks `numbers` of `table` from `source` to `target`; returns how
    many."""
    if not numbers:
        return 0
    selects = (
        [f"SELECT * FROM {table.name}"]
        if table.key is None
        else [
            f"SELECT * FROM {table.name} WHERE {table.key} BETWEEN {low} AND {high}"
            for low, high in map(chunk_range, numbers)
        ]
    )
    rows = 0
    for select in selects:
        writer = target.cursor()
        with (
            source.cursor().copy(f"COPY ({select}) TO STDOUT (FORMAT binary)") as out,
            writer.copy(f"COPY {table.name} FROM STDIN (FORMAT binary)") as into,
        ):
            for data in out:
                into.write(data)
        rows += max(writer.rowcount, 0)
    return rows


def _copy_sequences(source, target) -> None:
    names = [
        row[0]
        for row in source.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) "
            "FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
    ]
    for name in names:
        last_value, is_called = source.execute(
            f"SELECT last_value, is_called FROM {name}"
        ).fetchone()
        target.execute("SELECT setval(%s::regclass, %s, %s)", [name, last_value, is_called])
