import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import tenant_drop


class Command(BaseCommand):
    help = (
        "Drop a suspended tenant's database for good. The tenant row stays, with status "
        "'dropped'; its hosts then answer 404."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Confirm without a prompt. Without it, a terminal is needed.",
        )

    def handle(self, *args, slug, yes, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{slug}'.")
        if tenant.status != Tenant.Status.SUSPENDED:
            raise CommandError(
                f"Tenant '{slug}' is {tenant.status}; only a suspended tenant "
                "can be dropped. Nothing was changed."
            )
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError(
                    "Refusing to drop without --yes (no terminal to confirm "
                    "on). Nothing was changed."
                )
            answer = input(
                f"Type the slug '{slug}' to drop database {tenant.database_name} for good: "
            )
            if answer.strip() != slug:
                raise CommandError("Not confirmed. Nothing was changed.")
        try:
            tenant_drop(tenant)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.WARNING(f"Tenant '{slug}' dropped; database {tenant.database_name} is gone.")
        )
