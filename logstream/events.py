"""Log events: what a record becomes on the wire, and how a client sees it."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime

from logstream.redaction import redact

FRAME_FIELDS = ("timestamp", "level", "target", "message", "tenant", "request_id")


_last_second: tuple[int, str] = (0, "1970-01-01 00:00:00.")  # a second and its text


def format_timestamp(created: float) -> str:
    """`2024-10-28 14:48:32.123` (UTC, millisecond precision)."""
    # The microseconds rounded as datetime.fromtimestamp rounds them, then one strftime per
    # second: records come in time order, so most calls reuse the cached text.
    fraction, whole = math.modf(created)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    global _last_second
    second = int(whole)
    cached_second, text = _last_second  # one tuple: consistent whichever thread wrote it
    if cached_second != second:
        text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.")
        _last_second = (second, text)
    return f"{text}{micros // 1000:03d}"


def record_text(record: logging.LogRecord) -> str:
    """The record's message with its traceback, if any; not redacted yet."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not break the logging call
        message = str(record.msg)
    if record.exc_text:  # set by a formatter that already ran (the console's)
        return f"{message}\n{record.exc_text}"
    if record.exc_info and record.exc_info[0] is not None:
        return f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
    return message


def record_message(record: logging.LogRecord) -> str:
    """The record's message with its traceback, if any, and every secret redacted."""
    return redact(record_text(record))


def build_event(record: logging.LogRecord, *, tenant: str | None, request_id: str | None) -> dict:
    return make_event(
        record.created,
        record.levelname,
        record.levelno,
        record.name,
        record_message(record),
        tenant,
        request_id,
    )


def make_event(
    created: float,
    level: str,
    levelno: int,
    target: str,
    message: str,
    tenant: str | None,
    request_id: str | None,
) -> dict:
    """An event as it travels to the log stream's clients; `message` must be redacted."""
    return {
        "timestamp": format_timestamp(created),
        "level": level,
        "levelno": levelno,
        "target": target,
        "message": message,
        "tenant": tenant,
        "request_id": request_id,
    }


def format_event(event: dict, fmt: str) -> str:
    """One WebSocket frame: the text line, or the JSON object (`fmt == "json"`)."""
    if fmt == "json":
        return json.dumps({key: event.get(key) for key in FRAME_FIELDS}, ensure_ascii=False)
    return f"[{event['timestamp']}] {event['level']} [{event['target']}] {event['message']}"


def parse_level(value: str | None) -> int:
    """A `?level=` value (name or number) as a logging level; unknown values: everything."""
    if not value:
        return logging.NOTSET
    value = value.strip().upper()
    if value.isascii() and value.isdigit():
        return int(value)
    if value == "WARN":
        value = "WARNING"
    level = logging.getLevelName(value)
    return level if isinstance(level, int) else logging.NOTSET
