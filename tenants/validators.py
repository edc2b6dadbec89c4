"""Validation of tenant slugs and host names, shared by the models, the API and commands."""

import re

from django.core.exceptions import ValidationError

SLUG_MAX_LENGTH = 63
# Matched whole (fullmatch: `$` alone also matches before a final newline) and only on at
# most SLUG_MAX_LENGTH characters.
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
# Slugs that would collide with platform hosts, paths or the template database.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "default",
        "docs",
        "health",
        "localhost",
        "mail",
        "media",
        "metrics",
        "platform",
        "postgres",
        "ready",
        "root",
        "static",
        "template",
        "template0",
        "template1",
        "test",
        "www",
    }
)
# A database server's name: a short slug without underscores, so that a tenant's alias
# `tenant_<server>__<slug>` (tenants.db.aliases) reads back unambiguously.
SERVER_NAME_MAX_LENGTH = 32
SERVER_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
# The name of an environment variable a server row points at (never its value).
ENV_NAME_MAX_LENGTH = 100
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")
HOST_MAX_LENGTH = 253
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# For the schema only: the server checks host names label by label, without a regex.
HOST_PATTERN = (
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def is_host_name(value: str) -> bool:
    """True for a lower-case DNS host name (RFC 1123 labels of 1-63 characters, at most
    253 in all), in one linear pass and no regex."""
    if not value or len(value) > HOST_MAX_LENGTH:
        return False
    for label in value.split("."):
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not _LABEL_CHARACTERS.issuperset(label):
            return False
    return True


def validate_slug(value: str) -> None:
    if (
        not isinstance(value, str)
        or len(value) > SLUG_MAX_LENGTH
        or not SLUG_PATTERN.fullmatch(value)
    ):
        raise ValidationError(
            "Enter 3-63 characters: lower-case letters, digits and hyphens, starting with a "
            "letter and not ending with a hyphen.",
            code="invalid_slug",
        )
    if value in RESERVED_SLUGS:
        raise ValidationError(f"'{value}' is reserved.", code="reserved_slug")


def validate_server_name(value: str) -> None:
    if (
        not isinstance(value, str)
        or len(value) > SERVER_NAME_MAX_LENGTH
        or not SERVER_NAME_PATTERN.fullmatch(value)
    ):
        raise ValidationError(
            "Enter 2-32 characters: lower-case letters, digits and hyphens, starting with a "
            "letter and not ending with a hyphen.",
            code="invalid_server_name",
        )


def validate_env_name(value: str) -> None:
    if (
        not isinstance(value, str)
        or len(value) > ENV_NAME_MAX_LENGTH
        or not ENV_NAME_PATTERN.fullmatch(value)
    ):
        raise ValidationError(
            "Enter the name of an environment variable (upper-case letters, digits and "
            "underscores), not its value.",
            code="invalid_env_name",
        )


def normalize_host(value: str) -> str:
    """Return the host name of a Host header value: port stripped, lower-cased."""
    host = (value or "").strip().lower()
    if host.startswith("["):  # IPv6 literal: [::1]:8000
        return host.split("]", 1)[0] + "]"
    return (host.rsplit(":", 1)[0] if ":" in host else host).rstrip(".")


def validate_domain(value: str) -> None:
    if not isinstance(value, str) or not is_host_name(value):
        raise ValidationError(
            f"'{value}' is not a valid host name (lower-case, no scheme, no port).",
            code="invalid_domain",
        )
