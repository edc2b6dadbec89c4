"""Bench-only settings: the project's settings with tenancy bypassed.

The same middleware stack minus `TenantMiddleware`, no database router, and `default`
pointed at one fixed tenant database (`BENCH_BYPASS_DATABASE_URL`), so the address book view
runs exactly as in production but reads that database without resolving a tenant. Tokens
for it carry `tenant: null` (no tenant is active). Used only by the `bypass` scenario
(bench/scenarios/bypass.py) to measure what tenancy costs; never deploy it.
"""

import environ

from config.settings import *  # noqa: F403
from config.settings import DATABASES, MIDDLEWARE, env

TENANT_MIDDLEWARE = "tenants.middleware.TenantMiddleware"
MIDDLEWARE = [m for m in MIDDLEWARE if m != TENANT_MIDDLEWARE]
DATABASE_ROUTERS = []

_bypass_url = env.str("BENCH_BYPASS_DATABASE_URL", default="")
if _bypass_url:
    _parsed = environ.Env.db_url_config(_bypass_url)
    DATABASES = {
        "default": {
            **DATABASES["default"],
            **{
                k: _parsed[k]
                for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
                if k in _parsed
            },
        }
    }
