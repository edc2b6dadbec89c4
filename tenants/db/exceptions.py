"""The error of tenant database operations."""


class TenantDatabaseError(Exception):
    """A tenant database server could not be reached or refused an operation."""
