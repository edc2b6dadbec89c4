"""A separate installation for tests that kill a lifecycle command (tests/killed_command.py):
its own main database (a file on SQLite, a database on the suite's PostgreSQL server) and
its own run tag, so its tenant databases and files are its own. The test process cannot
share its main database with a subprocess (on SQLite it lives in memory), so the world is
driven by commands and `manage.py shell -c` scripts only; each prints what it found as one
JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import environ
import pytest
from django.conf import settings

from tests.helpers import BASE_DIR, POSTGRES

TIMEOUT = 300


@dataclass
class World:
    env: dict
    tmp: Path
    tag: str

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *argv],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("manage.py", *args)

    def killed(self, step: str, *args: str) -> subprocess.CompletedProcess:
        """`manage.py args...` SIGKILLed at lifecycle step `step`; fails unless it got there."""
        result = self.run("-m", "tests.killed_command", step, *args)
        assert result.returncode == -9, (step, result.returncode, result.stdout, result.stderr)
        return result

    def shell(self, code: str):
        """Run `code` in `manage.py shell`; the JSON of its last line of output."""
        result = self.manage("shell", "-c", code)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


def _main_database_url(tmp: Path, tag: str) -> str:
    if not POSTGRES:
        return f"sqlite:///{tmp / 'db.sqlite3'}"
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = f"test_world_{tag}"
    cfg = environ.Env.db_url_config(url)
    with psycopg.connect(
        dbname="postgres",
        user=cfg.get("USER") or None,
        password=cfg.get("PASSWORD") or None,
        host=cfg.get("HOST") or None,
        port=cfg.get("PORT") or None,
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def _remove(world: World) -> None:
    """Drop every database and file of the world (its tag names them all)."""
    if POSTGRES:
        import psycopg

        cfg = environ.Env.db_url_config(world.env["DATABASE_URL"])
        with psycopg.connect(
            dbname="postgres",
            user=cfg.get("USER") or None,
            password=cfg.get("PASSWORD") or None,
            host=cfg.get("HOST") or None,
            port=cfg.get("PORT") or None,
            autocommit=True,
        ) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s OR datname = %s",
                    [f"test_tenant_{world.tag}_%", cfg["NAME"]],
                )
            ]
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for directory in ("test-tenants", "test-archives", "test-jwt-keys"):
        shutil.rmtree(settings.VAR_DIR / directory / world.tag, ignore_errors=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """A migrated installation of its own for the module's tests."""
    tmp = tmp_path_factory.mktemp("world")
    tag = f"{settings.TEST_RUN_TAG or 'main'}w{uuid.uuid4().hex[:6]}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("TENANT_DEFAULT", "REDIS_URL")},
        "TESTING": "1",
        "TEST_RUN_TAG": tag,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }
    if not POSTGRES:
        env["TENANT_DATABASE_URL"] = ""
    world = World(env=env, tmp=tmp, tag=tag)
    env["DATABASE_URL"] = _main_database_url(tmp, tag)
    try:
        result = world.manage("migrate", "--noinput", "--verbosity", "0")
        assert result.returncode == 0, result.stderr
        yield world
    finally:
        _remove(world)
