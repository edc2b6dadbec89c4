"""`LOG_FORMAT=json`: the console writes one JSON object per line, the same fields as a
JSON frame of the log stream (timestamp, level, target, message, tenant, request_id)."""

import logging

from config.middleware import get_request_id
from logstream.events import build_event, format_event
from tenants.context import get_current_tenant


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        tenant = get_current_tenant()
        event = build_event(
            record, tenant=tenant.slug if tenant is not None else None,
            request_id=get_request_id(),
        )  # fmt: skip
        return format_event(event, "json")
