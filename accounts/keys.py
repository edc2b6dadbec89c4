"""The key ring of the public-key tokens (EdDSA, RS256): which private key signs, which
public keys verify, their rotation and retirement, and the JSON Web Key Set (RFC 7517,
RFC 8037) that publishes the public halves.

Custody (docs/security.md): every private key is a PKCS#8 PEM file of its own, mode 0600,
in `JWT_KEY_DIR` (mode 0700), never in a database; beside them `keys.json` indexes the
keys (kid, alg, status, created, retire_after) and holds nothing secret. A process reads
the index again whenever the file changed (one `stat` per use; the index is replaced
atomically), so a rotation reaches every process at its next token.

Life of a key: `current` (signs; one per algorithm at most), then `previous` once another
key replaced it (verifies until `retire_after`, the longest token lifetime after the
rotation), then `retired` (its PEM file deleted; neither published nor accepted). A
`previous` key past its `retire_after` counts as retired before any command records it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

HMAC_ALGORITHM = "HS256"
KEY_ALGORITHMS = ("EdDSA", "RS256")
ALGORITHMS = (HMAC_ALGORITHM, *KEY_ALGORITHMS)
INDEX_NAME = "keys.json"
LOCK_NAME = ".lock"
# 2048-bit RSA is the floor of RFC 7518 section 3.3 and NIST SP 800-57 through 2030.
RSA_KEY_SIZE = 2048
# Members of a public JWK by key type (RFC 7638 section 3.2: the thumbprint's members too).
PUBLIC_MEMBERS = {"OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}\Z")


class Status(StrEnum):
    CURRENT = "current"
    PREVIOUS = "previous"
    RETIRED = "retired"


class KeyRingError(ImproperlyConfigured):
    """The key ring cannot do what was asked: no key to sign with, an unknown kid to
    retire, the current key to retire."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    status: Status
    created: datetime
    retire_after: datetime | None = None
    private_key: object | None = None  # None once retired (the file is gone)

    def verifies_at(self, now: datetime) -> bool:
        """True while tokens signed by this key are accepted."""
        if self.status == Status.CURRENT:
            return self.private_key is not None
        if self.status == Status.PREVIOUS:
            return self.private_key is not None and (
                self.retire_after is None or now < self.retire_after
            )
        return False

    @property
    def public_key(self):
        return self.private_key.public_key()

    def public_jwk(self) -> dict:
        """The public key as a JWK: key type members, `kid`, `use`, `alg`; never a private
        member (built from the public key alone)."""
        return _public_jwk(self.public_key, alg=self.alg) | {
            "kid": self.kid,
            "use": "sig",
            "alg": self.alg,
        }

    def index_entry(self) -> dict:
        return {
            "kid": self.kid,
            "alg": self.alg,
            "status": str(self.status),
            "created": self.created.isoformat(),
            "retire_after": self.retire_after.isoformat() if self.retire_after else None,
        }


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[SigningKey, ...] = ()

    def current(self, alg: str) -> SigningKey | None:
        return next((k for k in self.keys if k.status == Status.CURRENT and k.alg == alg), None)

    def verifying(self, *, kid: str, alg: str, now: datetime) -> SigningKey | None:
        """The key `kid` when it verifies `alg` tokens at `now`, else None."""
        for key in self.keys:
            if key.kid == kid:
                return key if key.alg == alg and key.verifies_at(now) else None
        return None

    def published(self, *, alg: str, now: datetime) -> list[SigningKey]:
        """The keys whose tokens are accepted, current first."""
        usable = [k for k in self.keys if k.alg == alg and k.verifies_at(now)]
        return sorted(usable, key=lambda k: (k.status != Status.CURRENT, -k.created.timestamp()))


# --- reading ------------------------------------------------------------------------------
def key_directory() -> Path:
    return Path(settings.JWT_KEY_DIR)


def configured_algorithm() -> str:
    return settings.JWT_ALGORITHM


