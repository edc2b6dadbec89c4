import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.lifecycle.backup import restore_finish, restore_tenant
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Restore a tenant from a backup_tenant file: into the same tenant (its current "
        "database is kept aside, read-only, until --finish) or, with --as, as a new tenant."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The tenant the backup is of.")
        parser.add_argument("--input", metavar="FILE", help="The backup file.")
        parser.add_argument(
            "--as", dest="as_slug", metavar="NEW_SLUG", help="Restore as a new tenant."
        )
        parser.add_argument(
            "--finish",
            action="store_true",
            help="Drop the database an earlier restore into SLUG kept aside.",
        )
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Confirm without a prompt. Without it, a terminal is needed.",
        )

    def handle(self, *args, slug, input, as_slug, finish, yes, **options):
        if finish:
            if input or as_slug:
                raise CommandError("--finish takes no --input or --as.")
            self._finish(slug, yes)
            return
        if not input:
            raise CommandError("--input FILE is required.")
        if not as_slug:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                raise CommandError(f"Unknown tenant '{slug}'. Nothing was changed.")
            self._confirm(
                yes,
                slug,
                f"Type the slug '{slug}' to replace its data with the backup's "
                "(the current database is kept aside until --finish): ",
            )
        try:
            tenant = restore_tenant(slug, input=Path(input), as_slug=as_slug or None)
        except ValidationError as exc:
            raise CommandError(f"{'; '.join(exc.messages)} Nothing was changed.") from exc
        if as_slug:
            self.stdout.write(
                self.style.SUCCESS(f"Backup of '{slug}' restored as new tenant '{tenant.slug}'.")
            )
            return
        aside = tenant.restores.filter(state="switched").first()
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant '{slug}' restored; its previous database "
                f"{Path(aside.previous_database_name).name} is kept aside, read-only, until "
                f"`restore_tenant {slug} --finish`."
            )
        )

    def _finish(self, slug: str, yes: bool) -> None:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{slug}'. Nothing was changed.")
        self._confirm(
            yes, slug, f"Type the slug '{slug}' to drop the database its restore kept aside: "
        )
        try:
            record = restore_finish(tenant)
        except ValidationError as exc:
            raise CommandError(f"{'; '.join(exc.messages)} Nothing was changed.") from exc
        self.stdout.write(
            self.style.WARNING(
                f"Tenant '{slug}': database {Path(record.previous_database_name).name}, "
                "kept aside by its restore, is dropped."
            )
        )

    def _confirm(self, yes: bool, slug: str, prompt: str) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise CommandError(
                "Refusing without --yes (no terminal to confirm on). Nothing was changed."
            )
        if input(prompt).strip() != slug:
            raise CommandError("Not confirmed. Nothing was changed.")
