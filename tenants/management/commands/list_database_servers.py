import json

from django.core.management.base import BaseCommand

from tenants.selectors import database_server_report
from tenants.services import ensure_default_server


class Command(BaseCommand):
    help = (
        "List tenant database servers: status, capacity, tenants and connections in use "
        "(PostgreSQL: sessions on its tenant databases; SQLite: this process's)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON array on stdout.")

    def handle(self, *args, **options):
        ensure_default_server()
        rows = database_server_report()
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        header = ("NAME", "STATUS", "CAPACITY", "TENANTS", "CONNECTIONS", "URL FROM")
        table = [header] + [
            (
                r["name"],
                r["status"],
                "-" if r["capacity"] is None else str(r["capacity"]),
                str(r["tenants"]),
                "unreachable" if r["connections"] is None else str(r["connections"]),
                r["url_env"],
            )
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