def uses_key_ring() -> bool:
    """True when tokens are signed with a key of the ring (EdDSA, RS256), not HS256."""
    return configured_algorithm() in KEY_ALGORITHMS


_cache_lock = threading.Lock()
_cache: dict[Path, tuple[tuple, KeyRing]] = {}


def _stamp(path: Path) -> tuple | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def load_key_ring(directory: Path | None = None) -> KeyRing:
    """The key ring of `directory` (JWT_KEY_DIR), read again only when the index changed;
    an empty ring when there is no index yet."""
    directory = directory or key_directory()
    stamp = _stamp(directory / INDEX_NAME)
    with _cache_lock:
        cached = _cache.get(directory)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    previous = cached[1] if cached else KeyRing()
    ring = _read_ring(directory, known={k.kid: k for k in previous.keys}) if stamp else KeyRing()
    with _cache_lock:
        _cache[directory] = (stamp, ring)
    return ring


def _read_ring(directory: Path, known: dict[str, SigningKey]) -> KeyRing:
    keys = []
    for entry in _read_index(directory):
        kid = entry["kid"]
        private_key = None
        if entry["status"] != Status.RETIRED:
            cached = known.get(kid)
            if cached is not None and cached.private_key is not None:
                private_key = cached.private_key
            else:
                private_key = _load_private_key(directory / f"{kid}.pem")
        keys.append(
            SigningKey(
                kid=kid,
                alg=entry["alg"],
                status=Status(entry["status"]),
                created=datetime.fromisoformat(entry["created"]),
                retire_after=(
                    datetime.fromisoformat(entry["retire_after"])
                    if entry.get("retire_after")
                    else None
                ),
                private_key=private_key,
            )
        )
    return KeyRing(tuple(keys))


def _read_index(directory: Path) -> list[dict]:
    try:
        data = json.loads((directory / INDEX_NAME).read_text())
    except FileNotFoundError:
        return []
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("kid"), str)
        and KID_PATTERN.match(e["kid"])
        and e.get("alg") in KEY_ALGORITHMS
        and e.get("status") in tuple(Status)
        for e in entries
    ):
        raise KeyRingError(f"{directory / INDEX_NAME} is not a key index.")
    return entries


def _load_private_key(path: Path):
    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        return None


def signing_key() -> SigningKey:
    """The current key of the configured algorithm; KeyRingError when there is none."""
    algorithm = configured_algorithm()
    key = load_key_ring().current(algorithm)
    if key is None or key.private_key is None:
        raise KeyRingError(
            f"JWT_ALGORITHM is {algorithm} but {key_directory()} holds no current {algorithm} "
            "key: run `manage.py rotate_jwt_keys`."
        )
    return key


def verifying_key(kid: str) -> SigningKey | None:
    """The key `kid` when tokens it signed are accepted now (configured algorithm, current
    or previous and not past retirement), else None."""
    return load_key_ring().verifying(kid=kid, alg=configured_algorithm(), now=timezone.now())


def published_jwks() -> dict:
    """The JSON Web Key Set: the public keys whose tokens are accepted; no key with HS256."""
    if not uses_key_ring():
        return {"keys": []}
    keys = load_key_ring().published(alg=configured_algorithm(), now=timezone.now())
    return {"keys": [key.public_jwk() for key in keys]}


# --- the public halves --------------------------------------------------------------------
def _public_jwk(public_key, *, alg: str) -> dict:
    codec = OKPAlgorithm if alg == "EdDSA" else RSAAlgorithm
    jwk = codec.to_jwk(public_key, as_dict=True)
    return {member: jwk[member] for member in PUBLIC_MEMBERS[jwk["kty"]]}


def thumbprint(public_key, *, alg: str) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): the key's `kid`."""
    members = _public_jwk(public_key, alg=alg)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def generate_private_key(alg: str):
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    raise KeyRingError(f"Keys are made for {', '.join(KEY_ALGORITHMS)}, not {alg!r}.")


