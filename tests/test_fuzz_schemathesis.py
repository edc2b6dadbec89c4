"""The API against its own OpenAPI schema: schemathesis drives the in-process WSGI app on a
tenant's host with a valid tenant admin token, every default check on (no 5xx, status codes,
content types, headers and bodies as documented, negative data rejected, positive data
accepted (no 400 for a schema-valid request but for rules a schema cannot state, listed
by field and message), authentication enforced...), then a stateful phase that chains
operations through the schema's links. Fixed seed, bounded examples, so it is a regular CI test.

Excluded: platform operations that provision or suspend tenants (they would create real
databases or take the session tenants away); they are covered by tests/test_platform_api.py.
"""

from __future__ import annotations

import io
from http import HTTPStatus

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.models import User
from accounts.tokens import issue_tokens
from tenants.context import use_tenant
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

SEED = 20261124
EXAMPLES = 25
STATEFUL_STEPS = 8
# Positive data (schema-valid requests) must be accepted: a 400 for one fails the run,
# because the schema states every constraint the server enforces on a single request
# (lengths, patterns, ranges, enums, unknown fields). What it cannot state are rules that
# depend on the data already stored or on another field; a 400 that names only those is
# expected, by field and message (refused_by_rules_beyond_the_schema).
FUZZ_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429"]

[[operations]]
include-path = "/api/logs"
checks.positive_data_acceptance.expected-statuses = ["410"]
"""
RULES_BEYOND_THE_SCHEMA = {
    # uniqueness (stored data)
    "username": (
        "A user with that username already exists.",
        "A user with that username or",
        "This username is another user's email address.",
    ),
    "email": (
        "A user with that email already exists.",
        "This email address is another user's username.",
    ),
    # password checks against the user and Django's common-password list
    "password": ("The password is too similar to the", "This password is too common."),
    "new_password": ("The password is too similar to the", "This password is too common."),
    "old_password": ("The current password is incorrect.",),
    # a field named twice in ?ordering=
    "ordering": ("Ordering field ",),
    # an API key's expiry must be in the future (the clock, not the schema)
    "expires_at": ("The expiry must be in the future.",),
    # a second-factor code that is not the authenticator's current one
    "code": ("The code is not valid.",),
}


def refused_by_rules_beyond_the_schema(case, response) -> bool:
    """True for a schema-valid request answered 400 only for rules listed above."""
    if response.status_code != HTTPStatus.BAD_REQUEST or case.meta is None:
        return False
    if not case.meta.generation.mode.is_positive:
        return False
    details = response.json().get("details") or {}
    return bool(details) and all(
        field in RULES_BEYOND_THE_SCHEMA
        and all(m.startswith(RULES_BEYOND_THE_SCHEMA[field]) for m in messages)
        for field, messages in details.items()
    )


def validate(case, response) -> None:
    excluded = (
        [positive_data_acceptance] if refused_by_rules_beyond_the_schema(case, response) else []
    )
    case.validate_response(response, excluded_checks=excluded)


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
    settings.EMAIL_LINK_RATE_LIMIT_PER_MINUTE = 0
    settings.EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR = 0


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


CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})


def without_cursor(case) -> None:
    """A cursor is an opaque token the server issues: any other string is a documented 400
    (tests/test_addressbook.py), which the positive-data check cannot know."""
    if case.query and "cursor" in case.query:
        del case.query["cursor"]


def auth_headers(case, valid: dict) -> dict:
    """The valid token, unless the case carries credentials of its own (a token or an API
    key) or left them out on purpose (a generated invalid or missing one, to check that it
    is refused)."""
    own = any(name.lower() in CREDENTIAL_HEADERS for name in case.headers or {})
    negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    if own or negative:
        return {"Host": valid["Host"]}
    # The credentials are ours, not generated: schemathesis then probes the operation
    # without them and with invalid ones, on the tenant's host (the probes resend the
    # case, not these headers). Without the mark, an operation that takes a token or an
    # API key would have our token taken for a generated one.
    case._has_explicit_auth = True
    case.headers = {**(case.headers or {}), "Host": valid["Host"]}
    return valid


def fuzz_every_operation(api_schema, headers) -> list[str]:
    """Each operation of `api_schema` fuzzed; a description of every one that failed."""
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
            without_cursor(case)
            validate(case, case.call(headers=auth_headers(case, headers())))

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; all reported
            failures.append(f"{operation.label}: {exc}")
    return failures


def test_every_operation_conforms_to_the_schema(api_schema, headers):
    failures = fuzz_every_operation(api_schema, headers)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
def test_the_key_set_conforms_to_the_schema_with_key_signed_tokens(
    algorithm, api_schema, headers, settings, tmp_path
):
    """The suite runs on HS256 (an empty key set); here the set holds a current and a
    previous key of each key algorithm."""
    settings.JWT_ALGORITHM = algorithm
    settings.JWT_KEY_DIR = tmp_path / "jwt-keys"
    for _ in range(2):
        call_command("rotate_jwt_keys", stdout=io.StringIO())
    failures = fuzz_every_operation(api_schema.include(path="/.well-known/jwks.json"), headers)
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def state_machine(api_schema, headers):
    class APIWorkflow(api_schema.as_state_machine()):
        def get_call_kwargs(self, case):
            without_cursor(case)
            return {"headers": auth_headers(case, headers())}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            excluded = (
                [positive_data_acceptance]
                if refused_by_rules_beyond_the_schema(case, response)
                else []
            )
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=excluded,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

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
