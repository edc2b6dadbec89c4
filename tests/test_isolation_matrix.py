"""Tenant isolation, proven for every route.

The routes are read from the URL configuration (`config.urls`) and the Channels routing
(`logstream.routing.websocket_urlpatterns`), so a new route cannot escape: each tenant-scoped
route needs an entry in `TENANT_CASES` (or `WS_CASES`), each platform route one in
`PLATFORM_CASES`, and a route without one fails the matrix, named.

Two tenants hold data with overlapping ids: `acme` (A, the host every request goes to) and
`globex` (B). For every tenant route and method, a request on A's host carrying B's token
or B's API key (as a bearer or in `X-Api-Key`), or a `tenant` / `tenant_id` naming B (query
string and body), answers 403 `Tenant access denied`; B's object ids answer 404 or A's own
object; and B's database is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import pyotp
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import audit
from accounts.links import email_verification_tokens, password_reset_tokens
from accounts.models import (
    ApiKey,
    AuditEvent,
    MfaPolicy,
    RecoveryCode,
    RevokedToken,
    TotpDevice,
    User,
)
from accounts.tokens import issue_tokens
from addressbook.models import Contact
from config.paths import is_platform_path
from logstream.routing import websocket_urlpatterns
from tenants.context import use_tenant
from tests.factories import (
    PASSWORD,
    TOTP_SECRET,
    api_key_bearer,
    api_key_header,
    create_api_key,
    enrol_totp,
)
from tests.helpers import client_for, open_stream, sent_mail

pytestmark = pytest.mark.django_db(databases="__all__")

A_HOST = "acme.test"
B_MARK = "globex-secret"
DENIED = {"status": HTTPStatus.FORBIDDEN, "error": "Forbidden", "message": "Tenant access denied"}
SHARED_CONTACT, B_ONLY_CONTACT = 9001, 9002
SHARED_USER, B_ONLY_USER = 8002, 8003
SHARED_KEY, B_ONLY_KEY = 7001, 7002
BODY_METHODS = ("POST", "PUT", "PATCH")


# --- the routes ---------------------------------------------------------------------------
def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                # Django's admin site: one session-only application, checked as a whole.
                yield route
            else:
                yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


HTTP_ROUTES = sorted(set(_walk(get_resolver().url_patterns)))
TENANT_ROUTES = [r for r in HTTP_ROUTES if not is_platform_path("/" + r.rstrip("/"))]
PLATFORM_ROUTES = [r for r in HTTP_ROUTES if is_platform_path("/" + r.rstrip("/"))]
WS_ROUTES = [str(entry.pattern) for entry in websocket_urlpatterns]


# --- the two tenants' data ----------------------------------------------------------------
@dataclass
class World:
    a: object
    b: object
    a_admin: User
    a_token: dict
    a_refresh: str
    b_token: dict
    b_refresh: str
    a_key: str
    b_key: str
    created: dict = field(default_factory=dict)


def _contact(tenant, pk: int, name: str) -> None:
    with use_tenant(tenant):
        Contact.objects.create(id=pk, name=name, email=f"{name}@example.test")


def _tokens(user, tenant) -> dict:
    with use_tenant(tenant):
        return issue_tokens(user, tenant)


@pytest.fixture
def world(acme, globex, make_user) -> World:
    a_admin = make_user(acme, "ann", role=User.Role.ADMIN, id=8001)
    make_user(acme, "amy", role=User.Role.MEMBER, id=SHARED_USER)
    b_admin = make_user(globex, "gus", role=User.Role.ADMIN, id=8001, email="gus@globex.example")
    enrol_totp(globex, b_admin)  # his password login answers B's mfa_token
    b_member = make_user(
        globex, "gil", role=User.Role.MEMBER, id=SHARED_USER, email="gil@globex.example"
    )
    enrol_totp(globex, b_member)  # what `api/users/<int:pk>/mfa` on A's host must not reset
    make_user(globex, "bob", role=User.Role.MEMBER, id=B_ONLY_USER, email="bob@globex.example")
    _contact(acme, SHARED_CONTACT, "acme-contact")
    _contact(globex, SHARED_CONTACT, f"{B_MARK}-shared")
    _contact(globex, B_ONLY_CONTACT, f"{B_MARK}-only")
    with use_tenant(globex):
        audit.record_event(
            audit.ROLE_CHANGED, actor=b_admin, target=audit.Target("user", "1", B_MARK)
        )
    a_pair, b_pair = _tokens(a_admin, acme), _tokens(b_admin, globex)
    _, a_key = create_api_key(acme, a_admin, name="acme-key", id=SHARED_KEY)
    write = ["contacts:write"]
    _, b_key = create_api_key(globex, b_admin, name=f"{B_MARK}-key", scopes=write, id=SHARED_KEY)
    create_api_key(globex, b_admin, name=f"{B_MARK}-only-key", id=B_ONLY_KEY)
    return World(
        a=acme,
        b=globex,
        a_admin=a_admin,
        a_token={"HTTP_AUTHORIZATION": f"Bearer {a_pair['access']}"},
        a_refresh=a_pair["refresh"],
        b_token={"HTTP_AUTHORIZATION": f"Bearer {b_pair['access']}"},
        b_refresh=b_pair["refresh"],
        a_key=a_key,
        b_key=b_key,
    )


def snapshot(tenant) -> dict:
    """Everything a request could read or change in a tenant's database."""
    with use_tenant(tenant):
        return {
            "contacts": list(Contact.objects.order_by("id").values()),
            "users": list(
                User.objects.order_by("id").values(
                    "id",
                    "username",
                    "email",
                    "password",
                    "role",
                    "is_active",
                    "tokens_valid_after",
                    "email_verified",
                )
            ),
            "revoked": sorted(RevokedToken.objects.values_list("jti", flat=True)),
            "outstanding": sorted(OutstandingToken.objects.values_list("jti", flat=True)),
            "blacklisted": sorted(BlacklistedToken.objects.values_list("token_id", flat=True)),
            "api_keys": list(ApiKey.objects.order_by("id").values()),
            "audit": list(AuditEvent.objects.order_by("id").values()),
            "totp": list(TotpDevice.objects.order_by("id").values()),
            "recovery_codes": list(RecoveryCode.objects.order_by("id").values()),
            "mfa_policy": list(MfaPolicy.objects.values("id", "required")),
        }


