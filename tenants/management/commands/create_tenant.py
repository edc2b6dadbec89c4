import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import AdminSpec, ProvisioningError, TenantExistsError, provision_tenant


class Command(BaseCommand):
    help = "Create a tenant: its row and domains, its database (migrated), its first admin."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--domain",
            action="append",
            default=[],
            dest="domains",
            metavar="HOST",
            help="A host served as this tenant (repeatable).",
        )
        parser.add_argument(
            "--database-url", default="", help="Place the tenant on another PostgreSQL server."
        )
        parser.add_argument(
            "--server",
            default="",
            metavar="NAME",
            help="The registered database server to place it on (default: the accepting "
            "server with the most room).",
        )
        parser.add_argument("--admin-username")
        parser.add_argument("--admin-email")
        parser.add_argument(
            "--admin-password", help="Defaults to the TENANT_ADMIN_PASSWORD environment variable."
        )

    def handle(self, *args, slug, name, domains, database_url, server, **options):
        admin = None
        password = options["admin_password"] or os.environ.get("TENANT_ADMIN_PASSWORD", "")
        if options["admin_username"] or options["admin_email"]:
            if not (options["admin_username"] and options["admin_email"] and password):
                raise CommandError(
                    "A first admin needs --admin-username, --admin-email and "
                    "--admin-password (or TENANT_ADMIN_PASSWORD)."
                )
            admin = AdminSpec(options["admin_username"], options["admin_email"], password)
        try:
            tenant = provision_tenant(
                slug=slug,
                name=name,
                domains=domains,
                database_url=database_url,
                server=server,
                admin=admin,
                refuse_active=True,
            )
        except TenantExistsError as exc:
            raise CommandError(f"Tenant '{slug}' already exists") from exc
        except ValidationError as exc:
            lines = [f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]
            raise CommandError("Invalid tenant:\n  " + "\n  ".join(lines)) from exc
        except ProvisioningError as exc:
            raise CommandError(
                f"Provisioning of '{slug}' failed (status: failed; run the "
                f"same command again to retry): {exc.reason}"
            ) from exc
        hosts = ", ".join(tenant.domains.values_list("domain", flat=True)) or "-"
        self.stdout.write(
            self.style.SUCCESS(
                f"Tenant '{tenant.slug}' is active (server {tenant.server_name or '-'}; "
                f"database {tenant.database_name}; domains {hosts})."
            )
        )
