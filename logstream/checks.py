"""System checks of the log stream's set-up (ids logstream.W0xx)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

from logstream.auth import allow_list_entry


@register(Tags.security)
def check_logs_admin_users(app_configs, **kwargs):
    """`WS_LOGS_ADMIN_USER` entries that can never let anyone in. (An e-mail address is a
    valid entry: it matches the user who verified it.)"""
    problems = []
    for value in settings.WS_LOGS_ADMIN_USER:
        if not value.strip():
            continue
        entry = allow_list_entry(value)
        if entry is None:
            problems.append(
                Warning(
                    f"WS_LOGS_ADMIN_USER entry {value.strip()!r} is malformed and matches no one.",
                    hint="Use a platform staff username or verified address, or "
                    "tenant-slug:username (or tenant-slug:address) for a tenant admin.",
                    id="logstream.W001",
                )
            )
    return problems