def assert_no_b_data(response) -> None:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    for needle in (B_MARK, "gus", "gil", "bob@globex"):
        assert needle.encode() not in content, (needle, content[:300])


# --- the cases ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """How to exercise one tenant route: its methods with a valid body each, the kind of
    object its `<int:pk>` names, whether it authenticates (public routes ignore a token),
    and a check that it serves only A's own data when handed B's identifiers."""

    methods: dict[str, Callable[[World], dict] | None]
    own_data: Callable[[World], None]
    pk: str | None = None
    public: bool = False


def request(world: World, method: str, path: str, body=None, auth=None, query: str = ""):
    client = client_for(A_HOST)
    target = f"{path}?{query}" if query else path
    kwargs = dict(auth if auth is not None else world.a_token)
    if method in BODY_METHODS or body is not None:
        return client.generic(
            method, target, data=_json(body or {}), content_type="application/json", **kwargs
        )
    return client.generic(method, target, **kwargs)


def _json(body: dict) -> str:
    return json.dumps(body)


def contact_body(world):
    return {"name": "Matrix Contact"}


def signup_body(world):
    return {
        "username": f"new{uuid.uuid4().hex[:8]}",
        "email": f"{uuid.uuid4().hex[:8]}@example.test",
        "password": PASSWORD,
    }


def login_body(world):
    return {"username_or_email": "ann", "password": PASSWORD}


def user_create_body(world):
    return {"username": "newuser", "email": "newuser@example.test", "password": PASSWORD}


def password_body(world):
    return {"old_password": PASSWORD, "new_password": "N3w-Secret-pw-x"}


def own_signup(world):
    # A username that exists only in B is free in A: the signup is A's alone.
    response = request(
        world,
        "POST",
        "/api/auth/signup",
        {"username": "gus", "email": "gus2@example.test", "password": PASSWORD},
    )
    assert response.status_code == HTTPStatus.CREATED
    with use_tenant(world.a):
        assert User.objects.filter(username="gus").exists()


def own_login(world):
    response = request(
        world,
        "POST",
        "/api/auth/login",
        {"username_or_email": "gus", "password": PASSWORD},
        auth={},
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["message"] == "Invalid credentials"


def own_refresh(world):
    response = request(world, "POST", "/api/auth/refresh", {"refresh": world.b_refresh}, auth={})
    assert response.status_code in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN)
    return assert_b_refresh_still_works


def own_logout(world):
    response = request(world, "POST", "/api/auth/logout", {"refresh": world.b_refresh})
    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
    return assert_b_refresh_still_works


def assert_b_refresh_still_works(world):
    response = client_for("globex.test").post(
        "/api/auth/refresh", {"refresh": world.b_refresh}, format="json"
    )
    assert response.status_code == HTTPStatus.OK


def own_me(world):
    body = request(world, "GET", "/api/auth/me").json()
    assert (body["id"], body["username"], body["tenant"]) == (8001, "ann", "acme")


def own_password(world):
    response = request(world, "POST", "/api/auth/password", password_body(world))
    assert response.status_code == HTTPStatus.OK  # A's password; B's gus (same id) untouched


def _b_link_tokens(world) -> tuple[str, str]:
    """A reset and a verification token of B's admin, who has A's admin's id."""
    with use_tenant(world.b):
        gus = User.objects.get(username="gus")
        return password_reset_tokens.make_link_token(gus), email_verification_tokens.make_token(gus)


