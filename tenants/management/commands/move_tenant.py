from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.lifecycle.move import move_finish, move_rollback, move_tenant
from tenants.models import DatabaseServer, Tenant, TenantMove


class Command(BaseCommand):
    help = (
        "Move a tenant's database to another database server: copy while it is served, "
        "refuse its writes (503 'Tenant is being moved') for the short cut-over, verify, "
        "flip its placement. The source is kept, read-only, until --finish (or "
        "--drop-source). Run again to resume an interrupted move; --rollback abandons one "
        "that has not switched."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--to", metavar="SERVER", help="The database server to move to.")
        action.add_argument(
            "--finish", action="store_true", help="Drop the source of a switched move."
        )
        action.add_argument(
            "--rollback",
            action="store_true",
            help="Abandon a move that has not switched: drop the target, allow writes again.",
        )
        parser.add_argument(
            "--drop-source",
            action="store_true",
            help="Drop the source database as soon as the placement flips.",
        )

    def handle(self, *args, slug, to, finish, rollback, drop_source, **options):
        tenant = Tenant.objects.select_related("server").filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{slug}'. Nothing was changed.")
        if drop_source and not to:
            raise CommandError("--drop-source goes with --to.")
        try:
            if finish:
                move = move_finish(tenant)
            elif rollback:
                move = move_rollback(tenant)
            else:
                server = DatabaseServer.objects.filter(name=to).first()
                if server is None:
                    raise CommandError(f"Unknown database server '{to}'. Nothing was changed.")
                move = move_tenant(tenant, to=server, drop_source=drop_source)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(_outcome(move)))


def _outcome(move: TenantMove) -> str:
    slug, source, target = move.tenant.slug, move.source_server.name, move.target_server.name
    if move.state == TenantMove.State.ROLLED_BACK:
        return f"Move of '{slug}' to '{target}' rolled back; it is served from '{source}'."
    if move.state == TenantMove.State.FINISHED:
        return (
            f"Tenant '{slug}' is on '{target}'; its source database {move.source_database} "
            f"on '{source}' is dropped."
        )
    blocked = move.details.get("write_block_seconds")
    return (
        f"Tenant '{slug}' moved from '{source}' to '{target}' (writes refused for "
        f"{blocked} s); the source database {move.source_database} is kept read-only until "
        f"move_tenant {slug} --finish."
    )
