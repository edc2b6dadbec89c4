"""Settings, read from the environment (and an optional `.env` file) with django-environ.

Every variable is listed in `.env.example` and the README. With nothing set the project
runs on the embedded default: SQLite files under `var/`, in-memory channel layer and
local-memory cache. `APP_ENV=production` refuses to start with unsafe values.
"""

import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.paths import PROBE_PATHS
from config.secret_strength import MIN_SECRET_LENGTH, is_weak_secret

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Environment --------------------------------------------------------------------------
APP_ENV = env.str("APP_ENV", default="development")
PRODUCTION = APP_ENV == "production"
TESTING = env.bool("TESTING", default="pytest" in sys.modules)
# Separates the databases of test runs that share one PostgreSQL server.
TEST_RUN_TAG = env.str("TEST_RUN_TAG", default="")

_DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789abcdef"  # noqa: S105 (refused in production)
SECRET_KEY = env.str("SECRET_KEY", default="" if PRODUCTION else _DEV_SECRET)
# Former SECRET_KEYs still accepted when checking (API key digests, Django's signatures).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=not PRODUCTION and not TESTING)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["*"])

# --- Applications -------------------------------------------------------------------------
# Where each table lives (docs/architecture.md): apps in SHARED_APPS migrate on the main
# database, apps in TENANT_APPS on every tenant database; apps in both live in both.
SHARED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "channels",
    "tenants",
    "accounts",
    "logstream",
    "config",
]
TENANT_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "accounts",
    "rest_framework_simplejwt.token_blacklist",
    "addressbook",
]
INSTALLED_APPS = list(dict.fromkeys(SHARED_APPS + TENANT_APPS))

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "logstream.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",
    "config.metrics.MetricsMiddleware",
    "config.errors.ApiErrorMiddleware",
    "config.security.AdminAllowListMiddleware",
    "config.security.RequestSizeLimitMiddleware",
    "config.security.RateLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "tenants.middleware.TenantMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases ----------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# Persistent connections suit a WSGI worker; under ASGI they leak (Django #33497), so the
# embedded default (daphne) keeps 0.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DB_CONNECT_TIMEOUT", default=5
    )
    # The session starts in UTC (TIME_ZONE), so Django need not send `SET TIME ZONE` on
    # every new connection (a server in Etc/UTC does not count as UTC for it): one round
    # trip less per connection, tenant connections included.
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c TimeZone=UTC")
    if TEST_RUN_TAG:
        DATABASES["default"]["TEST"] = {
            "NAME": f"test_{DATABASES['default']['NAME']}_{TEST_RUN_TAG}"
        }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Concurrent writers wait for the lock instead of failing with "database is locked":
    # a write transaction takes it at BEGIN, WAL lets readers go on meanwhile.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **DATABASES["default"].get("OPTIONS", {}),
    }
