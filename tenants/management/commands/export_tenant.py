from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.lifecycle.export import export_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Write an active or suspended tenant's data as a portable archive (a zip of one "
        "JSON-lines file per model, a README of the format and a manifest); secrets are "
        "left out. An existing output file is never overwritten."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--output", required=True, metavar="FILE", type=Path)

    def handle(self, *args, slug, output, **options):
        tenant = Tenant.objects.select_related("server").filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{slug}'.")
        try:
            archive = export_tenant(tenant, output=output)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant '{slug}' exported to {archive.path} ({archive.size_bytes} bytes, "
                f"sha256 {archive.sha256})."
            )
        )
