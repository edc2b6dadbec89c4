"""The peer project's settings: a minimal django-tenants project (one PostgreSQL schema per
tenant, `django_tenants` from PyPI), serving the same authenticated list of contacts as the
product, for the scale-out comparison rows (bench/scenarios/peer.py).

As such a project is usually set up: the tenant is resolved from the Host header by
`TenantMainMiddleware` (a query of the public schema's domains), users live in each
tenant's schema, simplejwt bearer tokens, DRF's cursor pagination; gunicorn with 2 sync
workers and persistent connections (`CONN_MAX_AGE=60`), straight to PostgreSQL (no pooler:
a schema-per-tenant project holds one connection per worker whatever the tenants). New
schemas are cloned from a migrated `template` schema (django-tenants'
`TENANT_BASE_SCHEMA`), which is only how the harness seeds them quickly.

The environment: `PEER_DATABASE_URL` (the database, e.g. postgres://postgres@host:port/tk_peer)
and `PEER_SECRET_KEY`.
"""

import os
from datetime import timedelta

import environ

SECRET_KEY = os.environ["PEER_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = [".localhost", "localhost", "127.0.0.1"]

_db = environ.Env.db_url_config(os.environ["PEER_DATABASE_URL"])
_db["ENGINE"] = "django_tenants.postgresql_backend"
_db["CONN_MAX_AGE"] = int(os.environ.get("CONN_MAX_AGE", "60"))
DATABASES = {"default": _db}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

SHARED_APPS = (
    "django_tenants",
    "bench.peer.customers",
    "django.contrib.contenttypes",
    "django.contrib.auth",
)
TENANT_APPS = (
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "bench.peer.contacts",
)
INSTALLED_APPS = [
    *SHARED_APPS,
    *(app for app in TENANT_APPS if app not in SHARED_APPS),
    "rest_framework",
]
TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_BASE_SCHEMA = "template"

MIDDLEWARE = [
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "bench.peer.urls"
WSGI_APPLICATION = "bench.peer.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = []

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
SIMPLE_JWT = {"ACCESS_TOKEN_LIFETIME": timedelta(days=1), "SIGNING_KEY": SECRET_KEY}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
