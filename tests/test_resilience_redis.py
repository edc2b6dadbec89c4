"""Redis down: the HTTP API keeps serving, a revoked token never comes back to life, no 500
and no long hang, and everything recovers by itself when Redis returns (README, Failure
policy).

Each test runs its own redis-server on a free port and points the cache and the channel
layer at it, so stopping it touches nothing else. Killing the server is a crash (connections
refused at once); SIGSTOP is a partition (connections hang until the 1 s socket timeout) that
keeps the server's data, so stale cache entries are still there when it comes back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from http import HTTPStatus

import pytest
import redis
from django.conf import settings as django_settings

from config import cache as config_cache
from tests.factories import PASSWORD
from tests.helpers import client_for, free_port, me, needs_component
from tests.helpers import login as tenant_login

pytestmark = [
    pytest.mark.django_db(databases="__all__"),
    needs_component(
        "redis-server",
        available=shutil.which("redis-server") is not None,
        install="apt-get install redis-server; .ci/run installs it",
    ),
]

SLOW = 1.6  # seconds; one socket timeout at most, whatever the request does with the cache


class RedisServer:
    """A test-owned redis-server: start, crash (kill), partition (SIGSTOP) and heal."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    if server.process is not None:
        server.resume()
        server.kill()


@pytest.fixture
def on_redis(settings, redis_server, monkeypatch):
    """The cache and the channel layer on the test's own Redis, configured as production is
    (config/settings.py with REDIS_URL set); the cache's circuit retries after 0.3 s."""
    monkeypatch.setattr(config_cache, "RETRY_AFTER", 0.3)
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.CircuitBreakingRedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_server.url], "capacity": 1000, "expiry": 30},
        }
    }
    settings.TENANT_CACHE_TTL = 0  # every request consults the shared cache
    return redis_server


@pytest.fixture
def alice(acme, make_user):
    return make_user(acme, "alice", id=7101)


def login(username="alice", password=PASSWORD):
    return tenant_login("acme.test", username, password)


def timed(call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, **kwargs)
    elapsed = time.monotonic() - started
    assert elapsed < SLOW, f"{elapsed:.1f}s"
    return response


def logout(access: str):
    return client_for("acme.test").post(
        "/api/auth/logout", {}, format="json", HTTP_AUTHORIZATION=f"Bearer {access}"
    )


# --- the API keeps serving ----------------------------------------------------------------
@pytest.mark.parametrize("outage", ["crash", "partition"])
def test_http_api_keeps_serving_while_redis_is_down(outage, on_redis, alice):
    access = login().json()["access"]
    on_redis.kill() if outage == "crash" else on_redis.pause()
    fresh = timed(login)
    assert fresh.status_code == HTTPStatus.OK
    assert timed(me, "acme.test", access).status_code == HTTPStatus.OK
    auth = {"HTTP_AUTHORIZATION": f"Bearer {fresh.json()['access']}"}
    client = client_for("acme.test")
    created = timed(client.post, "/api/address-book", {"name": "Offline"}, format="json", **auth)
    assert created.status_code == HTTPStatus.CREATED
    listed = timed(client.get, "/api/address-book", **auth)
    assert [c["name"] for c in listed.json()["results"]] == ["Offline"]
    signup = timed(
        client.post,
        "/api/auth/signup",
        {"username": "bob", "email": "bob@acme.test", "password": PASSWORD},
        format="json",
    )
    assert signup.status_code == HTTPStatus.CREATED


def test_login_throttles_fail_open_while_redis_is_down(on_redis, alice, settings):
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 1
    on_redis.kill()
    assert [timed(login).status_code for _ in range(3)] == [
        HTTPStatus.OK,
        HTTPStatus.OK,
        HTTPStatus.OK,
    ]


# --- revoked tokens stay revoked ----------------------------------------------------------
def test_token_revoked_before_the_outage_stays_revoked(on_redis, alice):
    access = login().json()["access"]
    assert me("acme.test", access).status_code == HTTPStatus.OK
    assert logout(access).status_code == HTTPStatus.NO_CONTENT
    on_redis.kill()
    response = timed(me, "acme.test", access)
    assert (response.status_code, response.json()["message"]) == (
        HTTPStatus.UNAUTHORIZED,
        "Invalid token",
    )


@pytest.mark.parametrize("outage", ["crash", "partition"])
def test_token_revoked_during_the_outage_stays_revoked_after_it(outage, on_redis, alice):
    """The deny list falls back to the database while the cache errors, and a "not revoked"
    answer cached before the outage must not revive the token once Redis is back."""
    access = login().json()["access"]
    assert me("acme.test", access).status_code == HTTPStatus.OK  # "not revoked" is now cached
    if outage == "crash":
        on_redis.kill()
    else:
        on_redis.pause()
    assert timed(logout, access).status_code == HTTPStatus.NO_CONTENT
    assert timed(me, "acme.test", access).status_code == HTTPStatus.UNAUTHORIZED
    if outage == "crash":
        on_redis.start()
    else:
        on_redis.resume()
    time.sleep(0.4)  # the cache's circuit retries
    response = me("acme.test", access)
    assert (response.status_code, response.json()["message"]) == (
        HTTPStatus.UNAUTHORIZED,
        "Invalid token",
    )


def test_password_change_during_the_outage_refuses_old_tokens(on_redis, alice):
    access = login().json()["access"]
    on_redis.kill()
    changed = timed(
        client_for("acme.test").post,
        "/api/auth/password",
        {"old_password": PASSWORD, "new_password": "Another-Secret-9"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {access}",
    )
    assert changed.status_code == HTTPStatus.OK
    assert timed(me, "acme.test", access).status_code == HTTPStatus.UNAUTHORIZED


# --- readiness and recovery ---------------------------------------------------------------
def test_ready_names_redis_while_down_and_recovers_by_itself(on_redis, alice, settings):
    ready = client_for("any.test").get("/ready")
    assert ready.status_code == HTTPStatus.OK
    on_redis.kill()
    down = timed(client_for("any.test").get, "/ready")
    assert down.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert down.json()["checks"]["cache"] == "unavailable"
    assert down.json()["checks"]["channel_layer"] == "unavailable"
    assert down.json()["checks"]["database"] == "ok"
    on_redis.start()
    time.sleep(0.4)  # the cache's circuit retries
    assert client_for("any.test").get("/ready").status_code == HTTPStatus.OK
    # The throttles count again at once: the rate limit applies after the outage.
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 1
    assert [login().status_code for _ in range(2)] == [HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS]


def test_logging_never_waits_for_redis(on_redis, acme):
    """Log records go to a bounded buffer; a request that logs is not slowed by the outage."""
    import logging

    from tenants.context import use_tenant

    on_redis.pause()
    started = time.monotonic()
    with use_tenant(acme):
        for i in range(200):
            logging.getLogger("addressbook.tests").warning("line %s during the outage", i)
    assert time.monotonic() - started < 0.5


def test_production_cache_settings_time_out_in_one_second():
    """What REDIS_URL configures (checked when the suite runs on Redis)."""
    if not django_settings.REDIS_URL:
        pytest.skip("REDIS_URL not set")
    cache = django_settings.CACHES["default"]
    assert cache["BACKEND"] == "config.cache.CircuitBreakingRedisCache"
    assert cache["OPTIONS"] == {"socket_connect_timeout": 1, "socket_timeout": 1}
