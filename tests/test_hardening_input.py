"""Client input is checked in bounded, linear time and every pathology is a 400 in the
envelope: string fields (generated from the schema the server serves, cross-checked with
the serializers of every view), JSON bodies, pagination cursors, metrics labels.

Timings are recorded (the slowest request is printed), never asserted: they belong to the
benchmark harness. What is asserted is that each pathological value is refused by its
field (the field is named in `details`) and that no validator ever sees more characters
than its field allows."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import fields as drf_fields
from rest_framework import serializers

from accounts.models import User
from accounts.tokens import issue_tokens
from config import metrics
from config.pagination import encode_cursor
from tenants.models import DatabaseServer, Tenant
from tenants.validators import validate_domain, validate_slug
from tests.factories import PASSWORD
from tests.helpers import client_for

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/api/address-book"
BODY_LIMIT = 1024 * 1024
SLOWEST: list[tuple[float, str]] = []


@pytest.fixture
def unthrottled(settings):
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 0
    settings.RATE_LIMIT_PER_MINUTE = 0
    settings.LOGIN_LOCKOUT_THRESHOLD = 10**6


@pytest.fixture
def bounded_validators(monkeypatch):
    """Records, for every field validation, the length of the string its validators saw
    and the field's max_length; the test asserts none saw more than its field allows."""
    seen: list[tuple[str, int, int]] = []
    original = drf_fields.Field.run_validators

    def run_validators(self, value):
        limit = getattr(self, "max_length", None)
        if isinstance(value, str) and limit is not None:
            seen.append((self.field_name or "?", len(value), limit))
        return original(self, value)

    monkeypatch.setattr(drf_fields.Field, "run_validators", run_validators)
    return seen


def _timed(label: str, call):
    started = time.perf_counter()
    response = call()
    SLOWEST.append((time.perf_counter() - started, label))
    return response


def teardown_module(module):
    if SLOWEST:
        worst = sorted(SLOWEST, reverse=True)[:5]
        print("\nslowest pathological requests:")
        for seconds, label in worst:
            print(f"  {seconds * 1000:8.1f} ms  {label}")


# --- the surface, from the schema the server serves -----------------------------------------
@pytest.fixture(scope="module")
def served_schema(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == HTTPStatus.OK
    return json.loads(response.content)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node or "allOf" in node:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        else:
            node = node["allOf"][0]
    return node


def _string_schema(node: dict) -> dict | None:
    """The non-empty string variant of a property (allow_blank fields are a oneOf)."""
    if node.get("type") == "string" and "enum" not in node:
        return node
    for variant in node.get("oneOf", []):
        if variant.get("type") == "string" and variant.get("maxLength", 1) > 0:
            return variant
    return None


def _body_fields(schema: dict, node: dict, prefix: str = ""):
    """(dotted field, string schema, is list item) for every writable string of a body."""
    node = _resolve(schema, node)
    for name, prop in node.get("properties", {}).items():
        if prop.get("readOnly"):
            continue
        resolved = _resolve(schema, prop)
        if resolved.get("type") == "object":
            yield from _body_fields(schema, resolved, f"{prefix}{name}.")
        elif resolved.get("type") == "array" and _string_schema(resolved.get("items", {})):
            yield f"{prefix}{name}", _string_schema(resolved["items"]), True
        elif (string := _string_schema(resolved)) is not None:
            yield f"{prefix}{name}", string, False


def string_inputs(schema: dict) -> list[tuple[str, str, str, str, dict, bool]]:
    """(method, path, "body"|"query", field, string schema, is list item) for every
    writable string of every operation."""
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                string = _string_schema(parameter.get("schema", {}))
                if parameter["in"] == "query" and string is not None:
                    found.append((method, path, "query", parameter["name"], string, False))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                for field, string, many in _body_fields(schema, body["schema"]):
                    found.append((method, path, "body", field, string, many))
    return found


def _serializer_string_fields(serializer, prefix: str = ""):
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.Serializer):
            yield from _serializer_string_fields(field, f"{prefix}{name}.")
        elif (
            isinstance(field, serializers.ListField)
            and isinstance(field.child, serializers.CharField)
        ) or isinstance(field, serializers.CharField | serializers.DateTimeField):
            yield f"{prefix}{name}"


