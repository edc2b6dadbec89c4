"""The project's own system checks (ids `config.E0xx` errors, `config.W0xx` warnings).

Deployment checks run with `manage.py check --deploy`; errors make it exit non-zero.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

WEAK_MARKERS = ("dev-insecure", "change-me", "changeme", "secret", "build-only")


def _weak(key: str) -> bool:
    lowered = key.lower()
    return len(key) < 50 or len(set(key)) < 8 or any(m in lowered for m in WEAK_MARKERS)


@register(Tags.security)
def check_cors(app_configs, **kwargs):
    if getattr(settings, "CORS_ALLOW_ALL_ORIGINS", False) and settings.CORS_ALLOW_CREDENTIALS:
        return [
            Error(
                "CORS allows every origin together with credentials.",
                hint="List CORS_ALLOWED_ORIGINS explicitly.",
                id="config.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_secrets(app_configs, **kwargs):
    problems = []
    if _weak(settings.SECRET_KEY):
        problems.append(
            Error(
                "SECRET_KEY is weak or a default value.",
                hint="Set a random value of at least 50 characters (openssl rand -hex 32).",
                id="config.E001",
            )
        )
    if _weak(settings.SIMPLE_JWT["SIGNING_KEY"]):
        problems.append(
            Error(
                "The JWT signing key (JWT_SECRET) is weak or a default value.",
                hint="Set JWT_SECRET to a random value of at least 50 "
                "characters, different from SECRET_KEY.",
                id="config.E002",
            )
        )
    if settings.DEBUG:
        problems.append(Error("DEBUG is on.", id="config.E004"))
    if not settings.ALLOWED_HOSTS:
        problems.append(Error("ALLOWED_HOSTS is empty.", id="config.E005"))
    return problems


@register(deploy=True)
def check_production_services(app_configs, **kwargs):
    warnings = []
    if not settings.REDIS_URL:
        warnings.append(
            Warning(
                "REDIS_URL is unset: cache, rate limits and the log stream stay in one process.",
                hint="Set REDIS_URL so replicas share counters, revocations and log records.",
                id="config.W001",
            )
        )
    if not settings.WS_LOGS_ADMIN_USER:
        warnings.append(
            Warning(
                "WS_LOGS_ADMIN_USER is unset: any valid token holder may read the log stream "
                "of its tenant.",
                id="config.W002",
            )
        )
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        warnings.append(
            Warning(
                "The main database is SQLite.",
                hint="Set DATABASE_URL to a PostgreSQL server.",
                id="config.W003",
            )
        )
    if settings.TENANT_BASE_DOMAIN in ("", "localhost"):
        warnings.append(
            Warning(
                f"TENANT_BASE_DOMAIN is {settings.TENANT_BASE_DOMAIN or 'unset'!r}: tenants are "
                "reachable only through registered domains.",
                id="config.W004",
            )
        )
    if not settings.METRICS_ALLOWED_IPS:
        warnings.append(
            Warning(
                "METRICS_ALLOWED_IPS is unset: /metrics answers loopback only.", id="config.W005"
            )
        )
    return warnings