def reset_body(world):
    return {"email": "gus@globex.example"}


def own_password_reset(world):
    # B's address on A's host: the same answer as any address, and nothing sent to B.
    response = request(world, "POST", "/api/auth/password-reset", reset_body(world), auth={})
    assert response.status_code == HTTPStatus.ACCEPTED
    assert sent_mail() == []


def own_password_reset_confirm(world):
    reset_token, _ = _b_link_tokens(world)
    body = {"token": reset_token, "new_password": "N3w-Secret-pw-x"}
    response = request(world, "POST", "/api/auth/password-reset/confirm", body, auth={})
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    with use_tenant(world.a):
        assert User.objects.get(pk=world.a_admin.pk).check_password(PASSWORD)


def own_verify_email(world):
    response = request(world, "POST", "/api/auth/verify-email")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert [m.to for m in sent_mail()] == [[world.a_admin.email]]


def own_verify_email_confirm(world):
    _, verification_token = _b_link_tokens(world)
    body = {"token": verification_token}
    response = request(world, "POST", "/api/auth/verify-email/confirm", body, auth={})
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    with use_tenant(world.a):
        assert not User.objects.get(pk=world.a_admin.pk).email_verified


def own_user_list(world):
    response = request(world, "GET", "/api/users")
    assert response.status_code == HTTPStatus.OK
    assert_no_b_data(response)


def own_user_detail(world):
    for method, body in (("GET", None), ("PATCH", {"role": "member"}), ("DELETE", None)):
        response = request(world, method, f"/api/users/{B_ONLY_USER}", body)
        assert response.status_code == HTTPStatus.NOT_FOUND, (method, response.content)
    shared = request(world, "GET", f"/api/users/{SHARED_USER}").json()
    assert shared["username"] == "amy"
    assert (
        request(world, "PATCH", f"/api/users/{SHARED_USER}", {"role": "admin"}).status_code
        == HTTPStatus.OK
    )
    assert (
        request(world, "DELETE", f"/api/users/{SHARED_USER}").status_code == HTTPStatus.NO_CONTENT
    )