def test_the_enumeration_finds_every_writable_string_field_of_every_view(served_schema):
    """The schema-driven inputs below are exactly the string fields of the request
    serializers of every view in the URL conf: a new field is covered by itself."""
    expected = set()
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    for path, _regex, method, view in generator._get_paths_and_endpoints():
        serializer = view.schema.get_request_serializer()
        if isinstance(serializer, type):
            serializer = serializer()
        with_body = method in ("POST", "PUT", "PATCH") or (
            method == "DELETE" and "requestBody" in served_schema["paths"][path]["delete"]
        )  # DELETE /api/auth/mfa/totp takes a code
        if with_body and isinstance(serializer, serializers.Serializer):
            for field in _serializer_string_fields(serializer):
                expected.add((method.lower(), path, field))
    found = {
        (method, path, field)
        for method, path, where, field, _s, _m in string_inputs(served_schema)
        if where == "body"
    }
    assert found == expected
    # A floor, so that an enumeration that finds nothing cannot pass.
    assert {
        ("post", "/api/address-book", "phone"),
        ("post", "/api/auth/signup", "password"),
        ("post", "/api/platform/tenants", "admin.password"),
        ("patch", "/api/platform/tenants/{slug}", "domains"),
    } <= found
    queries = {
        (p, f) for _m, p, where, f, _s, _x in string_inputs(served_schema) if where == "query"
    }
    assert {("/api/address-book", "cursor"), ("/api/address-book/export", "search")} <= queries


# --- sending them ----------------------------------------------------------------------------
@pytest.fixture
def callers(acme, make_user, bearer, make_contact, unthrottled):
    """A client per kind of path, with the credentials that reach validation."""
    admin = make_user(acme, "hardening-admin", role=User.Role.ADMIN)
    tenant = client_for("acme.test")
    tenant.credentials(**bearer(admin, acme))
    root = User.objects.create_user("hardening-root", "root@example.test", PASSWORD, is_staff=True)
    platform = client_for("acme.test")
    contact = make_contact(acme, "Target")
    ids = {"{id}": str(contact.pk), "{slug}": "acme"}

    def client_and_path(path: str):
        # A fresh token per request: a logout or password change that a valid value let
        # through ends the one it used.
        tenant.credentials(**bearer(admin, acme))
        platform.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(root, None)['access']}")
        for placeholder, value in ids.items():
            path = path.replace(placeholder, value)
        if path.startswith("/api/users/"):
            path = path.replace(str(contact.pk), str(admin.pk))
        return (platform if path.startswith("/api/platform/") else tenant), path

    return client_and_path


def _nest(field: str, value, many: bool) -> dict:
    value = [value] if many else value
    *parents, leaf = field.split(".")
    body = {leaf: value}
    for parent in reversed(parents):
        body = {parent: body}
    return body


def _send(callers, method, path, where, field, value, many=False, raw=None):
    client, path = callers(path)
    if where == "query":
        query = urllib.parse.urlencode({field: value})
        return _timed(
            f"{method.upper()} {path}?{field}=<{len(value)}>",
            lambda: client.generic(method.upper(), f"{path}?{query}"),
        )
    content = raw if raw is not None else json.dumps(_nest(field, value, many), ensure_ascii=False)
    content = content.encode("utf-8", "surrogatepass")
    label = f"{method.upper()} {path} {field}=<{len(content)} bytes>"
    return _timed(
        label,
        lambda: client.generic(method.upper(), path, content, content_type="application/json"),
    )


def _refused_by_the_field(response, field: str) -> bool:
    body = response.json()
    return (
        response.status_code == HTTPStatus.BAD_REQUEST
        and body["error"] == "Bad Request"
        and any(key == field or key.startswith(f"{field}.") for key in body.get("details", {}))
    )


# A query string is bounded by the servers' request line (gunicorn: 4094 bytes), far below
# the body limit; 64 KiB is plenty for the in-process client.
QUERY_LIMIT = 64 * 1024


