"""Validation of tenant slugs and host names, shared by the models, the API and commands."""

import re

from django.core.exceptions import ValidationError

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
HOST_PATTERN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def validate_slug(value: str) -> None:
    if not isinstance(value, str) or not SLUG_PATTERN.match(value):
        raise ValidationError(
            "Enter 3-63 characters: lower-case letters, digits and hyphens, starting with a "
            "letter and not ending with a hyphen.",
            code="invalid_slug",
        )
    if value in RESERVED_SLUGS:
        raise ValidationError(f"'{value}' is reserved.", code="reserved_slug")


def normalize_host(value: str) -> str:
    """Return the host name of a Host header value: port stripped, lower-cased."""
    host = (value or "").strip().lower()
    if host.startswith("["):  # IPv6 literal: [::1]:8000
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host.rstrip(".")


def validate_domain(value: str) -> None:
    if not isinstance(value, str) or not HOST_PATTERN.match(value):
        raise ValidationError(
            f"'{value}' is not a valid host name (lower-case, no scheme, no port).",
            code="invalid_domain",
        )