def own_audit(world):
    assert (
        request(world, "POST", "/api/auth/login", login_body(world), auth={}).status_code
        == HTTPStatus.OK
    )
    for query in ("", "user=gus", f"user={B_MARK}", "event=role_changed"):
        response = request(world, "GET", "/api/audit", query=query)
        assert response.status_code == HTTPStatus.OK
        assert_no_b_data(response)
    results = request(world, "GET", "/api/audit").json()["results"]
    # Newest first: the login above, then the world's API key, made by ann.
    assert [(e["event"], e["actor"]["username"]) for e in results] == [
        ("login", "ann"),
        ("api_key_created", "ann"),
    ]


def own_contact_list(world):
    response = request(world, "GET", "/api/address-book")
    assert [c["name"] for c in response.json()["results"]] == ["acme-contact"]
    assert_no_b_data(request(world, "GET", "/api/address-book", query=f"search={B_MARK}"))


def own_export(world):
    for fmt in ("csv", "json"):
        response = request(world, "GET", "/api/address-book/export", query=f"format={fmt}")
        assert response.status_code == HTTPStatus.OK
        assert_no_b_data(response)


def own_stats(world):
    response = request(world, "GET", "/api/address-book/stats")
    assert response.json()["total"] == 1


def own_contact_detail(world):
    for method, body in (
        ("GET", None),
        ("PUT", {"name": "x"}),
        ("PATCH", {"name": "x"}),
        ("DELETE", None),
    ):
        response = request(world, method, f"/api/address-book/{B_ONLY_CONTACT}", body)
        assert response.status_code == HTTPStatus.NOT_FOUND, (method, response.content)
    assert (
        request(world, "GET", f"/api/address-book/{SHARED_CONTACT}").json()["name"]
        == "acme-contact"
    )
    assert (
        request(world, "PUT", f"/api/address-book/{SHARED_CONTACT}", {"name": "a1"}).status_code
        == HTTPStatus.OK
    )
    assert (
        request(world, "PATCH", f"/api/address-book/{SHARED_CONTACT}", {"name": "a2"}).status_code
        == HTTPStatus.OK
    )
    assert (
        request(world, "DELETE", f"/api/address-book/{SHARED_CONTACT}").status_code
        == HTTPStatus.NO_CONTENT
    )


def api_key_body(world):
    return {"name": "matrix key", "scopes": ["contacts:read"]}


def own_api_key_list(world):
    response = request(world, "GET", "/api/api-keys")
    assert [k["name"] for k in response.json()["results"]] == ["acme-key"]
    assert_no_b_data(response)


def own_api_key_detail(world):
    response = request(world, "DELETE", f"/api/api-keys/{B_ONLY_KEY}")
    assert response.status_code == HTTPStatus.NOT_FOUND
    response = request(world, "DELETE", f"/api/api-keys/{SHARED_KEY}")
    assert response.status_code == HTTPStatus.NO_CONTENT  # A's key; B's (same id) untouched
    return assert_b_key_still_works


def assert_b_key_still_works(world):
    response = client_for("globex.test").get("/api/address-book", **api_key_bearer(world.b_key))
    assert response.status_code == HTTPStatus.OK


def code_body(world):
    return {"code": "000000"}


def login_mfa_body(world):
    return {"mfa_token": "not-a-token", "code": "000000"}


def b_mfa_token() -> str:
    """The mfa_token of a password login of B's gus (enrolled): no write in B."""
    response = client_for("globex.test").post(
        "/api/auth/login", {"username_or_email": "gus", "password": PASSWORD}, format="json"
    )
    return response.json()["mfa_token"]


def own_login_mfa(world):
    token = b_mfa_token()
    code = pyotp.TOTP(TOTP_SECRET).now()
    response = request(
        world, "POST", "/api/auth/login/mfa", {"mfa_token": token, "code": code}, auth={}
    )
    assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, DENIED)

    def b_token_still_works(world):
        response = client_for("globex.test").post(
            "/api/auth/login/mfa", {"mfa_token": token, "code": code}, format="json"
        )
        assert response.status_code == HTTPStatus.OK

    return b_token_still_works


