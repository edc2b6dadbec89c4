"""The API against its own OpenAPI schema: schemathesis drives the in-process WSGI app on a
tenant's host with a valid tenant admin token, every default check on (no 5xx, status codes,
content types, headers and bodies as documented, negative data rejected, positive data
accepted, authentication enforced...), then a stateful phase that chains operations through
the schema's links. Fixed seed, bounded examples, so it is a regular CI test.

Excluded: platform operations that provision or suspend tenants (they would create real
databases or take the session tenants away); they are covered by tests/test_platform_api.py.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from accounts.models import User
from accounts.tokens import issue_tokens
from tenants.context import use_tenant
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

SEED = 20261124
EXAMPLES = 25
STATEFUL_STEPS = 8
# Schema-valid data the server may still refuse with a 400, by rules OpenAPI cannot state:
# DRF trims strings (whitespace-only is blank), password strength, unique usernames, repeated
# ordering fields, age_min above age_max. A 5xx or an undocumented status still fails.
FUZZ_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-path = "/api/logs"
checks.positive_data_acceptance.expected-statuses = ["410"]
"""


@pytest.fixture
def api_schema(keep_test_connections):
    config = SchemathesisConfig.from_str(FUZZ_CONFIG)
    app = get_wsgi_application()
    return schemathesis.openapi.from_wsgi("/api/schema/", app, config=config).exclude(
        method=["POST", "PATCH", "DELETE"], path_regex=r"^/api/platform/tenants"
    )


@pytest.fixture
def keep_test_connections():
    """As Django's test client does: the test's transaction must outlive each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def _fuzzed_secrets():
    """The fuzzer's made-up passwords are nobody's secrets (tests/leak_collector.py)."""
    with collector.fuzzed_input():
        yield


@pytest.fixture
def fuzz_settings(settings, keep_test_connections):
    # The fuzzer logs in many times a minute from one address; throttles are tested elsewhere.
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 0
    settings.RATE_LIMIT_PER_MINUTE = 0
    settings.LOGIN_LOCKOUT_THRESHOLD = 10**6


@pytest.fixture
def headers(acme, make_user, fuzz_settings, _fuzzed_secrets):
    """A fresh token per call: a fuzzed logout or password change must not end the run."""
    admin = make_user(acme, "fuzzadmin", role=User.Role.ADMIN)
    make_user(acme, "fuzzmember")

    def make() -> dict:
        with use_tenant(acme):
            access = issue_tokens(admin, acme)["access"]
        return {"Authorization": f"Bearer {access}", "Host": "acme.test"}

    return make


def auth_headers(case, valid: dict) -> dict:
    """The valid token, unless the case carries credentials of its own or left them out on
    purpose (a generated invalid or missing one, to check that it is refused)."""
    own = any(name.lower() == "authorization" for name in case.headers or {})
    negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    if own or negative:
        return {"Host": valid["Host"]}
    return valid


def test_every_operation_conforms_to_the_schema(api_schema, headers):
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @seed(SEED)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
            database=None,
        )
        def fuzz(case):
            if case.query and "cursor" in case.query:
                # An opaque token the server issues: any other string is a documented 400
                # (tests/test_addressbook.py), which the positive-data check cannot know.
                del case.query["cursor"]
            case.call_and_validate(headers=auth_headers(case, headers()))

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; all reported
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def state_machine(api_schema, headers):
    class APIWorkflow(api_schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": auth_headers(case, headers())}

    return APIWorkflow


def test_stateful_sequences_conform_to_the_schema(state_machine):
    state_machine.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
