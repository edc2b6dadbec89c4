"""Log events: what a record becomes on the wire, and how a client sees it."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from logstream.redaction import redact

ALL_GROUP = "logs.all"
GROUP_MESSAGE_TYPE = "log.batch"


def tenant_group(slug: str) -> str:
    return f"logs.tenant.{slug}"


def format_timestamp(created: float) -> str:
    """`2024-10-28 14:48:32.123` (UTC, millisecond precision)."""
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def record_message(record: logging.LogRecord) -> str:
    """The record's message with its traceback, if any, and every secret redacted."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not break the logging call
        message = str(record.msg)
    if record.exc_info and record.exc_info[0] is not None:
        message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
    elif record.exc_text:
        message = f"{message}\n{record.exc_text}"
    return redact(message)


def build_event(record: logging.LogRecord, *, tenant: str | None, request_id: str | None) -> dict:
    return {
        "timestamp": format_timestamp(record.created),
        "level": record.levelname,
        "levelno": record.levelno,
        "target": record.name,
        "message": record_message(record),
        "tenant": tenant,
        "request_id": request_id,
    }


def format_event(event: dict, fmt: str) -> str:
    """One WebSocket frame: the text line, or the JSON object (`fmt == "json"`)."""
    if fmt == "json":
        return json.dumps(
            {
                key: event.get(key)
                for key in ("timestamp", "level", "target", "message", "tenant", "request_id")
            },
            ensure_ascii=False,
        )
    return f"[{event['timestamp']}] {event['level']} [{event['target']}] {event['message']}"


def parse_level(value: str | None) -> int:
    """A `?level=` value (name or number) as a logging level; unknown values: everything."""
    if not value:
        return logging.NOTSET
    value = value.strip().upper()
    if value.isdigit():
        return int(value)
    if value == "WARN":
        value = "WARNING"
    level = logging.getLevelName(value)
    return level if isinstance(level, int) else logging.NOTSET