def own_totp(world):
    response = request(world, "POST", "/api/auth/mfa/totp")
    assert response.status_code == HTTPStatus.OK
    with use_tenant(world.a):
        assert TotpDevice.objects.filter(user=world.a_admin).exists()
    # Gus (B, the same id as ann) has no authenticator to remove on A's host.
    response = request(world, "DELETE", "/api/auth/mfa/totp", {"code": "000000"})
    assert response.status_code == HTTPStatus.CONFLICT


def own_totp_confirm(world):
    response = request(world, "POST", "/api/auth/mfa/totp/confirm", {"code": "000000"})
    assert response.status_code == HTTPStatus.CONFLICT  # nothing pending in A


def own_mfa_policy(world):
    response = request(world, "PATCH", "/api/auth/mfa/policy", {"required": True})
    assert response.json() == {"required": True}
    with use_tenant(world.a):
        assert MfaPolicy.objects.get().required


def own_user_mfa(world):
    response = request(world, "DELETE", f"/api/users/{B_ONLY_USER}/mfa")
    assert response.status_code == HTTPStatus.NOT_FOUND
    # A's amy has no authenticator; B's gil of the same id is not looked at.
    response = request(world, "DELETE", f"/api/users/{SHARED_USER}/mfa")
    assert response.status_code == HTTPStatus.CONFLICT


TENANT_CASES: dict[str, Case] = {
    "api/users/<int:pk>/mfa": Case({"DELETE": None}, own_user_mfa, pk="user"),
    "api/auth/login/mfa": Case({"POST": login_mfa_body}, own_login_mfa, public=True),
    "api/auth/mfa/totp": Case({"POST": None, "DELETE": code_body}, own_totp),
    "api/auth/mfa/totp/confirm": Case({"POST": code_body}, own_totp_confirm),
    "api/auth/mfa/policy": Case(
        {"GET": None, "PATCH": lambda w: {"required": False}}, own_mfa_policy
    ),
    "api/auth/signup": Case({"POST": signup_body}, own_signup, public=True),
    "api/auth/login": Case({"POST": login_body}, own_login, public=True),
    "api/auth/refresh": Case(
        {"POST": lambda w: {"refresh": w.a_refresh}}, own_refresh, public=True
    ),
    "api/auth/logout": Case({"POST": lambda w: {}}, own_logout),
    "api/auth/me": Case({"GET": None}, own_me),
    "api/auth/password": Case({"POST": password_body}, own_password),
    "api/auth/password-reset": Case({"POST": reset_body}, own_password_reset, public=True),
    "api/auth/password-reset/confirm": Case(
        {"POST": lambda w: {"token": _b_link_tokens(w)[0], "new_password": "N3w-Secret-pw-x"}},
        own_password_reset_confirm,
        public=True,
    ),
    "api/auth/verify-email": Case({"POST": None}, own_verify_email),
    "api/auth/verify-email/confirm": Case(
        {"POST": lambda w: {"token": _b_link_tokens(w)[1]}}, own_verify_email_confirm, public=True
    ),
    "api/users": Case({"GET": None, "POST": user_create_body}, own_user_list),
    "api/users/<int:pk>": Case(
        {"GET": None, "PATCH": lambda w: {"role": "member"}, "DELETE": None},
        own_user_detail,
        pk="user",
    ),
    "api/audit": Case({"GET": None}, own_audit),
    "api/address-book": Case({"GET": None, "POST": contact_body}, own_contact_list),
    "api/address-book/export": Case({"GET": None}, own_export),
    "api/address-book/stats": Case({"GET": None}, own_stats),
    "api/address-book/<int:pk>": Case(
        {"GET": None, "PUT": contact_body, "PATCH": contact_body, "DELETE": None},
        own_contact_detail,
        pk="contact",
    ),
    "api/api-keys": Case({"GET": None, "POST": api_key_body}, own_api_key_list),
    "api/api-keys/<int:pk>": Case({"DELETE": None}, own_api_key_detail, pk="api_key"),
}


def path_of(route: str, case: Case) -> str:
    """A concrete path for `route`: its `<int:pk>` names an object both tenants have."""
    pk = {"user": SHARED_USER, "contact": SHARED_CONTACT, "api_key": SHARED_KEY}.get(case.pk)
    return "/" + route.replace("<int:pk>", str(pk))


