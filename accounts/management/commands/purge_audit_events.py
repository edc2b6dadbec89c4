from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError
from django.utils import timezone

from accounts.audit import audit_events_purge
from tenants.db.aliases import register_tenant_database
from tenants.models import Tenant

# A dropped tenant has no database left to purge.
_WITH_DATABASE = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


class Command(BaseCommand):
    help = (
        "Delete audit events older than AUDIT_RETENTION_DAYS (or --days): the platform's "
        "(main database) by default, one tenant's with --tenant, the platform's and every "
        "tenant's with --all-tenants. Schedule it daily."
    )
    # It chooses its databases itself: tenant_command refuses to run it.
    manages_tenants = True

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--tenant", dest="slug", metavar="SLUG")
        where.add_argument("--all-tenants", action="store_true")
        parser.add_argument("--days", type=int, default=None, metavar="N")

    def handle(self, *args, slug, all_tenants, days, **options):
        days = settings.AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1.")
        older_than = timezone.now() - timedelta(days=days)
        targets: list[tuple[str, str]] = []
        if slug is not None:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                raise CommandError(f"Unknown tenant '{slug}'.")
            if tenant.status not in _WITH_DATABASE:
                raise CommandError(f"Tenant '{slug}' is {tenant.status}; it has no database.")
            targets.append((f"tenant {slug}", register_tenant_database(tenant)))
        else:
            targets.append(("the platform database", DEFAULT_DB_ALIAS))
            if all_tenants:
                for tenant in Tenant.objects.filter(status__in=_WITH_DATABASE).order_by("slug"):
                    targets.append((f"tenant {tenant.slug}", register_tenant_database(tenant)))
        total, failed = 0, []
        for label, alias in targets:
            try:
                deleted = audit_events_purge(older_than=older_than, using=alias)
            except DatabaseError as exc:  # one unreachable tenant does not stop the others
                failed.append(label)
                self.stderr.write(f"Could not purge {label}: {type(exc).__name__}")
                continue
            total += deleted
            self.stdout.write(f"Purged {deleted} audit event(s) older than {days} days in {label}.")
        if len(targets) > 1:
            self.stdout.write(f"Purged {total} audit event(s) in total.")
        if failed:
            raise CommandError(f"Not purged: {', '.join(failed)}.")
