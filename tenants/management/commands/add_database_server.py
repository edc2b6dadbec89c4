from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import DatabaseServer
from tenants.services import database_server_add


class Command(BaseCommand):
    help = (
        "Register a tenant database server. Its URL is read from the environment variable "
        "named, never stored; the variable must be set and the server must answer."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Short name: lower-case letters, digits, hyphens.")
        parser.add_argument(
            "--url-env",
            required=True,
            metavar="VAR",
            help="Environment variable holding the URL tenants connect through.",
        )
        parser.add_argument(
            "--admin-url-env",
            default="",
            metavar="VAR",
            help="Environment variable holding a direct URL for creating, cloning and "
            "dropping databases (when tenants connect through a pooler).",
        )
        parser.add_argument("--capacity", type=int, metavar="N", help="Most tenants it takes.")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="A server of this name registered with the same variables is no error (a "
            "deployment's start-up job may run this every time); other variables still are.",
        )
        parser.add_argument(
            "--status",
            default=DatabaseServer.Status.ACCEPTING,
            choices=DatabaseServer.Status.values,
        )

    def handle(self, *args, name, url_env, admin_url_env, capacity, status, if_missing, **options):
        existing = DatabaseServer.objects.filter(name=name).first()
        if if_missing and existing is not None:
            if (existing.url_env, existing.admin_url_env) != (url_env, admin_url_env):
                raise CommandError(
                    f"Database server '{name}' is registered with other variables "
                    f"({existing.url_env}, {existing.admin_url_env or '-'}); nothing was changed."
                )
            self.stdout.write(f"Database server '{name}' is already registered.")
            return
        try:
            server = database_server_add(
                name=name,
                url_env=url_env,
                admin_url_env=admin_url_env,
                status=status,
                capacity=capacity,
            )
        except ValidationError as exc:
            lines = [f"{field}: {msg}" for field, msgs in exc.message_dict.items() for msg in msgs]
            raise CommandError("Invalid database server:\n  " + "\n  ".join(lines)) from exc
        limit = f"capacity {server.capacity}" if server.capacity else "no capacity limit"
        self.stdout.write(
            self.style.SUCCESS(
                f"Database server '{server.name}' is registered ({server.status}, {limit}; "
                f"URL from {server.url_env})."
            )
        )