def case_for(route: str) -> Case:
    case = TENANT_CASES.get(route)
    if case is None:
        pytest.fail(f"tenant route {route!r} has no isolation case: add one to TENANT_CASES")
    return case


# --- the matrix: tenant HTTP routes ------------------------------------------------------
FOREIGN_CREDENTIALS = {
    "token": lambda world: world.b_token,
    "api key as bearer": lambda world: api_key_bearer(world.b_key),
    "api key header": lambda world: api_key_header(world.b_key),
}


@pytest.mark.parametrize("route", TENANT_ROUTES)
@pytest.mark.parametrize("credential", FOREIGN_CREDENTIALS)
def test_token_of_other_tenant_never_reaches_its_data(route, credential, world):
    case = case_for(route)
    before = snapshot(world.b)
    auth = FOREIGN_CREDENTIALS[credential](world)
    for method, body in case.methods.items():
        payload = body(world) if body else None
        response = request(world, method, path_of(route, case), payload, auth=auth)
        if case.public:
            # No authentication here: the token is ignored, the request is A's alone.
            assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, (
                method,
                response.content,
            )
            assert_no_b_data(response)
        else:
            assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, DENIED), method
    assert snapshot(world.b) == before


@pytest.mark.parametrize("route", TENANT_ROUTES)
@pytest.mark.parametrize("where", ["query", "body"])
@pytest.mark.parametrize("claim", ["tenant", "tenant_id"])
def test_tenant_field_naming_other_tenant_is_forbidden(route, where, claim, world):
    case = case_for(route)
    value = "globex" if claim == "tenant" else world.b.pk
    before_a, before_b = snapshot(world.a), snapshot(world.b)
    for method, body in case.methods.items():
        payload = body(world) if body else None
        if where == "query":
            response = request(
                world, method, path_of(route, case), payload, query=f"{claim}={value}"
            )
        else:
            payload = {**(payload or {}), claim: value}
            response = request(world, method, path_of(route, case), payload)
        assert (response.status_code, response.json()) == (HTTPStatus.FORBIDDEN, DENIED), (
            method,
            where,
        )
    assert snapshot(world.a) == before_a
    assert snapshot(world.b) == before_b


@pytest.mark.parametrize("route", TENANT_ROUTES)
def test_identifiers_of_other_tenant_reach_only_own_data(route, world):
    case = case_for(route)
    before = snapshot(world.b)
    then = case.own_data(world)
    assert snapshot(world.b) == before
    if then is not None:  # a check on B's host, which changes B (a refresh rotates)
        then(world)


def test_every_case_names_a_live_route():
    assert set(TENANT_CASES) <= set(TENANT_ROUTES), set(TENANT_CASES) - set(TENANT_ROUTES)
    assert set(PLATFORM_CASES) <= set(PLATFORM_ROUTES), set(PLATFORM_CASES) - set(PLATFORM_ROUTES)
    assert set(WS_CASES) <= set(WS_ROUTES)


def test_the_matrix_sees_every_kind_of_route():
    assert "api/address-book/<int:pk>" in TENANT_ROUTES
    assert "api/platform/tenants/<slug:slug>" in PLATFORM_ROUTES
    assert "admin/" in PLATFORM_ROUTES
    assert "api/ws/logs" in WS_ROUTES


# --- platform routes: a tenant token grants nothing ---------------------------------------
@dataclass(frozen=True)
class PlatformCase:
    """`requests`: (method, path, body); `authenticated`: the route checks a token (a tenant
    token gets 403 `Tenant access denied`); otherwise it is public or session-only and a
    tenant token must change nothing: same status as no credentials at all."""

    requests: tuple[tuple[str, str, dict | None], ...]
    authenticated: bool


