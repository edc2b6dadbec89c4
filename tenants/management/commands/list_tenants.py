import json

from django.core.management.base import BaseCommand

from tenants.db.breaker import recently_unavailable_tenants, record_database_failure
from tenants.models import Tenant
from tenants.selectors import probe_tenant_database, tenant_list


def _pending(tenant: Tenant) -> int | str:
    if tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        return "-"
    probe = probe_tenant_database(tenant)
    if not probe.reachable:
        record_database_failure(tenant.alias, probe.exception)
        return "unreachable"
    return len(probe.pending_migrations)


class Command(BaseCommand):
    help = "List tenants: slug, status, domains, server, database, pending migrations."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON array on stdout.")

    def handle(self, *args, **options):
        rows = [
            {
                "slug": tenant.slug,
                "status": tenant.status,
                "domains": [d.domain for d in tenant.domains.all()],
                # None: a tenant with its own database URL, on no registered server.
                "server": tenant.server_name,
                "database": tenant.database_name,
                "pending_migrations": _pending(tenant),
            }
            for tenant in tenant_list()
        ]
        # `database_status` is the probe just made; `failed_recently` what the API saw in
        # the last minutes (any process, through the shared cache).
        failed_recently = set(recently_unavailable_tenants())
        for row in rows:
            pending = row["pending_migrations"]
            row["database_status"] = {"-": "-", "unreachable": "unavailable"}.get(pending, "ok")
            row["failed_recently"] = row["slug"] in failed_recently
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        header = ("SLUG", "STATUS", "DOMAINS", "SERVER", "DATABASE", "PENDING")
        table = [header] + [
            (
                r["slug"],
                r["status"],
                ",".join(r["domains"]) or "-",
                r["server"] or "-",
                r["database"],
                str(r["pending_migrations"]),
            )
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
