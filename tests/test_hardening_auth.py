"""Authentication hardening: the one client address, every login path throttled and locked
out per account, the platform token lifecycle, and the body-size limit without
Content-Length."""

from __future__ import annotations

import ast
import inspect
import io
import json
from http import HTTPStatus

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import RevokedToken
from accounts.tokens import issue_tokens
from config.network import client_address, scope_client_ip
from tenants.context import use_tenant
from tests.factories import PASSWORD, WRONG_PASSWORD, bearer_header, create_staff
from tests.helpers import BASE_DIR, client_for, platform_login

pytestmark = pytest.mark.django_db(databases="__all__")

PROXY = "192.0.2.10"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXY_IPS = ["192.0.2.0/24"]


# --- the client address -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.9", "10.1.2.3", "198.51.100.9"),  # untrusted peer: header ignored
        (PROXY, "10.1.2.3, 203.0.113.77", "203.0.113.77"),
        (PROXY, "203.0.113.77, 192.0.2.11", "203.0.113.77"),  # a second trusted proxy
        (PROXY, "10.1.2.3, 203.0.113.77:4711", "203.0.113.77"),
        (PROXY, "10.1.2.3, [2001:db8::7]:443", "2001:db8::7"),
        (PROXY, "garbage, 203.0.113.77", "203.0.113.77"),
        (PROXY, "192.0.2.11", "192.0.2.11"),
        (PROXY, "1.1.1.1," * 600 + "203.0.113.77", "203.0.113.77"),  # padded left
    ],
)
def test_client_address_is_the_rightmost_hop_that_is_not_a_trusted_proxy(
    behind_proxy, peer, forwarded, expected
):
    assert client_address(peer, forwarded) == expected


def test_the_address_of_an_asgi_scope_is_the_rightmost_hop_that_is_not_a_trusted_proxy(
    behind_proxy,
):
    scope = {
        "type": "websocket",
        "client": (PROXY, 50000),
        "headers": [(b"x-forwarded-for", b"10.1.2.3"), (b"X-Forwarded-For", b"203.0.113.77")],
    }
    assert scope_client_ip(scope) == "203.0.113.77"
    assert scope_client_ip({**scope, "client": ("198.51.100.9", 1)}) == "198.51.100.9"
    assert scope_client_ip({"type": "websocket", "headers": []}) == ""


def test_admin_allow_list_ignores_a_spoofed_leftmost_hop(acme, behind_proxy, settings):
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8"]
    spoofed = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.1.2.3, 203.0.113.77")
    assert spoofed.get("/admin/login/").status_code == HTTPStatus.FORBIDDEN
    assert spoofed.post("/api/platform/auth/login", {}).status_code == HTTPStatus.FORBIDDEN
    inside = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.77, 10.1.2.3")
    assert inside.get("/admin/login/").status_code == HTTPStatus.OK


def test_a_padded_forwarded_header_does_not_make_the_proxy_the_client(acme, settings):
    settings.TRUSTED_PROXY_IPS = ["10.0.0.5/32"]
    settings.ADMIN_ALLOWED_IPS = ["10.0.0.0/8"]
    padded = "10.1.1.1, " * 300 + "203.0.113.77"
    client = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=padded)
    assert client.get("/admin/login/").status_code == HTTPStatus.FORBIDDEN


def test_metrics_allow_list_ignores_a_spoofed_leftmost_hop(acme, behind_proxy, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    spoofed = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.1.2.3, 203.0.113.77")
    assert spoofed.get("/metrics").status_code == HTTPStatus.FORBIDDEN
    inside = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.77, 10.1.2.3")
    assert inside.get("/metrics").status_code == HTTPStatus.OK


def test_rotating_the_first_hop_does_not_escape_the_rate_limit(acme, behind_proxy, settings):
    settings.RATE_LIMIT_PER_MINUTE = 3
    statuses = [
        client_for("acme.test")
        .get(
            "/api/address-book",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.77",
        )
        .status_code
        for n in range(4)
    ]
    assert statuses == [HTTPStatus.UNAUTHORIZED] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]


