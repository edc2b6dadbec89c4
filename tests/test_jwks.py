"""Public-key tokens: EdDSA and RS256 signatures with a `kid`, the JSON Web Key Set at
`/.well-known/jwks.json`, key rotation and retirement, and HS256 unchanged as the default."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings as django_settings
from django.core import checks
from django.core.management import CommandError
from django.utils import timezone

from accounts import keys
from accounts.checks import check_token_signing_keys
from accounts.jwks import JWKS_MAX_AGE
from tenants.models import Tenant
from tenants.resolution import resolver
from tests.factories import access_token, bearer_header
from tests.helpers import client_for, me, open_stream, platform_login, run_command, tokens_for
from tests.leak_collector import collector

pytestmark = pytest.mark.django_db(databases="__all__")

JWKS = "/.well-known/jwks.json"
INVALID = {"status": 401, "error": "Unauthorized", "message": "Invalid token"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
BASE_DIR = Path(django_settings.BASE_DIR)


def b64(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def fetch_jwks(host: str = "anything.example") -> dict:
    response = client_for(host).get(JWKS)
    assert response.status_code == HTTPStatus.OK
    return response.json()


def verify_as_an_outside_service(token: str, jwks: dict) -> dict:
    """What another service does with PyJWT alone: the key named by the token's `kid`
    in the published set, the algorithm pinned to what the set says."""
    key_set = jwt.PyJWKSet.from_dict(jwks)
    key = key_set[header_of(token)["kid"]]
    return jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=django_settings.JWT_AUDIENCE,
        issuer=django_settings.JWT_ISSUER,
    )


def rotate(*args) -> str:
    return run_command("rotate_jwt_keys", *args)


@pytest.fixture
def key_dir(settings, tmp_path) -> Path:
    settings.JWT_KEY_DIR = tmp_path / "jwt-keys"
    return settings.JWT_KEY_DIR


@pytest.fixture(params=["EdDSA", "RS256"])
def algorithm(request, settings, key_dir) -> str:
    """Tokens signed with a key of the ring, one key made by the rotation command."""
    settings.JWT_ALGORITHM = request.param
    rotate()
    return request.param


def current_kid() -> str:
    return keys.load_key_ring().current(django_settings.JWT_ALGORITHM).kid


# --- signing and publishing -----------------------------------------------------------------
def test_login_token_verifies_with_the_published_key_alone(algorithm, ann):
    pair = tokens_for("acme.test", "ann")
    jwks = fetch_jwks()
    for token in (pair["access"], pair["refresh"]):
        assert header_of(token) == {"alg": algorithm, "kid": current_kid(), "typ": "JWT"}
        claims = verify_as_an_outside_service(token, jwks)
        assert (claims["tenant"], claims["user_id"]) == ("acme", str(ann.pk))
    assert me("acme.test", pair["access"]).status_code == HTTPStatus.OK


def test_jwks_lists_the_current_key_as_a_public_jwk_of_its_type(algorithm):
    (jwk,) = fetch_jwks()["keys"]
    shape = {"EdDSA": {"kty", "crv", "x"}, "RS256": {"kty", "n", "e"}}[algorithm]
    assert set(jwk) == shape | {"kid", "use", "alg"}
    assert (jwk["kid"], jwk["use"], jwk["alg"]) == (current_kid(), "sig", algorithm)
    if algorithm == "EdDSA":
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    else:
        assert (jwk["kty"], jwk["e"]) == ("RSA", "AQAB")


def test_jwks_never_carries_private_material(algorithm, key_dir):
    body = client_for("acme.test").get(JWKS).content.decode()
    pem = (key_dir / f"{current_kid()}.pem").read_text()
    assert pem.splitlines()[1] not in body
    assert "PRIVATE" not in body
    for jwk in json.loads(body)["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk)


@pytest.mark.parametrize("host", ["acme.test", "globex.test", "nobody.example", "localhost"])
def test_jwks_is_served_the_same_on_any_host_and_is_cacheable(algorithm, host, acme, globex):
    response = client_for(host).get(JWKS)
    assert response.status_code == HTTPStatus.OK
    assert response.json() == fetch_jwks("platform.example")
    cache_control = {part.strip() for part in response.headers["Cache-Control"].split(",")}
    assert {"public", f"max-age={JWKS_MAX_AGE}"} <= cache_control


def test_jwks_is_served_on_a_suspended_tenants_host(algorithm, acme):
    Tenant.objects.filter(pk=acme.pk).update(status=Tenant.Status.SUSPENDED)
    resolver.invalidate()
    assert client_for("acme.test").get(JWKS).status_code == HTTPStatus.OK


def test_jwks_answers_head_without_a_body(algorithm):
    response = client_for("acme.test").head(JWKS)
    assert response.status_code == HTTPStatus.OK
    assert response.content == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_jwks_answers_other_methods_405_in_the_envelope(method, acme):
    response = client_for("acme.test").generic(
        method, JWKS, data="not json", content_type="text/plain"
    )
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    body = response.json()
    assert (body["status"], body["error"]) == (405, "Method Not Allowed")
    assert set(body) == {"status", "error", "message"}


def test_a_tenant_claim_of_another_tenant_on_the_jwks_is_refused(acme):
    response = client_for("acme.test").get(JWKS, {"tenant": "globex"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


# --- HS256, the default -----------------------------------------------------------------------
def test_hs256_stays_the_default_and_publishes_no_key(settings, ann):
    assert settings.JWT_ALGORITHM == "HS256"
    response = client_for("acme.test").get(JWKS)
    assert response.json() == {"keys": []}
    assert settings.JWT_SECRET not in response.content.decode()
    access = tokens_for("acme.test", "ann")["access"]
    assert header_of(access) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(
        access, settings.JWT_SECRET, algorithms=["HS256"], audience=settings.JWT_AUDIENCE
    )
    assert claims["tenant"] == "acme"
    assert me("acme.test", access).status_code == HTTPStatus.OK


def test_hs256_publishes_no_key_even_when_the_ring_holds_one(settings, key_dir, ann):
    rotate("--algorithm", "EdDSA")
    assert fetch_jwks() == {"keys": []}
    assert header_of(tokens_for("acme.test", "ann")["access"])["alg"] == "HS256"


def test_with_hs256_a_token_signed_by_a_key_of_the_ring_is_refused(settings, key_dir, ann):
    rotate("--algorithm", "EdDSA")
    settings.JWT_ALGORITHM = "EdDSA"
    signed = tokens_for("acme.test", "ann")["access"]
    settings.JWT_ALGORITHM = "HS256"
    assert me("acme.test", signed).json() == INVALID


def test_switching_to_a_key_algorithm_ends_hs256_tokens(settings, key_dir, ann):
    hs256 = tokens_for("acme.test", "ann")["access"]
    settings.JWT_ALGORITHM = "EdDSA"
    rotate()
    assert me("acme.test", hs256).json() == INVALID


# --- rotation and retirement -----------------------------------------------------------------
def test_rotation_keeps_older_tokens_valid_and_signs_new_ones_with_the_new_key(algorithm, ann):
    old_kid = current_kid()
    old = tokens_for("acme.test", "ann")
    rotate()
    new_kid = current_kid()
    assert new_kid != old_kid
    new = tokens_for("acme.test", "ann")
    assert header_of(new["access"])["kid"] == new_kid
    assert me("acme.test", old["access"]).status_code == HTTPStatus.OK
    jwks = fetch_jwks()
    assert [k["kid"] for k in jwks["keys"]] == [new_kid, old_kid]
    assert verify_as_an_outside_service(old["access"], jwks)["user_id"] == str(ann.pk)
    refreshed = client_for("acme.test").post(
        "/api/auth/refresh", {"refresh": old["refresh"]}, format="json"
    )
    assert refreshed.status_code == HTTPStatus.OK
    assert header_of(refreshed.json()["refresh"])["kid"] == new_kid


def test_a_replaced_key_verifies_for_the_refresh_lifetime(algorithm, settings):
    old_kid = current_kid()
    before = timezone.now()
    rotate()
    (old,) = [k for k in keys.list_keys() if k.kid == old_kid]
    grace = timedelta(seconds=settings.REFRESH_TOKEN_TTL)
    assert old.status == keys.Status.PREVIOUS
    assert before + grace <= old.retire_after <= timezone.now() + grace


def test_retiring_a_key_refuses_its_tokens_and_removes_it_from_the_jwks(algorithm, ann, key_dir):
    old_kid = current_kid()
    old = tokens_for("acme.test", "ann")
    rotate()
    output = rotate(f"--retire={old_kid}")
    assert old_kid in output
    assert me("acme.test", old["access"]).json() == INVALID
    refreshed = client_for("acme.test").post(
        "/api/auth/refresh", {"refresh": old["refresh"]}, format="json"
    )
    assert refreshed.json() == INVALID
    assert [k["kid"] for k in fetch_jwks()["keys"]] == [current_kid()]
    assert not (key_dir / f"{old_kid}.pem").exists()
    assert me("acme.test", tokens_for("acme.test", "ann")["access"]).status_code == HTTPStatus.OK


def test_a_replaced_key_retires_by_itself_once_its_tokens_have_expired(
    algorithm, ann, key_dir, monkeypatch
):
    old_kid = current_kid()
    old = tokens_for("acme.test", "ann")
    rotate()
    later = timezone.now() + keys.retirement_grace() + timedelta(seconds=1)
    monkeypatch.setattr(keys, "timezone", SimpleNamespace(now=lambda: later))
    # The token itself has not expired (its `exp` is read on the real clock): the key has.
    assert me("acme.test", old["access"]).json() == INVALID
    assert [k["kid"] for k in fetch_jwks()["keys"]] == [current_kid()]
    assert old_kid in rotate("--retire-expired")
    assert not (key_dir / f"{old_kid}.pem").exists()
    (retired,) = [k for k in keys.list_keys() if k.kid == old_kid]
    assert retired.status == keys.Status.RETIRED


def test_the_current_key_cannot_be_retired(algorithm):
    kid = current_kid()
    with pytest.raises(CommandError, match="current"):
        rotate(f"--retire={kid}")
    assert keys.signing_key().kid == kid


def test_retiring_an_unknown_key_fails(algorithm):
    with pytest.raises(CommandError, match="No key"):
        rotate("--retire=nope")


def test_rotation_with_hs256_asks_for_an_algorithm(key_dir):
    with pytest.raises(CommandError, match="--algorithm"):
        rotate()
    assert not (key_dir / keys.INDEX_NAME).exists()


def test_key_files_are_private_to_their_owner(algorithm, key_dir):
    rotate()
    assert key_dir.stat().st_mode & 0o777 == 0o700
    pems = list(key_dir.glob("*.pem"))
    assert len(pems) == 2
    for path in [*pems, key_dir / keys.INDEX_NAME]:
        assert path.stat().st_mode & 0o077 == 0, path


def test_a_rotation_by_another_process_is_seen_at_the_next_token(algorithm, ann, key_dir):
    old = tokens_for("acme.test", "ann")  # this process has read the ring
    env = {
        **os.environ,
        "JWT_ALGORITHM": algorithm,
        "JWT_KEY_DIR": str(key_dir),
        "TESTING": "false",
        "DATABASE_URL": "sqlite:///:memory:",
        "REDIS_URL": "",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "rotate_jwt_keys"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    new_kid = re.search(r"New current \w+ key (\S+)\.", result.stdout).group(1)
    assert header_of(tokens_for("acme.test", "ann")["access"])["kid"] == new_kid
    assert me("acme.test", old["access"]).status_code == HTTPStatus.OK


# --- forged and confused tokens --------------------------------------------------------------
def valid_claims(user, tenant="acme") -> dict:
    now = int(time.time())
    return {
        "token_type": "access",
        "exp": now + 600,
        "iat": now,
        "jti": "f" * 32,
        "user_id": user.pk,
        "tenant": tenant,
        "aud": django_settings.JWT_AUDIENCE,
        "iss": django_settings.JWT_ISSUER,
    }


def hmac_token(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


def test_an_hs256_token_signed_with_the_public_key_is_refused(algorithm, ann):
    key = keys.signing_key()
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = key.public_jwk()
    for secret in (public_pem, json.dumps(jwk).encode(), (jwk.get("x") or jwk["n"]).encode()):
        forged = hmac_token(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid}, valid_claims(ann), secret
        )
        assert me("acme.test", forged).json() == INVALID


def test_an_alg_none_token_with_a_known_kid_is_refused(algorithm, ann):
    forged = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': current_kid()})}.{b64(valid_claims(ann))}."
    assert me("acme.test", forged).json() == INVALID


def foreign_key(alg: str):
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_token_with_an_unknown_kid_or_none_is_refused(algorithm, ann):
    stranger = foreign_key(algorithm)
    claims = valid_claims(ann)
    for headers in ({"kid": "unknown-kid"}, {"kid": current_kid()}, {}, {"kid": 7}):
        try:
            forged = jwt.encode(claims, stranger, algorithm=algorithm, headers=headers)
        except jwt.InvalidTokenError:  # PyJWT refuses a non-string kid itself: craft it
            forged = jwt.encode(claims, stranger, algorithm=algorithm)
            _head, body, signature = forged.split(".")
            forged = f"{b64({'alg': algorithm, 'typ': 'JWT', 'kid': 7})}.{body}.{signature}"
        assert me("acme.test", forged).json() == INVALID, headers


def test_a_token_of_another_algorithm_is_refused(algorithm, ann):
    other = "RS256" if algorithm == "EdDSA" else "EdDSA"
    forged = jwt.encode(
        valid_claims(ann), foreign_key(other), algorithm=other, headers={"kid": current_kid()}
    )
    assert me("acme.test", forged).json() == INVALID


def test_a_tampered_token_is_refused(algorithm, ann):
    access = tokens_for("acme.test", "ann")["access"]
    head, _body, signature = access.split(".")
    tampered = f"{head}.{b64(valid_claims(ann) | {'user_id': ann.pk + 1})}.{signature}"
    assert me("acme.test", tampered).json() == INVALID


def test_the_tenant_rule_is_unchanged_with_key_signed_tokens(algorithm, ann, globex):
    access = tokens_for("acme.test", "ann")["access"]
    response = client_for("globex.test").get("/api/auth/me", **bearer_header(access))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["message"] == "Tenant access denied"


def test_logout_still_revokes_key_signed_tokens(algorithm, ann):
    pair = tokens_for("acme.test", "ann")
    client = client_for("acme.test")
    assert client.post("/api/auth/logout", **bearer_header(pair["access"])).status_code == 204
    assert me("acme.test", pair["access"]).json() == INVALID


def test_platform_tokens_are_signed_and_verified_with_the_key(algorithm, staff):
    access = platform_login().json()["access"]
    assert header_of(access)["kid"] == current_kid()
    assert verify_as_an_outside_service(access, fetch_jwks())["tenant"] is None
    response = client_for("any.example").get("/api/platform/tenants", **bearer_header(access))
    assert response.status_code == HTTPStatus.OK


@pytest.fixture
def stream_token(algorithm, acme, ann) -> str:
    """An access token of Ann's, issued here: no database work in the test's threads."""
    return access_token(ann, acme)


@pytest.mark.django_db(databases="__all__", transaction=True)
async def test_the_log_stream_verifies_key_signed_tokens_by_kid(stream_token):
    from asgiref.sync import sync_to_async

    header = [(b"authorization", f"Bearer {stream_token}".encode())]
    communicator, connected = await open_stream(headers=header)
    assert connected
    await communicator.disconnect()
    await sync_to_async(rotate)()
    await sync_to_async(rotate)(f"--retire={header_of(stream_token)['kid']}")
    _communicator, connected = await open_stream(headers=header)
    assert not connected


# --- nothing private leaks --------------------------------------------------------------------
def test_private_keys_never_reach_a_log_line_or_an_answer(algorithm, ann, key_dir, caplog):
    caplog.set_level(logging.DEBUG)
    old_kid = current_kid()
    output = rotate()
    output += rotate("--list")
    output += rotate(f"--retire={old_kid}")
    pems = [p.read_text() for p in key_dir.glob("*.pem")]
    key = keys.signing_key()
    private_numbers = (
        key.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ).hex()
        if algorithm == "EdDSA"
        else str(key.private_key.private_numbers().d)
    )
    answers = [
        client_for("acme.test").get(JWKS).content.decode(),
        me("acme.test", "not-a-token").content.decode(),
        client_for("acme.test").post(JWKS).content.decode(),
    ]
    for pem in pems:
        body = "".join(pem.splitlines()[1:-1])
        collector.secret(body)  # checked again against the whole session's output at the end
        for text in (caplog.text, output, *answers):
            assert body not in text.replace("\n", "")
            assert "PRIVATE KEY" not in text
    for text in (caplog.text, output, *answers):
        assert private_numbers not in text


# --- deployment checks -------------------------------------------------------------------------
def ids(problems) -> set[str]:
    return {problem.id for problem in problems}


def test_deploy_check_flags_a_key_algorithm_without_a_key(settings, key_dir):
    settings.JWT_ALGORITHM = "RS256"
    assert ids(check_token_signing_keys(None)) == {"accounts.E101"}
    rotate("--algorithm", "EdDSA")  # a key of another algorithm does not count
    assert ids(check_token_signing_keys(None)) == {"accounts.E101"}
    rotate()
    assert check_token_signing_keys(None) == []


def test_deploy_check_flags_a_key_file_readable_by_others(algorithm, key_dir):
    assert check_token_signing_keys(None) == []
    pem = key_dir / f"{current_kid()}.pem"
    pem.chmod(0o644)
    (problem,) = check_token_signing_keys(None)
    assert problem.id == "accounts.E102"
    assert pem.name in problem.msg
    assert "BEGIN" not in problem.msg


def test_deploy_check_is_registered_and_silent_with_hs256(settings):
    deploy_checks = checks.registry.registry.get_checks(include_deployment_checks=True)
    assert check_token_signing_keys in deploy_checks
    assert check_token_signing_keys not in checks.registry.registry.get_checks()
    assert settings.JWT_ALGORITHM == "HS256"
    assert check_token_signing_keys(None) == []


def test_an_unknown_jwt_algorithm_refuses_to_start():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=BASE_DIR,
        env={**os.environ, "JWT_ALGORITHM": "none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "JWT_ALGORITHM must be HS256, EdDSA or RS256" in result.stderr
