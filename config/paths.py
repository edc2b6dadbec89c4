"""Which URL paths belong to the platform rather than to a tenant: the one home of these
lists for the middleware, the rate limiter, the staff allow-list and the schema."""

# Probes of load balancers and monitoring: never rate limited, never redirected to HTTPS.
PROBE_PATHS = ("/health", "/ready", "/metrics")

# The staff's surface: the Django admin and the platform API (ADMIN_ALLOWED_IPS applies).
STAFF_PREFIXES = ("/admin", "/api/platform")

# Served whatever the host, with no tenant: the staff's surface, the probes, the schema and
# its viewer, the log viewer page, the static files and `/.well-known/`. `/` is the landing page.
PLATFORM_PREFIXES = (
    *STAFF_PREFIXES,
    *PROBE_PATHS,
    "/api/schema",
    "/api/docs",
    "/api/logs",
    "/static",
    # Documents about the service itself (RFC 8615), such as the token keys' JWKS.
    "/.well-known",
)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def is_platform_path(path: str) -> bool:
    """True for a path served without a tenant (PLATFORM_PREFIXES, or the landing page)."""
    return path == "/" or _under(path, PLATFORM_PREFIXES)


def is_staff_path(path: str) -> bool:
    """True for the admin and the platform API, which ADMIN_ALLOWED_IPS guards."""
    return _under(path, STAFF_PREFIXES)
