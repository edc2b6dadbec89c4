"""SQLite for tenant databases: Django's backend, but a connection opens an existing file
read-write and never creates one. A tenant file that has gone missing is then an outage
(503 `Tenant database unavailable`, the circuit breaker) instead of a new, empty database
that the next request would write into. Provisioning creates the file itself (a copy of
the template through SQLite's backup API) before any connection opens it.

A file that is there but damaged (not a database, emptied, its tables gone) opens all the
same; `is_usable` finds it out, so the circuit breaker counts it as the tenant's outage
(503) rather than a query error on a healthy connection (500)."""

from pathlib import Path

from django.db.backends.sqlite3 import base
from django.db.backends.sqlite3.base import Database


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        # Django connects with uri=True; mode=rw refuses to create the file.
        params["database"] = f"{Path(params['database']).resolve().as_uri()}?mode=rw"
        return params

    def is_usable(self):
        try:
            self.connection.execute("SELECT 1 FROM django_migrations LIMIT 1")
        except Database.Error:
            return False
        return True
