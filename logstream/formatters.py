"""The console's formatters. Both escape a record's message with
`logstream.events.escape_controls`, as the log stream does, so a client-supplied value (a path,
a username) can never forge a line: its control characters are escaped.

`LOG_FORMAT=text`: `[asctime] LEVEL [logger] message`, the traceback on the lines after.
`LOG_FORMAT=json`: one JSON object per line, the same fields as a JSON frame of the log
stream (timestamp, level, target, message, tenant, request_id).
"""

import logging

from config.middleware import get_request_id
from logstream.events import build_event, escape_controls, format_event, record_tenant
from tenants.context import get_current_tenant


class TextLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)  # set by format() just before
        return super().formatMessage(record)


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = build_event(
            record, tenant=record_tenant(record, get_current_tenant()),
            request_id=get_request_id(),
        )  # fmt: skip
        return format_event(event, "json")
