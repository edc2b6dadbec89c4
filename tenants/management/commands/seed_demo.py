from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from accounts.services import user_create
from tenants.services import AdminSpec, provision_tenant

DEMO_SLUG = "acme"
DEMO_ADMIN = AdminSpec("demo-admin", "demo-admin@acme.localhost", "Acme-S3cure-pass")
PLATFORM_ADMIN = AdminSpec("platform", "platform@localhost", "Staff-S3cure-pass")


class Command(BaseCommand):
    help = (
        "Create the demo tenant 'acme' (acme.localhost) with a known admin, and a "
        "platform staff user; idempotent. For development only."
    )

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            self.stderr.write("seed_demo does nothing under APP_ENV=production.")
            return
        provision_tenant(
            slug=DEMO_SLUG, name="Acme Corp", domains=["acme.localhost"], admin=DEMO_ADMIN
        )
        if not User.objects.filter(username=PLATFORM_ADMIN.username).exists():
            user_create(
                username=PLATFORM_ADMIN.username,
                email=PLATFORM_ADMIN.email,
                password=PLATFORM_ADMIN.password,
                is_staff=True,
                is_superuser=True,
            )
        port = 8000
        self.stdout.write(f"""
Demo tenant 'acme' is ready at http://acme.localhost:{port} (and, with TENANT_DEFAULT=acme,
at http://localhost:{port}).
  tenant admin : {DEMO_ADMIN.username} / {DEMO_ADMIN.password}
  platform staff (Django admin at http://localhost:{port}/admin/): \
{PLATFORM_ADMIN.username} / {PLATFORM_ADMIN.password}

Try:
  curl -s http://localhost:{port}/health
  curl -s -H 'Host: acme.localhost' http://127.0.0.1:{port}/health
  curl -s -X POST http://acme.localhost:{port}/api/auth/login \\
       -H 'Content-Type: application/json' \\
       -d '{{"username_or_email": "{DEMO_ADMIN.username}", "password": "{DEMO_ADMIN.password}"}}'
""")
