"""`python -m bench.peer.manage peer_seed --slugs-file F --contacts N --username U --out F`:
the peer's tenants (one schema each, cloned from the migrated `template` schema), one user
in each, the product's synthetic contacts (`bench.seed.CONTACTS_SQL`, the same rows) and a
bearer token per tenant, written as `<slug>.localhost <token>` lines for bench/rotate.lua."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import override_settings
from django_tenants.utils import schema_context
from rest_framework_simplejwt.tokens import AccessToken

from bench.peer.customers.models import Client, Domain
from bench.seed import CONTACTS_SQL


class Command(BaseCommand):
    help = "Seed the peer project's tenants, users and contacts; write their tokens."

    def add_arguments(self, parser):
        parser.add_argument("--slugs-file", required=True)
        parser.add_argument("--contacts", type=int, default=200)
        parser.add_argument("--username", required=True)
        parser.add_argument("--out", required=True)

    def handle(self, *args, slugs_file, contacts, username, out, **options):
        slugs = Path(slugs_file).read_text().split()
        public, _ = Client.objects.get_or_create(schema_name="public", name="public")
        Domain.objects.get_or_create(domain="localhost", tenant=public, is_primary=True)
        if not Client.objects.filter(schema_name="template").exists():
            # The schema new tenants are cloned from, migrated once.
            with override_settings(TENANT_CREATION_FAKES_MIGRATIONS=False, TENANT_BASE_SCHEMA=""):
                Client.objects.create(schema_name="template", name="template")
        lines = []
        for slug in slugs:
            tenant = Client.objects.create(schema_name=slug, name=slug)
            Domain.objects.create(domain=f"{slug}.localhost", tenant=tenant, is_primary=True)
            with schema_context(slug):
                # No password: the harness mints the tokens (no login is measured here).
                user = get_user_model().objects.create_user(username, f"{username}@example.com")
                with connection.cursor() as cursor:
                    cursor.execute(CONTACTS_SQL, {"count": contacts, "slug": slug})
                    cursor.execute("ANALYZE addressbook_contact")
                lines.append(f"{slug}.localhost {AccessToken.for_user(user)}\n")
        Path(out).write_text("".join(lines))
        self.stdout.write(f"seeded {len(slugs)} peer tenants")
