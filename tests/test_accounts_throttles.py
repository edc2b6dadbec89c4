"""Login throttles: per-IP rate and per-account lockout, both 429 with Retry-After."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest

from accounts import throttles
from config import ratelimit
from tests.factories import PASSWORD, WRONG_PASSWORD
from tests.helpers import client_for
from tests.helpers import login as tenant_login

pytestmark = pytest.mark.django_db(databases="__all__")


def login(username: str, password: str = PASSWORD, *, ip: str = "203.0.113.7", host="acme.test"):
    return tenant_login(host, username, password, REMOTE_ADDR=ip)


def test_per_ip_rate_limit_is_429_with_retry_after(acme, make_user, low_rate):
    make_user(acme, "ann")
    for _ in range(3):
        assert login("ann", WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    response = login("ann", PASSWORD)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response.json() == {
        "status": HTTPStatus.TOO_MANY_REQUESTS,
        "error": "Too Many Requests",
        "message": "Too many requests",
    }
    assert 1 <= int(response["Retry-After"]) <= 60


def test_per_ip_rate_limit_counts_every_attempt_on_every_account(acme, make_user, low_rate):
    make_user(acme, "ann")
    make_user(acme, "bob")
    assert login("ann").status_code == HTTPStatus.OK
    assert login("bob").status_code == HTTPStatus.OK
    assert login("nobody", WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    assert login("bob").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_per_ip_rate_limit_leaves_other_addresses_alone(acme, make_user, low_rate):
    make_user(acme, "ann")
    for _ in range(4):
        login("ann", WRONG_PASSWORD, ip="203.0.113.7")
    assert login("ann", ip="198.51.100.9").status_code == HTTPStatus.OK


def test_per_ip_rate_limit_resets_in_the_next_minute(acme, make_user, low_rate, monkeypatch):
    make_user(acme, "ann")
    start = time.time()
    monkeypatch.setattr(ratelimit, "_now", lambda: start)
    for _ in range(4):
        login("ann", WRONG_PASSWORD)
    assert login("ann").status_code == HTTPStatus.TOO_MANY_REQUESTS
    monkeypatch.setattr(ratelimit, "_now", lambda: start + 61)
    assert login("ann").status_code == HTTPStatus.OK


def test_account_locks_after_the_threshold_even_for_the_right_password(
    acme, make_user, low_lockout
):
    make_user(acme, "ann")
    for _ in range(3):
        assert login("ann", WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    response = login("ann", PASSWORD, ip="198.51.100.9")  # another address: still locked
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response.json()["message"] == "Too many requests"
    assert 890 <= int(response["Retry-After"]) <= 900


def test_lockout_of_one_account_leaves_others_alone(acme, make_user, low_lockout):
    make_user(acme, "ann")
    make_user(acme, "bob")
    for _ in range(3):
        login("ann", WRONG_PASSWORD)
    assert login("bob").status_code == HTTPStatus.OK


def test_lockout_is_per_tenant(acme, globex, make_user, low_lockout):
    make_user(acme, "ann")
    make_user(globex, "ann")
    for _ in range(3):
        login("ann", WRONG_PASSWORD)
    assert login("ann", host="globex.test").status_code == HTTPStatus.OK


def test_unknown_accounts_lock_the_same_way(acme, low_lockout):
    for _ in range(3):
        assert login("nobody", WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    assert login("nobody", WRONG_PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_lockout_expires_by_itself(acme, make_user, low_lockout, monkeypatch):
    make_user(acme, "ann")
    start = time.time()
    monkeypatch.setattr(throttles, "_now", lambda: start)
    for _ in range(3):
        login("ann", WRONG_PASSWORD)
    assert login("ann").status_code == HTTPStatus.TOO_MANY_REQUESTS
    monkeypatch.setattr(throttles, "_now", lambda: start + 600)
    response = login("ann")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 299 <= int(response["Retry-After"]) <= 300
    monkeypatch.setattr(throttles, "_now", lambda: start + 901)
    assert login("ann").status_code == HTTPStatus.OK


def test_a_successful_login_clears_earlier_failures(acme, make_user, low_lockout):
    make_user(acme, "ann")
    login("ann", WRONG_PASSWORD)
    login("ann", WRONG_PASSWORD)
    assert login("ann").status_code == HTTPStatus.OK
    login("ann", WRONG_PASSWORD)
    login("ann", WRONG_PASSWORD)
    assert login("ann").status_code == HTTPStatus.OK


def test_a_successful_login_with_no_failures_counted_clears_nothing(
    acme, make_user, low_lockout, monkeypatch
):
    ann = make_user(acme, "ann")
    cleared = []
    monkeypatch.setattr(throttles, "reset_login_failures", lambda **kw: cleared.append(kw))
    assert login("ann").status_code == HTTPStatus.OK
    assert cleared == []
    login("ann", WRONG_PASSWORD)
    assert login("ann").status_code == HTTPStatus.OK
    assert cleared == [{"scope": "acme", "identifier": f"user:{ann.pk}"}]


def test_a_cache_outage_during_the_lockout_check_still_clears_failures_after_a_login(
    acme, make_user, low_lockout, monkeypatch
):
    ann = make_user(acme, "ann")
    login("ann", WRONG_PASSWORD)
    real_state = throttles._lock_state

    def unavailable(**kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(throttles, "_lock_state", unavailable)
    assert login("ann").status_code == HTTPStatus.OK
    monkeypatch.setattr(throttles, "_lock_state", real_state)
    assert throttles._lock_state(scope="acme", identifier=f"user:{ann.pk}") == (0, None)


def test_the_lockout_check_reads_the_cache_once(acme, low_lockout, monkeypatch):
    class CountingCache:
        def __init__(self, real):
            self.real, self.reads = real, 0

        def __getattr__(self, name):
            if name in ("get", "get_many"):
                self.reads += 1
            return getattr(self.real, name)

    throttles.record_login_failure(scope="acme", identifier="ann")
    counting = CountingCache(throttles.cache)
    monkeypatch.setattr(throttles, "cache", counting)
    assert throttles.check_lockout(scope="acme", identifier="ann") is True
    assert counting.reads == 1


def test_lockout_uses_the_default_settings(acme, make_user, settings):
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 1000
    assert settings.LOGIN_LOCKOUT_THRESHOLD == 10
    assert settings.LOGIN_LOCKOUT_WINDOW == 900
    make_user(acme, "ann")
    for _ in range(9):
        login("ann", WRONG_PASSWORD)
    assert login("ann", WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED  # the 10th failure
    assert login("ann").status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_platform_login_is_throttled_too(acme, low_rate):
    for _ in range(3):
        client_for("acme.test").post(
            "/api/platform/auth/login",
            {"username_or_email": "root", "password": WRONG_PASSWORD},
            format="json",
        )
    response = client_for("acme.test").post(
        "/api/platform/auth/login",
        {"username_or_email": "root", "password": WRONG_PASSWORD},
        format="json",
    )
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Retry-After" in response


def test_count_hit_counts_in_a_window_that_expires_by_itself():
    """On Redis one pipelined round trip (INCR + EXPIRE NX), elsewhere add-then-incr; both
    count 1, 2, 3 in a window and give the bucket a time to live that later hits do not
    extend."""
    from django.core.cache import cache

    key = f"test:count-hit:{time.time_ns()}"
    assert [ratelimit.count_hit(key, window=60)[0] for _ in range(3)] == [1, 2, 3]
    bucket = f"{key}:{int(time.time() // 60)}"
    if hasattr(cache, "count_hit"):
        client = cache._cache.get_client(write=False)
        full_key = cache.make_and_validate_key(bucket)
        ttl = client.ttl(full_key)
        assert 0 < ttl <= 61
        ratelimit.count_hit(key, window=60)
        assert client.ttl(full_key) <= ttl  # not pushed back by the fourth hit
    assert cache.get(bucket) == 4 if hasattr(cache, "count_hit") else cache.get(bucket) == 3