PLATFORM_CASES: dict[str, PlatformCase] = {
    "": PlatformCase((("GET", "/", None),), authenticated=False),
    "api/platform/auth/login": PlatformCase(
        (("POST", "/api/platform/auth/login", {"username_or_email": "ann", "password": PASSWORD}),),
        authenticated=False,
    ),
    "api/platform/auth/refresh": PlatformCase(
        (("POST", "/api/platform/auth/refresh", {"refresh": "not-a-token"}),),
        authenticated=False,
    ),
    "api/platform/auth/logout": PlatformCase(
        (("POST", "/api/platform/auth/logout", {"refresh": ""}),), authenticated=True
    ),
    "api/platform/auth/password": PlatformCase(
        (
            (
                "POST",
                "/api/platform/auth/password",
                {"old_password": PASSWORD, "new_password": "N3w-Staff-pass!"},
            ),
        ),
        authenticated=True,
    ),
    "api/platform/tenants": PlatformCase(
        (
            ("GET", "/api/platform/tenants", None),
            (
                "POST",
                "/api/platform/tenants",
                {"slug": "hijack", "name": "Hijack", "domains": ["hijack.test"]},
            ),
        ),
        authenticated=True,
    ),
    "api/platform/tenants/<slug:slug>": PlatformCase(
        (
            ("GET", "/api/platform/tenants/globex", None),
            ("PATCH", "/api/platform/tenants/globex", {"status": "suspended"}),
            ("DELETE", "/api/platform/tenants/globex", None),
        ),
        authenticated=True,
    ),
    "api/platform/tenants/<slug:slug>/health": PlatformCase(
        (("GET", "/api/platform/tenants/globex/health", None),), authenticated=True
    ),
    "api/platform/tenants/<slug:slug>/backups": PlatformCase(
        (("POST", "/api/platform/tenants/globex/backups", None),), authenticated=True
    ),
    "api/platform/tenants/<slug:slug>/exports": PlatformCase(
        (("POST", "/api/platform/tenants/globex/exports", None),), authenticated=True
    ),
    "api/platform/tenants/<slug:slug>/archives": PlatformCase(
        (("GET", "/api/platform/tenants/globex/archives", None),), authenticated=True
    ),
    "api/platform/tenants/<slug:slug>/archives/<int:archive_id>": PlatformCase(
        (("GET", "/api/platform/tenants/globex/archives/1", None),), authenticated=True
    ),
    "api/platform/tenants/<slug:slug>/move": PlatformCase(
        (
            ("GET", "/api/platform/tenants/globex/move", None),
            ("POST", "/api/platform/tenants/globex/move", {"server": "default"}),
        ),
        authenticated=True,
    ),
    "api/platform/tenants/<slug:slug>/move/finish": PlatformCase(
        (("POST", "/api/platform/tenants/globex/move/finish", None),), authenticated=True
    ),
    "api/platform/auth/login/mfa": PlatformCase(
        (("POST", "/api/platform/auth/login/mfa", {"mfa_token": "x", "code": "000000"}),),
        authenticated=False,
    ),
    "api/platform/auth/mfa/totp": PlatformCase(
        (
            ("POST", "/api/platform/auth/mfa/totp", None),
            ("DELETE", "/api/platform/auth/mfa/totp", {"code": "000000"}),
        ),
        authenticated=True,
    ),
    "api/platform/auth/mfa/totp/confirm": PlatformCase(
        (("POST", "/api/platform/auth/mfa/totp/confirm", {"code": "000000"}),),
        authenticated=True,
    ),
    "health": PlatformCase((("GET", "/health", None),), authenticated=False),
    "ready": PlatformCase((("GET", "/ready", None),), authenticated=False),
    "metrics": PlatformCase((("GET", "/metrics", None),), authenticated=False),
    ".well-known/jwks.json": PlatformCase(
        (("GET", "/.well-known/jwks.json", None),), authenticated=False
    ),
    "api/schema/": PlatformCase((("GET", "/api/schema/", None),), authenticated=False),
    "api/docs/": PlatformCase((("GET", "/api/docs/", None),), authenticated=False),
    "api/logs": PlatformCase((("GET", "/api/logs", None),), authenticated=False),
    "admin/logs/": PlatformCase((("GET", "/admin/logs/", None),), authenticated=False),
    "admin/login/": PlatformCase((("GET", "/admin/login/", None),), authenticated=False),
    "admin/": PlatformCase(
        (("GET", "/admin/", None), ("GET", "/admin/tenants/tenant/", None)), authenticated=False
    ),
}