DATABASE_ROUTERS = ["tenants.routers.TenantRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Tenancy ------------------------------------------------------------------------------
# Server for tenant databases; empty means the server of DATABASE_URL. Behind a transaction
# pooler (PgBouncer) this is the pooler's address, and TENANT_DATABASE_ADMIN_URL the same
# server's direct address, used for what must not go through the pooler: creating, cloning
# and dropping databases, and the template (docs/architecture.md, "Behind PgBouncer").
# Empty means the same as TENANT_DATABASE_URL.
TENANT_DATABASE_URL = env.str("TENANT_DATABASE_URL", default="")
TENANT_DATABASE_ADMIN_URL = env.str("TENANT_DATABASE_ADMIN_URL", default="")
TENANT_DB_PREFIX = env.str("TENANT_DB_PREFIX", default="tenant_")
TENANT_SQLITE_DIR = Path(env.str("TENANT_SQLITE_DIR", default=str(VAR_DIR / "tenants")))
if TESTING:
    # The suite only ever creates or touches databases whose names carry the test prefix.
    # Every run has a tag ("main" when none is given), so one run's clean-up pattern
    # (<prefix>%) can never match another run's databases.
    TENANT_DB_PREFIX = f"test_{TENANT_DB_PREFIX}{TEST_RUN_TAG or 'main'}_"
    TENANT_SQLITE_DIR = VAR_DIR / "test-tenants" / (TEST_RUN_TAG or "default")
TENANT_BASE_DOMAIN = env.str("TENANT_BASE_DOMAIN", default="localhost")
TENANT_DEFAULT = env.str("TENANT_DEFAULT", default="")
TENANT_HEADER = env.str("TENANT_HEADER", default="X-Tenant")
TRUSTED_PROXY_IPS = env.list("TRUSTED_PROXY_IPS", default=[])
# Seconds before a process re-checks the shared cache for tenant or domain changes.
TENANT_CACHE_TTL = env.float("TENANT_CACHE_TTL", default=5.0)
# Process-wide bound on open tenant database connections; idle ones beyond it are closed.
TENANT_MAX_OPEN_CONNECTIONS = env.int("TENANT_MAX_OPEN_CONNECTIONS", default=32)
# How many processes hold tenant connections to one tenant server: gunicorn's own
# WEB_CONCURRENCY (workers per replica; the image defaults to 2) times APP_REPLICAS.
# `check --deploy` compares processes x TENANT_MAX_OPEN_CONNECTIONS with the pooler's
# max_client_conn (tenants.W101).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", default=2)
APP_REPLICAS = env.int("APP_REPLICAS", default=1)
# Seconds to wait for a tenant database connection (PostgreSQL), and seconds an unreachable
# tenant database is answered 503 at once before the next attempt.
TENANT_DB_CONNECT_TIMEOUT = env.int("TENANT_DB_CONNECT_TIMEOUT", default=2)
TENANT_DB_RETRY_INTERVAL = env.float("TENANT_DB_RETRY_INTERVAL", default=5.0)
# Tenant lifecycle: where backup_tenant and export_tenant write when no --output is given,
# and the days a dropped tenant's remains (domains, backups, exports) are kept before
# purge_tenant may remove them.
TENANT_ARCHIVE_DIR = Path(env.str("TENANT_ARCHIVE_DIR", default=str(VAR_DIR / "archives")))
TENANT_PURGE_RETENTION_DAYS = env.int("TENANT_PURGE_RETENTION_DAYS", default=30)
if TESTING:
    TENANT_ARCHIVE_DIR = VAR_DIR / "test-archives" / (TEST_RUN_TAG or "default")

# --- Cache, channel layer -----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Fails fast during an outage instead of waiting a timeout per call.
            "BACKEND": "config.cache.CircuitBreakingRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"test{TEST_RUN_TAG}" if TESTING else "",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "capacity": 1000,
                "expiry": 30,
                # Concurrent test runs on one Redis must not hear each other.
                "prefix": f"asgi-test{TEST_RUN_TAG}" if TESTING else "asgi",
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Authentication -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Every password login (the admin's too) is throttled and locks out like the API's.
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
# Argon2id with OWASP's minimum parameter set (m=19 MiB, t=2, p=1): about 19 ms a hash.
PASSWORD_HASHERS = [
    "accounts.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.PasswordStrengthValidator"},
]

JWT_SECRET = env.str("JWT_SECRET", default="" if PRODUCTION else SECRET_KEY)
ACCESS_TOKEN_TTL = env.int("ACCESS_TOKEN_TTL", default=15 * 60)
REFRESH_TOKEN_TTL = env.int("REFRESH_TOKEN_TTL", default=7 * 24 * 3600)
JWT_ISSUER = env.str("JWT_ISSUER", default="tenantkit")
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="tenantkit-api")
# HS256 signs with JWT_SECRET (SIMPLE_JWT below); EdDSA and RS256 with the current key of
# the key ring in JWT_KEY_DIR, verified by `kid` (accounts.keys, accounts.signing).
JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="HS256")
if JWT_ALGORITHM not in ("HS256", "EdDSA", "RS256"):
    raise ImproperlyConfigured(
        f"JWT_ALGORITHM must be HS256, EdDSA or RS256, not {JWT_ALGORITHM!r}"
    )