def test_rotating_the_first_hop_does_not_escape_the_login_throttle(
    acme, make_user, behind_proxy, low_rate
):
    make_user(acme, "ann")

    def attempt(n: int, password: str):
        return client_for("acme.test").post(
            "/api/auth/login",
            {"username_or_email": "ann", "password": password},
            format="json",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 203.0.113.77",
        )

    for n in range(3):
        assert attempt(n, WRONG_PASSWORD).status_code == HTTPStatus.UNAUTHORIZED
    assert attempt(3, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS


# Modules that may read the transport's own peer address: the one function, and the
# tenant middleware's check that the *peer* is a trusted proxy before it honours the
# tenant header (a property of the connection, not the client address).
CLIENT_ADDRESS_READERS = {
    "config/network.py": "computes the client address",
    "tenants/middleware.py": "peer check before the trusted-proxy tenant header",
}
ADDRESS_NAMES = {"remote_addr", "http_x_forwarded_for", "x-forwarded-for", "x_forwarded_for"}


def _project_modules():
    for path in sorted(BASE_DIR.rglob("*.py")):
        relative = path.relative_to(BASE_DIR).as_posix()
        if relative.split("/")[0] in {".venv", "tests", "bench", "var", "build"}:
            continue
        if "/migrations/" in relative:
            continue
        yield relative, path


def _address_reads(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value.decode("latin1") if isinstance(node.value, bytes) else node.value
            if value.lower() in ADDRESS_NAMES:
                yield node.lineno, value
        # scope["client"] / scope.get("client"): the ASGI peer
        is_constant = isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
        if is_constant and node.slice.value == "client":
            yield node.lineno, 'scope["client"]'
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "client"
        ):
            yield node.lineno, 'scope.get("client")'


def test_no_module_but_the_network_one_reads_the_client_address_itself():
    readers = {}
    for relative, path in _project_modules():
        found = list(_address_reads(ast.parse(path.read_text(), filename=relative)))
        if found:
            readers[relative] = found
    assert "config/network.py" in readers  # the check can see a reader
    assert set(readers) <= set(CLIENT_ADDRESS_READERS), readers


def test_every_consumer_of_the_address_takes_it_from_the_network_module():
    consumers = ["config/security.py", "config/metrics.py", "accounts/views.py"]
    consumers += ["accounts/backends.py"]
    for relative in consumers:
        source = (BASE_DIR / relative).read_text()
        assert "from config.network import" in source and "client_ip" in source, relative


# --- every login path ---------------------------------------------------------------------
def api_login(path: str, host: str):
    def attempt(identifier: str, password: str, ip: str):
        response = client_for(host).post(
            path,
            {"username_or_email": identifier, "password": password},
            format="json",
            REMOTE_ADDR=ip,
        )
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            assert int(response["Retry-After"]) >= 1
            assert response.json()["error"] == "Too Many Requests"
            return "throttled"
        return {HTTPStatus.OK: "ok", HTTPStatus.UNAUTHORIZED: "refused"}[response.status_code]

    return attempt


def admin_login(identifier: str, password: str, ip: str):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(
        "/admin/login/", {"username": identifier, "password": password, "next": "/admin/"}
    )
    if response.status_code == HTTPStatus.FOUND:
        assert "_auth_user_id" in client.session
        return "ok"
    assert "_auth_user_id" not in client.session
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        assert int(response["Retry-After"]) >= 1
        assert "Too many login attempts" in response.content.decode()  # the form, and why
        return "throttled"
    assert response.status_code == HTTPStatus.OK  # the form again, never a 500
    assert "Too many login attempts" not in response.content.decode()
    return "refused"


def tenant_account(request):
    acme = request.getfixturevalue("acme")
    return request.getfixturevalue("make_user")(acme, "ann", email="ann@acme.example")


def platform_account(request):
    request.getfixturevalue("tenant_databases")
    return create_staff("root", email="root@platform.example")


# Every URL whose view checks a password, with how to try it and whose account it is.
LOGIN_PATHS = {
    "api/auth/login": (api_login("/api/auth/login", "acme.test"), tenant_account),
    "api/platform/auth/login": (
        api_login("/api/platform/auth/login", "acme.test"),
        platform_account,
    ),
    "admin/login/": (admin_login, platform_account),
}
PASSWORD_LOGIN_MARKERS = (
    "services.login(",
    "authenticate_credentials(",
    "LoginView",
    "authenticate(",
)


def _routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _authenticates_a_password(callback) -> bool:
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    target = view if view is not None else inspect.unwrap(callback)
    try:
        source = inspect.getsource(target)
    except (OSError, TypeError):
        return False
    return any(marker in source for marker in PASSWORD_LOGIN_MARKERS)


def test_the_login_path_table_covers_every_url_that_checks_a_password():
    found = {route for route, callback in _routes() if _authenticates_a_password(callback)}
    assert found == set(LOGIN_PATHS)


@pytest.mark.parametrize("route", sorted(LOGIN_PATHS))
def test_every_login_path_is_throttled_per_ip(request, route, low_rate):
    attempt, make_account = LOGIN_PATHS[route]
    account = make_account(request)
    for _ in range(3):
        assert attempt(account.username, WRONG_PASSWORD, "203.0.113.7") == "refused"
    assert attempt(account.username, PASSWORD, "203.0.113.7") == "throttled"
    assert attempt(account.username, PASSWORD, "198.51.100.9") == "ok"


@pytest.mark.parametrize("route", sorted(LOGIN_PATHS))
def test_every_login_path_locks_out_the_account_whichever_identifier_is_used(
    request, route, low_lockout
):
    attempt, make_account = LOGIN_PATHS[route]
    account = make_account(request)
    assert attempt(account.username, WRONG_PASSWORD, "203.0.113.1") == "refused"
    assert attempt(account.email, WRONG_PASSWORD, "203.0.113.2") == "refused"
    assert attempt(account.email.upper(), WRONG_PASSWORD, "203.0.113.3") == "refused"
    assert attempt(account.username, PASSWORD, "198.51.100.4") == "throttled"
    assert attempt(account.email, PASSWORD, "198.51.100.5") == "throttled"


@pytest.mark.parametrize("route", sorted(LOGIN_PATHS))
def test_every_login_path_answers_unknown_names_as_it_answers_known_ones(
    request, route, low_lockout
):
    attempt, make_account = LOGIN_PATHS[route]
    account = make_account(request)
    for identifier in (account.username, "nobody-at-all"):
        for _ in range(3):
            assert attempt(identifier, WRONG_PASSWORD, "203.0.113.9") == "refused"
        assert attempt(identifier, WRONG_PASSWORD, "203.0.113.9") == "throttled"


def test_the_login_paths_share_one_per_ip_throttle(acme, make_user, low_rate, staff):
    make_user(acme, "ann")
    tenant_login = LOGIN_PATHS["api/auth/login"][0]
    platform_login = LOGIN_PATHS["api/platform/auth/login"][0]
    assert tenant_login("ann", WRONG_PASSWORD, "203.0.113.7") == "refused"
    assert platform_login("root", WRONG_PASSWORD, "203.0.113.7") == "refused"
    assert admin_login("root", WRONG_PASSWORD, "203.0.113.7") == "refused"
    assert admin_login("root", PASSWORD, "203.0.113.7") == "throttled"


def test_admin_and_platform_api_share_the_lockout_of_a_staff_account(staff, low_lockout):
    platform_login = LOGIN_PATHS["api/platform/auth/login"][0]
    for ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert admin_login("root", WRONG_PASSWORD, ip) == "refused"
    assert platform_login("root", PASSWORD, "198.51.100.4") == "throttled"


def test_admin_login_after_25_wrong_passwords_does_not_log_in(staff, settings):
    assert settings.LOGIN_RATE_LIMIT_PER_MINUTE == 20
    assert settings.LOGIN_LOCKOUT_THRESHOLD == 10
    outcomes = [admin_login("root", WRONG_PASSWORD, "203.0.113.7") for _ in range(25)]
    assert outcomes[:10] == ["refused"] * 10
    assert set(outcomes[10:]) == {"throttled"}
    assert admin_login("root", PASSWORD, "203.0.113.7") == "throttled"
    assert admin_login("root", PASSWORD, "198.51.100.9") == "throttled"  # the account


def test_tenant_lockout_by_username_holds_for_the_email_too(acme, make_user, settings):
    """The repro: 10 failures by username, then the right password by e-mail."""
    settings.LOGIN_RATE_LIMIT_PER_MINUTE = 1000
    make_user(acme, "ann", email="ann@acme.example")
    tenant_login = LOGIN_PATHS["api/auth/login"][0]
    for _ in range(10):
        assert tenant_login("ann", WRONG_PASSWORD, "203.0.113.7") == "refused"
    assert tenant_login("ann@acme.example", PASSWORD, "198.51.100.9") == "throttled"
    assert tenant_login("ANN@acme.example", WRONG_PASSWORD, "198.51.100.9") == "throttled"


# --- platform token lifecycle -------------------------------------------------------------
def platform_pair(host="acme.test") -> dict:
    response = platform_login("root", host=host)
    assert response.status_code == HTTPStatus.OK
    return response.json()


def platform_get(access: str):
    return client_for("globex.test").get("/api/platform/tenants", **bearer_header(access))


def platform_refresh(refresh: str, host="acme.test"):
    return client_for(host).post("/api/platform/auth/refresh", {"refresh": refresh}, format="json")


def test_platform_refresh_rotates_and_the_old_refresh_token_is_refused(staff, acme, globex):
    pair = platform_pair()
    rotated = platform_refresh(pair["refresh"], host="globex.test")
    assert rotated.status_code == HTTPStatus.OK
    body = rotated.json()
    assert body["tenant"] is None and body["refresh"] != pair["refresh"]
    assert platform_get(body["access"]).status_code == HTTPStatus.OK
    again = platform_refresh(pair["refresh"])
    assert again.status_code == HTTPStatus.UNAUTHORIZED
    assert again.json()["message"] == "Invalid token"
    assert platform_refresh(body["refresh"]).status_code == HTTPStatus.OK


def test_platform_logout_revokes_the_access_and_the_refresh_token_at_once(staff, acme, globex):
    pair = platform_pair()
    response = client_for("acme.test").post(
        "/api/platform/auth/logout", **bearer_header(pair["access"])
    )
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert platform_get(pair["access"]).status_code == HTTPStatus.UNAUTHORIZED
    assert platform_refresh(pair["refresh"]).status_code == HTTPStatus.UNAUTHORIZED
    # The deny list of platform tokens is the main database's.
    assert RevokedToken.objects.using("default").filter(user_id=staff.pk).count() == 2


def test_platform_password_change_returns_a_new_pair_and_older_tokens_stop_working(
    staff, acme, globex
):
    first, second = platform_pair(), platform_pair()
    response = client_for("acme.test").post(
        "/api/platform/auth/password",
        {"old_password": PASSWORD, "new_password": "N3w-Staff-pass!"},
        format="json",
        **bearer_header(first["access"]),
    )
    assert response.status_code == HTTPStatus.OK
    fresh = response.json()
    for old in (first, second):
        assert platform_get(old["access"]).status_code == HTTPStatus.UNAUTHORIZED
        assert platform_refresh(old["refresh"]).status_code == HTTPStatus.UNAUTHORIZED
    assert platform_get(fresh["access"]).status_code == HTTPStatus.OK
    assert platform_refresh(fresh["refresh"]).status_code == HTTPStatus.OK


def test_platform_password_change_with_a_wrong_old_password_is_400(staff, acme):
    pair = platform_pair()
    response = client_for("acme.test").post(
        "/api/platform/auth/password",
        {"old_password": WRONG_PASSWORD, "new_password": "N3w-Staff-pass!"},
        format="json",
        **bearer_header(pair["access"]),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()["details"]) == {"old_password"}


def test_a_refresh_token_is_not_an_access_token(staff, acme):
    pair = platform_pair()
    assert platform_get(pair["refresh"]).status_code == HTTPStatus.UNAUTHORIZED


def test_tenant_tokens_never_work_on_the_platform_token_endpoints(acme, make_user):
    make_user(acme, "ann", is_staff=True)
    pair = (
        client_for("acme.test")
        .post("/api/auth/login", {"username_or_email": "ann", "password": PASSWORD}, format="json")
        .json()
    )
    client = client_for("acme.test")
    assert platform_refresh(pair["refresh"]).status_code == HTTPStatus.FORBIDDEN
    for path, body in (
        ("/api/platform/auth/logout", {}),
        ("/api/platform/auth/password", {"old_password": PASSWORD, "new_password": "Xx-12345a"}),
    ):
        response = client.post(path, body, format="json", **bearer_header(pair["access"]))
        assert response.status_code == HTTPStatus.FORBIDDEN, path
    # The tenant token still works: nothing was revoked or changed.
    me = client.get("/api/auth/me", **bearer_header(pair["access"]))
    assert me.status_code == HTTPStatus.OK


def test_platform_tokens_never_work_on_the_tenant_token_endpoints(staff, acme):
    pair = platform_pair()
    client = client_for("acme.test")
    response = client.post("/api/auth/refresh", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    for path, body in (
        ("/api/auth/logout", {}),
        ("/api/auth/password", {"old_password": PASSWORD, "new_password": "Xx-12345a"}),
        ("/api/auth/me", None),
    ):
        call = client.get if body is None else client.post
        kwargs = {} if body is None else {"data": body, "format": "json"}
        response = call(path, **kwargs, **bearer_header(pair["access"]))
        assert response.status_code == HTTPStatus.FORBIDDEN, path
    assert platform_get(pair["access"]).status_code == HTTPStatus.OK


def test_the_schema_documents_the_platform_token_endpoints():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {"refresh": "refresh", "logout": "logout", "password": "password_change"}
    for path, name in operations.items():
        operation = schema["paths"][f"/api/platform/auth/{path}"]["post"]
        assert operation["operationId"] == f"platform_{name}"
        assert "requestBody" in operation


# --- request size without Content-Length --------------------------------------------------
def _contact_body(size: int) -> bytes:
    body = json.dumps({"name": "Chunked", "notes": ""}).encode()
    return body if size <= len(body) else body[:-2] + b"x" * (size - len(body)) + b'"}'


def _wsgi_chunked(api, body: bytes):
    return api.generic(
        "POST",
        "/api/address-book",
        b"",
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
    )


def test_a_chunked_body_over_the_limit_is_413_on_wsgi(api, settings):
    settings.MAX_REQUEST_SIZE_BYTES = 1000
    response = _wsgi_chunked(api, _contact_body(5000))
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json() == {
        "status": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "error": "Content Too Large",
        "message": "Request body too large (limit 1000 bytes)",
    }


def test_a_chunked_body_under_the_limit_is_read_on_wsgi(api, settings):
    settings.MAX_REQUEST_SIZE_BYTES = 1000
    response = _wsgi_chunked(api, _contact_body(100))
    assert response.status_code == HTTPStatus.CREATED
    assert response.json()["name"] == "Chunked"


def test_a_negative_content_length_is_400(api):
    response = api.generic("POST", "/api/address-book", b"{}", CONTENT_LENGTH="-1")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["message"] == "Invalid Content-Length header"


# Django's ASGI handler runs each request's sync code in a thread of its own (and so on a
# connection of its own): the rows it reads must be committed.
ASGI_DB = pytest.mark.django_db(databases="__all__", transaction=True)


def _asgi_chunked(acme, ann, bearer, body: bytes, piece: int = 256) -> tuple[int, dict]:
    """POST through Django's ASGI handler as daphne hands over a chunked request: no
    content-length header, the body in several `more_body` messages."""
    headers = [
        (b"host", b"acme.test"),
        (b"content-type", b"application/json"),
        (b"transfer-encoding", b"chunked"),
        (b"authorization", bearer(ann, acme)["HTTP_AUTHORIZATION"].encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/address-book",
        "raw_path": b"/api/address-book",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
    }

    async def run():
        communicator = ApplicationCommunicator(get_asgi_application(), scope)
        pieces = [body[i : i + piece] for i in range(0, len(body), piece)] or [b""]
        for i, chunk in enumerate(pieces):
            await communicator.send_input(
                {"type": "http.request", "body": chunk, "more_body": i < len(pieces) - 1}
            )
        start = await communicator.receive_output(10)
        content = b""
        while True:
            message = await communicator.receive_output(10)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        return start["status"], json.loads(content)

    return async_to_sync(run)()


@ASGI_DB
def test_a_chunked_body_over_the_limit_is_413_on_asgi(acme, ann, bearer, settings):
    settings.MAX_REQUEST_SIZE_BYTES = 1000
    status, body = _asgi_chunked(acme, ann, bearer, _contact_body(5000))
    assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert body["error"] == "Content Too Large"


@ASGI_DB
def test_a_chunked_body_under_the_limit_is_read_on_asgi(acme, ann, bearer, settings):
    settings.MAX_REQUEST_SIZE_BYTES = 1000
    status, body = _asgi_chunked(acme, ann, bearer, _contact_body(600), piece=100)
    assert status == HTTPStatus.CREATED
    assert body["name"] == "Chunked"


@pytest.mark.parametrize(
    ("path", "login_path", "host"),
    [
        ("/api/auth/password", "/api/auth/login", "acme.test"),
        ("/api/platform/auth/password", "/api/platform/auth/login", "acme.test"),
    ],
)
def test_guessing_the_old_password_locks_the_account_out(
    path, login_path, host, request, low_lockout
):
    account = (tenant_account if "platform" not in path else platform_account)(request)
    tenant = request.getfixturevalue("acme") if "platform" not in path else None
    with use_tenant(tenant):
        access = issue_tokens(account, tenant)["access"]
    client = client_for(host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    answers = [
        client.post(
            path, {"old_password": f"guess-{n}", "new_password": "N3w-Pass-word"}, format="json"
        ).status_code
        for n in range(4)
    ]
    assert answers == [HTTPStatus.BAD_REQUEST] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]
    right = client.post(
        path, {"old_password": PASSWORD, "new_password": "N3w-Pass-word"}, format="json"
    )
    assert right.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(right["Retry-After"]) >= 1
    login = client_for(host).post(
        login_path, {"username_or_email": account.username, "password": PASSWORD}, format="json"
    )
    assert login.status_code == HTTPStatus.TOO_MANY_REQUESTS  # the same account lockout
