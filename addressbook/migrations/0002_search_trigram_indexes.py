"""Trigram indexes for `?search=` / `?name=` / `?email=` / `?phone=` on PostgreSQL.

Django compiles a case-insensitive "contains" there as `UPPER(col::text) LIKE UPPER(%s)`,
which no B-tree can serve; a GIN trigram index on exactly that expression can. SQLite has
no equivalent, so this migration does nothing there. Where the `pg_trgm` extension cannot
be created (no privilege), search still works, only without these indexes.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger("addressbook.migrations")

COLUMNS = ("name", "email", "phone")


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        logger.warning("pg_trgm is not available; contact search runs without trigram indexes")
        return
    with connection.cursor() as cursor:
        for column in COLUMNS:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS contact_{column}_trgm_idx "
                f"ON addressbook_contact USING gin ((UPPER({column}::text)) gin_trgm_ops)"
            )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for column in COLUMNS:
            cursor.execute(f"DROP INDEX IF EXISTS contact_{column}_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("addressbook", "0001_initial")]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
