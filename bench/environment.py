"""The environment the bench and soak servers run with: production settings, random strong
keys, and their own databases and Redis database so nothing else is touched."""

from __future__ import annotations

import os
import secrets


def server_env(
    *, database_url: str, tenant_prefix: str, redis_url: str, **overrides: str
) -> dict[str, str]:
    """This process's environment minus test and tenant-routing variables, plus production
    settings; limits that would throttle the load generator are lifted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TESTING"))}
    for key in ("TENANT_DEFAULT", "TENANT_DATABASE_URL", "TEST_RUN_TAG"):
        env.pop(key, None)
    env.update(
        {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "JWT_SECRET": secrets.token_urlsafe(48),
            "ALLOWED_HOSTS": ".localhost,localhost,127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DEBUG": "false",
            "DATABASE_URL": database_url,
            "TENANT_DB_PREFIX": tenant_prefix,
            "CONN_MAX_AGE": "60",
            "REDIS_URL": redis_url,
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOGIN_RATE_LIMIT_PER_MINUTE": "1000000",
            "LOGIN_LOCKOUT_THRESHOLD": "1000000",
            "ACCESS_TOKEN_TTL": "86400",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
    )
    return env


def gunicorn_argv(gunicorn: str, port: int, workers: int, *extra: str) -> list[str]:
    """The production HTTP command (Dockerfile, docker-compose.yml) on a loopback port."""
    return [
        gunicorn,
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "300",
        *extra,
    ]
