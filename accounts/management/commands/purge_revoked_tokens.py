from django.core.management.base import BaseCommand

from accounts.services import revoked_tokens_purge
from tenants.context import get_current_tenant


class Command(BaseCommand):
    help = (
        "Delete deny-list rows of tokens that have expired anyway, in the active database. "
        "For every tenant: 'tenant_command --all-tenants purge_revoked_tokens' (schedule "
        "it daily, with SimpleJWT's flushexpiredtokens)."
    )

    def handle(self, *args, **options):
        tenant = get_current_tenant()
        deleted = revoked_tokens_purge()
        where = f"tenant {tenant.slug}" if tenant is not None else "the platform database"
        self.stdout.write(f"Purged {deleted} expired revoked token(s) in {where}.")