def _pathological(limit: int, size: int) -> dict[str, str]:
    """Values of about `size` bytes once encoded, and one just over `limit`."""
    n = size - 4096
    return {
        "digits then a letter": "1" * n + "x",
        "letters then a symbol": "a" * n + "!",
        "spaces": " " * n,
        "spaces around a letter": " " * (n // 2) + "a" + " " * (n // 2),
        "unicode": "é" * (n // 2),
        "astral": "\U0001f600" * (n // 4),
        "NUL": "\x00" * (n // 6),
        "control characters": "\x01\x1f\x7f" * (n // 18),
        "just over the limit": "x" * (limit + 1),
    }


def test_every_string_field_refuses_its_max_length_plus_one_and_every_pathology(
    served_schema, callers, bounded_validators
):
    refused, failures = 0, []
    for method, path, where, field, string, many in string_inputs(served_schema):
        limit = string["maxLength"]
        size = QUERY_LIMIT if where == "query" else BODY_LIMIT
        for kind, value in _pathological(limit, size).items():
            response = _send(callers, method, path, where, field, value, many)
            if not _refused_by_the_field(response, field):
                failures.append(f"{method} {path} {field} {kind}: {response.status_code}")
            else:
                refused += 1
    assert not failures, "\n".join(failures)
    assert refused > 0
    assert all(length <= limit for _f, length, limit in bounded_validators)


def test_every_string_field_answers_values_at_its_limit_without_a_5xx(
    served_schema, callers, bounded_validators
):
    """Patterns run on values of up to the field's length: valid ones pass, others are
    refused (a 400, or 401 for a token or a password that is not one). Provisioning is
    left out: a valid slug would create a tenant."""
    failures = []
    for method, path, where, field, string, many in string_inputs(served_schema):
        if path == "/api/platform/tenants" and method == "post":
            continue
        limit = string["maxLength"]
        values = {
            "digits then a letter": "1" * (limit - 1) + "x",
            "letters then a symbol": "a" * (limit - 1) + "!",
            "spaces": " " * limit,
            "unicode": "é" * limit,
            "control characters": "\x01" * limit,
        }
        for kind, value in values.items():
            response = _send(callers, method, path, where, field, value, many)
            if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
                failures.append(f"{method} {path} {field} {kind}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert all(length <= limit for _f, length, limit in bounded_validators)


def test_a_lone_surrogate_in_any_body_field_is_a_400_naming_it(served_schema, callers):
    failures = []
    for method, path, where, field, _string, many in string_inputs(served_schema):
        if where != "body":
            continue
        raw = json.dumps(_nest(field, "x\ud800y", many))  # ensure_ascii: the \ud800 escape
        response = _send(callers, method, path, where, field, None, many, raw=raw)
        if not _refused_by_the_field(response, field):
            failures.append(f"{method} {path} {field}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_the_phone_of_defect_two_is_refused_at_once(api, bounded_validators):
    response = api.post(URL, {"name": "x", "phone": "1" * 32000 + "x"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["details"] == {
        "phone": ["Ensure this field has no more than 20 characters."]
    }
    assert not [seen for seen in bounded_validators if seen[0] == "phone" and seen[1] > 20]


@pytest.mark.parametrize(
    ("phone", "status"),
    [
        ("+1 (555) 010-9999", HTTPStatus.CREATED),
        ("1111111111111111111x", HTTPStatus.BAD_REQUEST),
        ("+-() -()", HTTPStatus.BAD_REQUEST),
        ("++1234567", HTTPStatus.BAD_REQUEST),
    ],
)
def test_phone_numbers_follow_the_contract(api, phone, status):
    assert api.post(URL, {"name": "x", "phone": phone}, format="json").status_code == status


@pytest.mark.parametrize("value", ["abc\n", "acme\n", "a" * 64])
def test_slugs_are_matched_whole(value):
    with pytest.raises(Exception, match="Enter 3-63 characters"):
        validate_slug(value)


@pytest.mark.parametrize(
    "value",
    ["example.com\n", "-a.example.com", "a-.example.com", "a..b", "a" * 64 + ".com", "é.com"],
)
def test_host_names_are_checked_label_by_label(value):
    with pytest.raises(Exception, match="not a valid host name"):
        validate_domain(value)


def test_a_long_valid_host_name_is_accepted():
    validate_domain(".".join(["a" * 63] * 3) + ".abcdefghijklmnopqrstuvwxyz0123456789-" + "a" * 23)


# --- JSON bodies -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("deeply nested arrays", b"[" * 200_000),
        ("deeply nested objects", b'{"a":' * 150_000),
        ("nesting just past the limit", b'{"name": "x", "notes": ' + b"[" * 40 + b"]" * 40 + b"}"),
        ("a huge exponent", b'{"name": "x", "age": 1e999999}'),
        ("a 100,000-digit integer", b'{"name": "x", "age": ' + b"1" * 100_000 + b"}"),
        ("NaN", b'{"name": "x", "age": NaN}'),
        ("Infinity", b'{"name": "x", "age": Infinity}'),
        ("-Infinity", b'{"name": "x", "age": -Infinity}'),
        ("duplicated keys", b'{"name": "x", "name": "y"}'),
        ("invalid UTF-8", b'{"name": "\xff\xfe"}'),
        ("truncated", b'{"name": "x"'),
    ],
)
def test_pathological_json_is_a_400_in_the_envelope(api, label, body):
    response = _timed(
        label, lambda: api.generic("POST", URL, body, content_type="application/json")
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "status": HTTPStatus.BAD_REQUEST,
        "error": "Bad Request",
        "message": "Malformed JSON",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"name": "a\\u0000b"}', "name"),
        ('{"name": "x", "notes": "\\u0000"}', "notes"),
        ('{"name": "x", "gender": "male\\u0000"}', "gender"),
        ('{"name": "x", "gender": "\\ud800"}', "gender"),
        ('{"name": "x", "\\ud800": 1}', "\\ud800"),
        ('{"name": "x", "n\\u0000": 1}', "n\x00"),
    ],
)
def test_nul_and_lone_surrogates_are_a_400_naming_the_field(api, body, field):
    response = api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in response.json()["details"]


@pytest.mark.parametrize("body", ["[]", '"x"', "1", "null", "true", '[{"name": "x"}]'])
def test_a_body_that_is_not_an_object_is_a_400(api, body):
    response = api.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "Bad Request"


def test_an_integer_too_long_for_any_field_is_refused_without_parsing_it(api):
    response = api.generic(
        "POST", URL, '{"name": "x", "age": ' + "9" * 41 + "}", content_type="application/json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST


# --- cursors ---------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_answer_is_total(api, cursor: str, ordering: str = "") -> None:
    query = urllib.parse.urlencode(
        {"cursor": cursor, **({"ordering": ordering} if ordering else {})}
    )
    response = api.get(f"{URL}?{query}")
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST), cursor
    if response.status_code == HTTPStatus.BAD_REQUEST:
        body = response.json()
        assert body["message"] == "Invalid cursor", (cursor, body)
        assert body["details"] == {"cursor": ["Invalid cursor."]}


@pytest.mark.parametrize(
    ("values", "ordering"),
    [
        (["0001-01-01T00:00:00+14:00", 1], "created_at"),  # before datetime.min in UTC
        (["9999-12-31T23:59:59-14:00", 1], "created_at"),  # after datetime.max in UTC
        (["x\ud800", 1], ""),  # a lone surrogate
        ([2**70, 1], "age"),
        ([True, 1], "age"),
        (["x", "1"], ""),
        (["x" * 3000, 1], ""),
    ],
)
def test_forged_cursor_values_are_400_invalid_cursor(api, values, ordering):
    terms = (ordering or "name", "id")
    raw = json.dumps({"o": ",".join(terms), "d": "n", "v": values}).encode()
    response = api.get(f"{URL}?cursor={_b64(raw)}&ordering={ordering}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"] == "Invalid cursor"


def test_a_cursor_the_server_made_still_works(api, acme, make_contact):
    for name in ("a", "b", "c"):
        make_contact(acme, name)
    first = api.get(f"{URL}?page_size=1&ordering=created_at").json()
    assert api.get(first["next"]).status_code == HTTPStatus.OK
    cursor = encode_cursor(("created_at", "id"), "n", [datetime(2020, 1, 1, tzinfo=UTC), 1])
    assert api.get(f"{URL}?cursor={cursor}&ordering=created_at").status_code == HTTPStatus.OK


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=30),
    st.datetimes(
        timezones=st.builds(
            timezone,
            st.integers(min_value=-1439, max_value=1439).map(lambda m: timedelta(minutes=m)),
        )
    ).map(datetime.isoformat),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
ORDERINGS = st.sampled_from(["", "age", "-age", "created_at", "-updated_at", "email,-id"])


def _terms(ordering: str) -> str:
    terms = [t for t in ordering.split(",") if t] or ["name"]
    return ",".join(terms if any(t.lstrip("-") == "id" for t in terms) else [*terms, "id"])


HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@HYPOTHESIS
@given(token=st.text(max_size=300) | st.binary(max_size=300).map(_b64))
def test_any_string_as_a_cursor_is_200_or_invalid_cursor(api, token):
    _cursor_answer_is_total(api, token)


@HYPOTHESIS
@given(
    ordering=ORDERINGS,
    direction=st.sampled_from(["n", "p", "x", 1, None]),
    values=st.lists(JSON_VALUES, max_size=3),
    extra=st.dictionaries(st.sampled_from(["o", "x"]), JSON_VALUES, max_size=1),
)
def test_any_json_structure_as_a_cursor_is_200_or_invalid_cursor(
    api, ordering, direction, values, extra
):
    payload = {"o": _terms(ordering), "d": direction, "v": values, **extra}
    raw = json.dumps(payload).encode("utf-8", "surrogatepass")
    _cursor_answer_is_total(api, _b64(raw), ordering)


@HYPOTHESIS
@given(document=JSON_VALUES)
def test_any_json_document_as_a_cursor_is_200_or_invalid_cursor(api, document):
    _cursor_answer_is_total(api, _b64(json.dumps(document).encode("utf-8", "surrogatepass")))


# --- metrics labels --------------------------------------------------------------------------
def _samples(text: str):
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield family.name, sample.labels


OWN_METRICS = (
    "http_request",
    "tenants",
    "database_server_tenants",
    "log_lines",
    "websocket_log_clients",
)


def test_metric_labels_stay_within_bounded_sets(acme):
    """Every label of every metric config/metrics.py defines."""
    client = Client(HTTP_HOST="acme.test")
    for method in ("FOOBAR", "BAZQUX", "get", "M-SEARCH"):
        client.generic(method, "/health")
    for path in ("/nope-123", "/api/nope-456", "/api/address-book/999999999"):
        client.get(path)
    text = client.get("/metrics").content.decode()
    assert "FOOBAR" not in text and "nope-123" not in text and "nope-456" not in text
    routes = {metrics.UNRESOLVED_ROUTE}

    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern, route)
            else:
                routes.add("/" + route)

    walk(get_resolver())
    methods = set(metrics.KNOWN_METHODS) | {metrics.OTHER_METHOD}
    seen_other = False
    for name, labels in _samples(text):
        if not name.startswith(OWN_METRICS):
            continue
        for label, value in labels.items():
            if label == "method":
                assert value in methods, (name, value)
                seen_other |= value == metrics.OTHER_METHOD
            elif label == "route":
                assert value in routes, (name, value)
            elif label == "status" and name in ("tenants", "database_server_tenants"):
                assert value in set(Tenant.Status.values), (name, value)
            elif label == "server":
                servers = set(DatabaseServer.objects.values_list("name", flat=True))
                assert value in servers | {"-"}, (name, value)
            elif label == "status":
                assert value.isdigit() and 100 <= int(value) <= 599, (name, value)
            elif label != "le":
                pytest.fail(f"{name} has a label {label!r} this test does not know")
    assert seen_other


def test_integer_query_parameters_of_thousands_of_digits_are_refused_or_ignored(
    served_schema, callers
):
    """An integer parameter of 5,000 digits (past Python's int-from-str limit of 4,300)."""
    answered = 0
    for path, item in served_schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query" or parameter["schema"].get("type") != "integer":
                    continue
                for value in ("9" * 5000, "-" + "9" * 5000, "1e999999", "1.5"):
                    response = _send(callers, method, path, "query", parameter["name"], value)
                    # Refused, or ignored (page_size falls back to its default).
                    assert response.status_code in (
                        HTTPStatus.OK,
                        HTTPStatus.BAD_REQUEST,
                        HTTPStatus.NOT_FOUND,
                    ), (path, parameter["name"], value)
                    answered += 1
    assert answered >= 4 * 6


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_tenant_takes_at_most_a_hundred_domains(callers, method):
    domains = [f"d{i}.example.com" for i in range(101)]
    body = {"slug": "manydomains", "name": "Many", "domains": domains}
    if method == "patch":
        body = {"domains": domains}
    path = "/api/platform/tenants" + ("/{slug}" if method == "patch" else "")
    response = _send(callers, method, path, "body", "domains", None, raw=json.dumps(body))
    assert _refused_by_the_field(response, "domains")


def test_a_list_over_its_item_limit_is_refused_before_any_item_is_validated(monkeypatch):
    from tenants.serializers import MAX_DOMAINS, TenantUpdateSerializer

    serializer = TenantUpdateSerializer(data={"domains": ["x.example.com"] * 100_000})
    validated = []
    child = serializer.fields["domains"].child
    monkeypatch.setattr(child, "run_validation", lambda value: validated.append(value) or value)
    assert not serializer.is_valid()
    assert serializer.errors["domains"] == [
        f"Ensure this field has no more than {MAX_DOMAINS} elements."
    ]
    assert validated == []