TENANT_CREDENTIALS = {
    "token": lambda world: world.a_token,
    "api key as bearer": lambda world: api_key_bearer(world.a_key),
    "api key header": lambda world: api_key_header(world.a_key),
}


@pytest.mark.parametrize("route", PLATFORM_ROUTES)
@pytest.mark.parametrize("host", [A_HOST, "platform.example"])
@pytest.mark.parametrize("credential", TENANT_CREDENTIALS)
def test_tenant_token_grants_nothing_on_platform_routes(route, host, credential, world):
    case = PLATFORM_CASES.get(route)
    if case is None:
        pytest.fail(f"platform route {route!r} has no case: add one to PLATFORM_CASES")
    from tenants.models import Tenant

    tenants_before = list(Tenant.objects.order_by("slug").values("slug", "status"))
    client = client_for(host)
    for method, path, body in case.requests:
        data = {"data": _json(body), "content_type": "application/json"} if body else {}
        with_token = client.generic(method, path, **data, **TENANT_CREDENTIALS[credential](world))
        if case.authenticated:
            assert (with_token.status_code, with_token.json()) == (HTTPStatus.FORBIDDEN, DENIED), (
                method,
                path,
            )
        else:
            without = client.generic(method, path, **data)
            assert with_token.status_code == without.status_code, (method, path)
            assert with_token.status_code != HTTPStatus.OK or method == "GET", (method, path)
    assert list(Tenant.objects.order_by("slug").values("slug", "status")) == tenants_before


# --- WebSocket routes ---------------------------------------------------------------------
def _log(tenant, message: str) -> None:
    with use_tenant(tenant):
        logging.getLogger("addressbook.isolation").warning(message)


async def ws_foreign_token_is_rejected(path: str, world: World) -> None:
    raw = world.b_token["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    for kwargs in (
        {"headers": [(b"authorization", world.b_token["HTTP_AUTHORIZATION"].encode())]},
        {"query": f"token={raw}"},
        {"headers": [(b"cookie", f"access_token={raw}".encode())]},
        {"headers": [(b"authorization", f"Bearer {world.b_key}".encode())]},
        {"headers": [(b"x-api-key", world.b_key.encode())]},
    ):
        communicator, connected = await open_stream(host=A_HOST, path=f"/{path}", **kwargs)
        assert not connected, kwargs
        await communicator.disconnect()


async def ws_tenant_claim_never_widens_the_stream(path: str, world: World) -> None:
    raw = world.a_token["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    communicator, connected = await open_stream(
        host=A_HOST, path=f"/{path}", query=f"token={raw}&tenant=globex&tenant_id={world.b.pk}"
    )
    if not connected:
        return  # refusing the claim is as good as ignoring it
    b_marker, a_marker = f"{B_MARK}-{uuid.uuid4().hex}", f"acme-{uuid.uuid4().hex}"
    await asyncio.to_thread(_log, world.b, b_marker)
    await asyncio.to_thread(_log, world.a, a_marker)
    frames = []
    async with asyncio.timeout(5):
        while not any(a_marker in f for f in frames):
            frames.append(await communicator.receive_from(timeout=5))
    assert not any(B_MARK in f for f in frames)
    await communicator.disconnect()


WS_CASES: dict[str, tuple[Callable, ...]] = {
    "api/ws/logs": (ws_foreign_token_is_rejected, ws_tenant_claim_never_widens_the_stream),
    "logs": (ws_foreign_token_is_rejected, ws_tenant_claim_never_widens_the_stream),
}


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("path", WS_ROUTES)
async def test_websocket_routes_keep_tenants_apart(path, world):
    checks = WS_CASES.get(path)
    if checks is None:
        pytest.fail(f"WebSocket route {path!r} has no isolation case: add one to WS_CASES")
    for check in checks:
        await check(path, world)
