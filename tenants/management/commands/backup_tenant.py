from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.lifecycle.backup import backup_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Write a consistent backup of one tenant's database to one file (a tar with a "
        "manifest): PostgreSQL custom format, or an SQLite copy through its backup API."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--output",
            metavar="FILE",
            help="Where to write it; it must not exist. Default: a new file under "
            "TENANT_ARCHIVE_DIR.",
        )

    def handle(self, *args, slug, output, **options):
        tenant = Tenant.objects.select_related("server").filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{slug}'.")
        try:
            archive = backup_tenant(tenant, output=Path(output) if output else None)
        except ValidationError as exc:
            raise CommandError(f"{'; '.join(exc.messages)} Nothing was changed.") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant '{slug}' backed up to {archive.path} "
                f"({archive.size_bytes} bytes, sha256 {archive.sha256})."
            )
        )
