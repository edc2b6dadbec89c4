"""What every server backend shares."""

# Tables a freshly migrated database fills by itself: rows there are not a tenant's data.
BOOKKEEPING_TABLES = frozenset({"django_migrations", "django_content_type", "auth_permission"})


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
