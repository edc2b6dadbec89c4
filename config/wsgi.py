"""WSGI entry point: the HTTP API in production (see docs/architecture.md, server model)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