# --- changing the ring --------------------------------------------------------------------
def retirement_grace() -> timedelta:
    """How long a replaced key keeps verifying: the longest token lifetime."""
    return timedelta(seconds=max(settings.REFRESH_TOKEN_TTL, settings.ACCESS_TOKEN_TTL))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer at a time (an exclusive lock on a file of the directory)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_index(directory: Path, keys: list[SigningKey]) -> None:
    """Replace the index atomically: a reader sees the old one or the new one."""
    body = json.dumps({"keys": [k.index_entry() for k in keys]}, indent=2) + "\n"
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".keys-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, directory / INDEX_NAME)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_private_key(directory: Path, kid: str, private_key) -> None:
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(directory / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


def _retired(key: SigningKey, directory: Path, now: datetime) -> SigningKey:
    (directory / f"{key.kid}.pem").unlink(missing_ok=True)
    retire_after = min(key.retire_after, now) if key.retire_after else now
    return replace(key, status=Status.RETIRED, retire_after=retire_after, private_key=None)


def _retire_expired(keys: list[SigningKey], directory: Path, now: datetime) -> list[SigningKey]:
    return [
        _retired(k, directory, now)
        if k.status == Status.PREVIOUS and k.retire_after is not None and k.retire_after <= now
        else k
        for k in keys
    ]


def rotate_keys(*, alg: str, directory: Path | None = None) -> SigningKey:
    """Add a new `alg` key that signs from now on; the key it replaces keeps verifying for
    `retirement_grace()`; previous keys past their time are retired. Returns the new key."""
    directory = directory or key_directory()
    now = timezone.now()
    private_key = generate_private_key(alg)
    new = SigningKey(
        kid=thumbprint(private_key.public_key(), alg=alg),
        alg=alg,
        status=Status.CURRENT,
        created=now,
        private_key=private_key,
    )
    with _locked(directory):
        keys = list(_read_ring(directory, known={}).keys)
        keys = [
            replace(k, status=Status.PREVIOUS, retire_after=now + retirement_grace())
            if k.status == Status.CURRENT and k.alg == alg
            else k
            for k in keys
        ]
        keys = _retire_expired(keys, directory, now)
        _write_private_key(directory, new.kid, private_key)
        _write_index(directory, [*keys, new])
    return new


def retire_key(*, kid: str, directory: Path | None = None) -> SigningKey:
    """Retire the previous key `kid` now: its tokens are refused and it leaves the JWKS.
    The current key cannot be retired (rotate first)."""
    directory = directory or key_directory()
    now = timezone.now()
    with _locked(directory):
        keys = list(_read_ring(directory, known={}).keys)
        target = next((k for k in keys if k.kid == kid), None)
        if target is None:
            raise KeyRingError(f"No key {kid!r} in {directory}.")
        if target.status == Status.CURRENT:
            raise KeyRingError(f"Key {kid!r} is current: rotate first, then retire it.")
        keys = [_retired(k, directory, now) if k.kid == kid else k for k in keys]
        keys = _retire_expired(keys, directory, now)
        _write_index(directory, keys)
    return next(k for k in keys if k.kid == kid)


def retire_expired_keys(*, directory: Path | None = None) -> list[SigningKey]:
    """Record as retired (and delete the files of) previous keys past their time; returns
    the keys retired now."""
    directory = directory or key_directory()
    if not (directory / INDEX_NAME).exists():
        return []
    now = timezone.now()
    with _locked(directory):
        keys = list(_read_ring(directory, known={}).keys)
        updated = _retire_expired(keys, directory, now)
        if updated != keys:
            _write_index(directory, updated)
    return [new for old, new in zip(keys, updated, strict=True) if old.status != new.status]


def list_keys(directory: Path | None = None) -> list[SigningKey]:
    return list(load_key_ring(directory).keys)
