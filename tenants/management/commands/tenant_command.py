"""Run a manage.py command for one tenant (or each active tenant), on its database only.

Every command either stays in the tenant's database or is refused before it runs:

- a command with a `--database` option runs with the tenant's alias as that option (an
  explicit `--database` naming any other database is refused);
- a command without one runs only when it is known to work through the tenant context
  alone (`TENANT_SCOPED_COMMANDS`, or a command class that sets `runs_in_tenant = True`);
- everything else (project-wide, file-system, server, shell or main-database commands) is
  refused, as is any command in `REFUSED_COMMANDS`.

While the command runs, any statement on the main database raises, so a command that
would reach platform data through the router fails instead of touching it.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager

from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from tenants.context import use_tenant
from tenants.models import Tenant
from tenants.selectors import tenant_list

# Commands without `--database` that only use tenant-app models through the tenant context.
TENANT_SCOPED_COMMANDS = frozenset({"flushexpiredtokens", "purge_revoked_tokens"})
# Commands refused although they take `--database`, and why.
REFUSED_COMMANDS = {
    "createsuperuser": (
        "a superuser means nothing in a tenant database (platform staff live in the main "
        "database); a tenant's admins are created with create_tenant --admin-username or "
        "POST /api/users"
    ),
}


class MainDatabaseAccess(CommandError):
    """A command run for a tenant tried to use the main database."""


def command_policy(name: str) -> tuple[str, str]:
    """How `tenant_command` treats command `name`: ("database", "") runs it with
    `--database <alias>`, ("tenant", "") runs it in the tenant context, ("refused", reason)
    refuses it. Unknown commands raise CommandError."""
    commands = get_commands()
    if name not in commands:
        raise CommandError(f"Unknown command: '{name}'.")
    if name in REFUSED_COMMANDS:
        return "refused", REFUSED_COMMANDS[name]
    command = load_command_class(commands[name], name)
    if getattr(command, "manages_tenants", False) or commands[name] == "tenants":
        return "refused", "it manages tenants itself; run it directly"
    parser = command.create_parser("manage.py", name)
    if any(action.dest == "database" for action in parser._actions):
        return "database", ""
    if name in TENANT_SCOPED_COMMANDS or getattr(command, "runs_in_tenant", False):
        return "tenant", ""
    return "refused", "it is not known to stay within one tenant's database"


def _database_arguments(args: list[str]) -> list[str]:
    """The values given to `--database` in `args` (any unambiguous abbreviation too)."""
    values = []
    for index, arg in enumerate(args):
        if arg == "--":
            break
        option, _, value = arg.partition("=")
        if len(option) > 2 and "--database".startswith(option) and option.startswith("--d"):
            if not value and index + 1 < len(args):
                value = args[index + 1]
            values.append(value)
    return values


@contextmanager
def _main_database_refused(command_name: str):
    """Make every statement on the main database raise while the block runs (this thread)."""

    def refuse(execute, sql, params, many, context):
        raise MainDatabaseAccess(
            f"'{command_name}' tried to use the main database; a tenant command only "
            "ever touches the tenant's database. Nothing was run on the main database."
        )

    with connections[DEFAULT_DB_ALIAS].execute_wrapper(refuse):
        yield


class Command(BaseCommand):
    help = (
        "Run a manage.py command inside a tenant's context and on its database only, e.g. "
        "'tenant_command --tenant acme flushexpiredtokens'. Options before COMMAND "
        "belong to tenant_command. Commands that would reach the main database are refused."
    )
    manages_tenants = True

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant", dest="slug", metavar="SLUG")
        target.add_argument("--all-tenants", action="store_true")
        parser.add_argument("command_name", metavar="COMMAND")
        parser.add_argument("command_args", nargs=argparse.REMAINDER, metavar="ARGS")

    def handle(self, *args, slug, all_tenants, command_name, command_args, **options):
        if all_tenants:
            tenants = list(tenant_list(statuses=[Tenant.Status.ACTIVE]))
        else:
            tenants = list(tenant_list(slugs=[slug]))
            if not tenants:
                raise CommandError(f"Unknown tenant '{slug}'.")
            if tenants[0].status != Tenant.Status.ACTIVE:
                raise CommandError(f"Tenant '{slug}' is {tenants[0].status}, not active.")
        mode, reason = command_policy(command_name)
        if mode == "refused":
            raise CommandError(f"'{command_name}' cannot run for a tenant: {reason}.")
        requested = _database_arguments(command_args)
        failed = []
        for tenant in tenants:
            if any(value != tenant.alias for value in requested):
                raise CommandError(
                    f"'{command_name}' runs on the tenant's database ({tenant.alias}); "
                    "--database cannot name another one."
                )
            extra = {"database": tenant.alias} if mode == "database" else {}
            self.stdout.write(f"== {tenant.slug} ==")
            command = load_command_class(get_commands()[command_name], command_name)
            # Its check reads the main database's migrations; the tenant's are checked by
            # migrate_tenants.
            command.requires_migrations_checks = False
            try:
                with use_tenant(tenant), _main_database_refused(command_name):
                    call_command(
                        command,
                        *command_args,
                        stdout=self.stdout,
                        stderr=self.stderr,
                        **extra,
                    )
            except MainDatabaseAccess:
                raise
            except CommandError as exc:
                self.stderr.write(f"{tenant.slug}: {exc}")
                failed.append(tenant.slug)
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)}")
