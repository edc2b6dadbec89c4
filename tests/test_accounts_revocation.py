"""Token revocation: the per-user mark, the durable deny list, and the cache in front."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts import tokens as token_module
from accounts.models import RevokedToken, User
from accounts.selectors import token_is_revoked
from accounts.services import token_revoke
from accounts.tokens import issue_tokens, issued_before
from tenants.context import use_tenant
from tests.factories import bearer_header
from tests.helpers import client_for, me, tokens_for, use_fresh_cache

pytestmark = pytest.mark.django_db(databases="__all__")


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_mark_is_compared_below_the_second(acme, make_user, monkeypatch):
    """Tokens issued earlier in the same second as the mark fail; later ones work."""
    ann = make_user(acme, "ann")
    second = int(datetime.now(tz=UTC).timestamp())
    with use_tenant(acme):
        monkeypatch.setattr(token_module.time, "time_ns", lambda: (second * 10**9) + 250_000_000)
        before = issue_tokens(ann, acme)["access"]
        User.objects.filter(pk=ann.pk).update(tokens_valid_after=_at(second + 0.5))
        monkeypatch.setattr(token_module.time, "time_ns", lambda: (second * 10**9) + 750_000_000)
        after = issue_tokens(ann, acme)["access"]
    assert me("acme.test", before).status_code == HTTPStatus.UNAUTHORIZED
    assert me("acme.test", after).status_code == HTTPStatus.OK


def test_a_token_without_the_precise_claim_counts_from_the_start_of_its_second(acme, make_user):
    ann = make_user(acme, "ann")
    with use_tenant(acme):
        token = AccessToken.for_user(ann)
    second = token["iat"]
    assert issued_before(token, _at(second + 0.1))
    assert not issued_before(token, _at(second))
    assert not issued_before(token, None)


def test_logout_is_recorded_in_the_tenants_database(acme, make_user):
    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    client_for("acme.test").post("/api/auth/logout", **bearer_header(pair["access"]))
    with use_tenant(acme):
        # The access token and the refresh token it was issued with.
        rows = list(RevokedToken.objects.all())
    assert len(rows) == 2
    assert all(row.expires_at > datetime.now(tz=UTC) for row in rows)
    assert not RevokedToken.objects.using("default").exists()


def test_flushing_the_cache_never_brings_a_revoked_token_back(acme, make_user, settings):
    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    client_for("acme.test").post("/api/auth/logout", **bearer_header(pair["access"]))
    use_fresh_cache(settings)  # an empty cache, as after a flush or a Redis restart
    response = me("acme.test", pair["access"])
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid token"


def test_a_cached_revocation_spares_the_database(acme):
    with use_tenant(acme):
        token_revoke(jti="some-jti", expires_at=timezone.now() + timedelta(minutes=5), user_id=None)
        with CaptureQueriesContext(connections[acme.alias]) as queries:
            assert token_is_revoked(jti="some-jti") is True
    assert len(queries) == 0


def test_a_not_revoked_answer_is_never_cached(acme):
    """A revocation that cannot reach the cache (Redis partitioned) could not overwrite it."""
    with use_tenant(acme):
        assert token_is_revoked(jti="other-jti") is False
        with CaptureQueriesContext(connections[acme.alias]) as queries:
            assert token_is_revoked(jti="other-jti") is False
    assert len(queries) == 1


def test_a_revocation_overrides_a_cached_not_revoked_answer(acme, make_user):
    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    assert me("acme.test", pair["access"]).status_code == HTTPStatus.OK  # caches "not revoked"
    client_for("acme.test").post("/api/auth/logout", **bearer_header(pair["access"]))
    assert me("acme.test", pair["access"]).status_code == HTTPStatus.UNAUTHORIZED


def test_a_revocation_in_one_tenant_does_not_touch_the_other(acme, globex, make_user):
    make_user(acme, "ann")
    make_user(globex, "ann")
    acme_pair = tokens_for("acme.test", "ann")
    globex_pair = tokens_for("globex.test", "ann")
    client_for("acme.test").post("/api/auth/logout", **bearer_header(acme_pair["access"]))
    assert me("globex.test", globex_pair["access"]).status_code == HTTPStatus.OK
    with use_tenant(globex):
        assert not RevokedToken.objects.exists()


def test_deactivation_outside_the_api_refuses_the_users_tokens(acme, make_user):
    ann = make_user(acme, "ann")
    access = tokens_for("acme.test", "ann")["access"]
    with use_tenant(acme):
        User.objects.filter(pk=ann.pk).update(is_active=False)
    assert me("acme.test", access).status_code == HTTPStatus.UNAUTHORIZED


def test_purge_removes_only_expired_deny_list_rows(acme):
    from datetime import timedelta

    from accounts.services import revoked_tokens_purge

    now = datetime.now(tz=UTC)
    with use_tenant(acme):
        RevokedToken.objects.create(jti="old", expires_at=now - timedelta(minutes=1))
        RevokedToken.objects.create(jti="live", expires_at=now + timedelta(minutes=1))
        assert revoked_tokens_purge() == 1
        assert list(RevokedToken.objects.values_list("jti", flat=True)) == ["live"]


def test_a_cache_outage_falls_back_to_the_database(acme, make_user, monkeypatch):
    from accounts import selectors

    make_user(acme, "ann")
    pair = tokens_for("acme.test", "ann")
    client_for("acme.test").post("/api/auth/logout", **bearer_header(pair["access"]))

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("cache down")

            return fail

    monkeypatch.setattr(selectors, "cache", Down())
    assert me("acme.test", pair["access"]).status_code == HTTPStatus.UNAUTHORIZED
