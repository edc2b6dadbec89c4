"""/ready's registry: apps add checks that decide readiness and reports that do not, from
their `AppConfig.ready()`, so the toolkit's view imports no app."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client

from config import views

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(monkeypatch):
    """The registry as the project fills it, restored after the test."""
    monkeypatch.setattr(views, "READY_CHECKS", dict(views.READY_CHECKS))
    monkeypatch.setattr(views, "READY_REPORTS", dict(views.READY_REPORTS))


def test_the_tenants_app_registers_its_report():
    assert list(views.READY_REPORTS) == ["tenants"]


def test_a_registered_check_that_fails_makes_ready_503_naming_it(registry):
    def broken() -> str:
        raise RuntimeError("down")

    views.register_readiness_check("search", broken)
    response = Client().get("/ready")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["checks"] == {
        "database": "ok",
        "cache": "ok",
        "channel_layer": "ok",
        "search": "unavailable",
    }


def test_a_registered_report_is_listed_without_deciding_readiness(registry):
    views.register_readiness_report("queue", lambda: {"backlog": 3})
    response = Client().get("/ready")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["queue"] == {"backlog": 3}