JWT_KEY_DIR = Path(env.str("JWT_KEY_DIR", default=str(VAR_DIR / "jwt-keys")))
if TESTING:
    JWT_KEY_DIR = VAR_DIR / "test-jwt-keys" / (TEST_RUN_TAG or "default")
SIMPLE_JWT = {
    # The HS256 path only: accounts.signing switches to the key ring by JWT_ALGORITHM.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "AUDIENCE": JWT_AUDIENCE,
    "ISSUER": JWT_ISSUER,
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=ACCESS_TOKEN_TTL),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=REFRESH_TOKEN_TTL),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_CLAIM": "user_id",
    "JTI_CLAIM": "jti",
    "LEEWAY": 0,
}

# Two-factor login (accounts.mfa): how long the `mfa_token` of a password login lives, how
# many wrong codes one such token takes, and the issuer shown by authenticator apps.
MFA_TOKEN_TTL = env.int("MFA_TOKEN_TTL", default=300)
MFA_CODE_ATTEMPTS = env.int("MFA_CODE_ATTEMPTS", default=5)
MFA_ISSUER = env.str("MFA_ISSUER", default="tenantkit")

REST_FRAMEWORK = {
    # An API key first: it takes only `X-Api-Key` and `Bearer tk_...`, leaving JWTs alone.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.TenantJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only: neither Accept nor ?format= picks another renderer (API.md, Conventions).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.JSONOnlyNegotiation",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "tenantkit API",
    "DESCRIPTION": (
        "Multi-tenant API: tenant endpoints are served on the tenant's host "
        "(acme.example.com); platform endpoints on any host. Every error has the shape "
        '{"status", "error", "message"} (+ "details" for validation errors).'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    "TAGS": [
        {"name": "auth", "description": "Signup, login and tokens, on the tenant's host."},
        {"name": "users", "description": "The tenant's users (tenant admins only)."},
        {"name": "api-keys", "description": "Machine clients' keys (tenant admins only)."},
        {"name": "audit", "description": "The tenant's security events (tenant admins only)."},
        {"name": "address-book", "description": "The tenant's contacts."},
        {"name": "platform", "description": "Tenants, for platform staff, on any host."},
        {"name": "operations", "description": "Health and readiness probes; retired paths."},
    ],
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "SettableTenantStatusEnum": ["active", "suspended"],
        "ProbeResultEnum": ["ok", "unavailable"],
        "TenantHealthStatusEnum": ["ok", "unhealthy"],
        "TenantDatabaseStatusEnum": ["ok", "unreachable"],
        "TenantMigrationsStatusEnum": ["ok", "pending", "unknown"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
    ],
}

# --- E-mail, reset and verification links ----------------------------------------------
# Console (stdout) unless an SMTP server is named; EMAIL_BACKEND overrides either.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tenantkit <noreply@localhost>")
# Link templates: {domain} is the tenant's primary domain (never the request's Host), {token}
# the signed token; the token goes in the fragment, which browsers never send to a server.
_LINK_SCHEME = "https" if PRODUCTION else "http"
PASSWORD_RESET_URL = env.str(
    "PASSWORD_RESET_URL", default=f"{_LINK_SCHEME}://{{domain}}/reset-password#token={{token}}"
)
EMAIL_VERIFICATION_URL = env.str(
    "EMAIL_VERIFICATION_URL", default=f"{_LINK_SCHEME}://{{domain}}/verify-email#token={{token}}"
)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
EMAIL_VERIFICATION_TIMEOUT = env.int("EMAIL_VERIFICATION_TIMEOUT", default=3 * 24 * 3600)
# Link e-mails a client address may ask for a minute, and an address may receive an hour.
EMAIL_LINK_RATE_LIMIT_PER_MINUTE = env.int("EMAIL_LINK_RATE_LIMIT_PER_MINUTE", default=5)
EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR = env.int("EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR", default=5)

# --- Limits -------------------------------------------------------------------------------
RATE_LIMIT_PER_MINUTE = env.int("RATE_LIMIT_PER_MINUTE", default=1200)
LOGIN_RATE_LIMIT_PER_MINUTE = env.int("LOGIN_RATE_LIMIT_PER_MINUTE", default=20)
LOGIN_LOCKOUT_THRESHOLD = env.int("LOGIN_LOCKOUT_THRESHOLD", default=10)
LOGIN_LOCKOUT_WINDOW = env.int("LOGIN_LOCKOUT_WINDOW", default=900)
MAX_REQUEST_SIZE_BYTES = env.int("MAX_REQUEST_SIZE_BYTES", default=1024 * 1024)
# CIDRs allowed on /admin/ and /api/platform/ (empty: any network).
ADMIN_ALLOWED_IPS = env.list("ADMIN_ALLOWED_IPS", default=[])
# CIDRs allowed to scrape /metrics (empty: any in development, loopback in production).
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_SIZE_BYTES

# --- Audit trail --------------------------------------------------------------------------
# Days an audit event is kept; `purge_audit_events` deletes older ones.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# --- CORS ---------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = env.bool("CORS_CREDENTIALS", default=False)
if "*" in CORS_ALLOWED_ORIGINS:
    if CORS_ALLOW_CREDENTIALS:
        raise ImproperlyConfigured(
            "CORS_ALLOWED_ORIGINS='*' together with CORS_CREDENTIALS=true lets any site "
            "make credentialed requests; list the allowed origins instead."
        )
    CORS_ALLOWED_ORIGINS = []
    CORS_ALLOW_ALL_ORIGINS = True

# --- Log stream ---------------------------------------------------------------------------
APP_WS_PORT = env.int("APP_WS_PORT", default=9000)
WS_LOG_BUFFER_SIZE = env.int("WS_LOG_BUFFER_SIZE", default=1000)
WS_LOG_FORMAT = env.str("WS_LOG_FORMAT", default="text")
WS_LOGS_ADMIN_USER = env.list("WS_LOGS_ADMIN_USER", default=[])
# Seconds between two re-checks of an open log stream's credentials (closed with 4401).
WS_AUTH_RECHECK_SECONDS = env.float("WS_AUTH_RECHECK_SECONDS", default=5.0)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {
            "()": "logstream.formatters.TextLineFormatter",
            "fmt": "[{asctime}] {levelname} [{name}] {message}",
            "style": "{",
        },
        "json": {"()": "logstream.formatters.JsonLinesFormatter"},
    },
    "filters": {"redact": {"()": "logstream.redaction.RedactingFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["redact"],
        },
        # Publishes to the live log stream (logstream.handlers); never blocks the caller.
        "logstream": {"class": "logstream.handlers.LogStreamHandler"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        **{
            name: {"handlers": ["console", "logstream"], "level": LOG_LEVEL, "propagate": False}
            for name in ("config", "tenants", "accounts", "addressbook", "logstream")
        },
        **{
            name: {"handlers": ["console", "logstream"], "level": "INFO", "propagate": False}
            for name in ("django.request", "django.security")
        },
    },
}

# --- Security -----------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Load balancers and orchestrators probe over plain HTTP (API.md, Operations). Matched
# against the path without its leading slash; \Z, unlike $, admits no trailing newline.
SECURE_REDIRECT_EXEMPT = [rf"^{path.lstrip('/')}\Z" for path in PROBE_PATHS]
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Internationalisation, static files ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG


# --- Production guard ---------------------------------------------------------------------
def _production_problems() -> list[str]:
    problems = []
    rule = f"at least {MIN_SECRET_LENGTH} random characters, not a placeholder"
    if is_weak_secret(SECRET_KEY):
        problems.append(f"SECRET_KEY is missing or weak ({rule})")
    if is_weak_secret(JWT_SECRET):
        problems.append(f"JWT_SECRET is missing or weak ({rule})")
    if DEBUG:
        problems.append("DEBUG is on")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS is empty")
    return problems


if PRODUCTION and (_problems := _production_problems()):
    raise ImproperlyConfigured("APP_ENV=production refuses to start: " + "; ".join(_problems))
