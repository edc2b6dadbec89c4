import argparse

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tenants.context import use_tenant
from tenants.models import Tenant
from tenants.selectors import tenant_list


class Command(BaseCommand):
    help = (
        "Run a manage.py command inside a tenant's context, e.g. "
        "'tenant_command --tenant acme flushexpiredtokens'. Options before COMMAND "
        "belong to tenant_command."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", dest="slug", metavar="SLUG")
        target.add_argument("--all-tenants", action="store_true")
        parser.add_argument("command_name", metavar="COMMAND")
        parser.add_argument("command_args", nargs=argparse.REMAINDER, metavar="ARGS")

    def handle(self, *args, slug, all_tenants, command_name, command_args, **options):
        if command_name in {"tenant_command", "migrate_tenants", "create_tenant", "drop_tenant"}:
            raise CommandError(f"'{command_name}' manages tenants itself; run it directly.")
        if all_tenants:
            tenants = list(tenant_list(statuses=[Tenant.Status.ACTIVE]))
        else:
            tenants = list(tenant_list(slugs=[slug]))
            if not tenants:
                raise CommandError(f"Unknown tenant '{slug}'.")
            if tenants[0].status != Tenant.Status.ACTIVE:
                raise CommandError(f"Tenant '{slug}' is {tenants[0].status}, not active.")
        failed = []
        for tenant in tenants:
            self.stdout.write(f"== {tenant.slug} ==")
            try:
                with use_tenant(tenant):
                    call_command(
                        command_name, *command_args, stdout=self.stdout, stderr=self.stderr
                    )
            except CommandError as exc:
                self.stderr.write(f"{tenant.slug}: {exc}")
                failed.append(tenant.slug)
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}")
