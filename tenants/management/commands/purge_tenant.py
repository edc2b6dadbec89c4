import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.lifecycle.purge import check_purgeable, leftover_database, purge_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Purge a dropped tenant once its retention period (TENANT_PURGE_RETENTION_DAYS) has "
        "passed: its domains, the backups and exports the product wrote and any database of "
        "it still present are removed; the row stays, 'purged', so the slug is never reused."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Confirm without a prompt. Without it, a terminal is needed.",
        )

    def handle(self, *args, slug, yes, **options):
        tenant = Tenant.objects.select_related("server").filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{slug}'.")
        try:
            check_purgeable(tenant)
            leftover_database(tenant)
            if not yes:
                self._confirm(tenant)
            purge_tenant(tenant)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        archives = tenant.archives.count()
        self.stdout.write(
            self.style.WARNING(
                f"Tenant '{slug}' purged: domains, {archives} archive(s) and its database are "
                "gone; the row stays as a tombstone."
            )
        )

    def _confirm(self, tenant: Tenant) -> None:
        if not sys.stdin.isatty():
            raise CommandError(
                "Refusing to purge without --yes (no terminal to confirm on). Nothing was changed."
            )
        answer = input(
            f"Type the slug '{tenant.slug}' to remove its domains, backups and exports for good: "
        )
        if answer.strip() != tenant.slug:
            raise CommandError("Not confirmed. Nothing was changed.")
