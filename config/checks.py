"""The project's own system checks (ids `config.E0xx` errors, `config.W0xx` warnings).

Deployment checks run with `manage.py check --deploy`; errors make it exit non-zero. What
settings refuse at start-up in production (weak secrets, DEBUG, no ALLOWED_HOSTS) is checked
here for the other environments; what they refuse everywhere (CORS `*` with credentials,
once `config.E003`) needs no check.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from config.secret_strength import MIN_SECRET_LENGTH, is_weak_secret


@register(Tags.security, deploy=True)
def check_secrets(app_configs, **kwargs):
    problems = []
    if is_weak_secret(settings.SECRET_KEY):
        problems.append(
            Error(
                "SECRET_KEY is weak or a default value.",
                hint=f"Set a random value of at least {MIN_SECRET_LENGTH} characters "
                "(openssl rand -hex 32).",
                id="config.E001",
            )
        )
    if is_weak_secret(settings.SIMPLE_JWT["SIGNING_KEY"]):
        problems.append(
            Error(
                "The JWT signing key (JWT_SECRET) is weak or a default value.",
                hint=f"Set JWT_SECRET to a random value of at least {MIN_SECRET_LENGTH} "
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


@register(Tags.security, deploy=True)
def check_email_backend(app_configs, **kwargs):
    """Reset and verification links go by e-mail: the console backend prints them, tokens
    included, into the process's output (and whatever collects it)."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.console.EmailBackend":
        return []
    return [
        Warning(
            "E-mails go to the console (EMAIL_HOST is unset): password reset and verification "
            "links are printed on stdout and never reach users.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, "
            "EMAIL_USE_TLS) to an SMTP server.",
            id="config.W006",
        )
    ]
