"""Log events: what a record becomes on the wire, and how a client sees it."""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime

from logstream.redaction import redact_secrets
from tenants.context import slug_of

FRAME_FIELDS = ("timestamp", "level", "target", "message", "tenant", "request_id")
MAX_LEVEL_LENGTH = 16  # a `?level=` value longer than this names no level

# Records of these loggers (and their children) describe the platform's infrastructure
# (database hosts and users, connection failures, the cache's circuit breaker): platform
# staff see them, a tenant's stream never does, even when logged inside its context.
INFRASTRUCTURE_LOGGERS = (
    "django.db",
    "django.template",
    "psycopg",
    "psycopg2",
    "redis",
    "channels_redis",
    "tenants.db",
    "tenants.routers",
    "tenants.services",
    "tenants.selectors",
    "tenants.resolution",
    "config.cache",
    "logstream.fanout",
)
_infrastructure: dict[str, bool] = {}

# Characters that would end a log line or steer a terminal: C0 and C1 controls, DEL, the
# Unicode line and paragraph separators, and the bidirectional overrides and isolates.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` on one line: every control character written as its escape (`\\n`, `\\r`,
    `\\t`, `\\x1b`, `\\u2028`), so a client-supplied value can never start a forged line
    or move a terminal's cursor. Everything else, backslashes included, is left as it is."""
    if text.isprintable():  # the common case, at C speed
        return text
    return _CONTROL.sub(_escape_one, text)


def is_infrastructure(name: str) -> bool:
    """True for a logger of `INFRASTRUCTURE_LOGGERS` or one of their children."""
    flag = _infrastructure.get(name)
    if flag is None:
        flag = _infrastructure[name] = any(
            name == prefix or name.startswith(prefix + ".") for prefix in INFRASTRUCTURE_LOGGERS
        )
    return flag


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


def record_line(record: logging.LogRecord) -> str:
    """The record's message on one line (control characters escaped); not redacted yet.
    Every handler and formatter of the project writes the message through this."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not break the logging call
        message = str(record.msg)
    return escape_controls(message)


def record_traceback(record: logging.LogRecord) -> str | None:
    """The record's traceback text, if any; not redacted yet."""
    if record.exc_text:  # set by a formatter that already ran (the console's)
        return record.exc_text
    if record.exc_info and record.exc_info[0] is not None:
        return logging.Formatter().formatException(record.exc_info)
    return None


def record_tenant(record: logging.LogRecord, tenant) -> str | None:
    """The slug a record belongs to: the active tenant's, else that of the request the
    record is about (Django logs `django.request` records after the tenant middleware has
    returned, with the request in `extra`)."""
    if tenant is None:
        request = record.__dict__.get("request")
        tenant = getattr(request, "tenant", None) if request is not None else None
    return slug_of(tenant)


def build_event(record: logging.LogRecord, *, tenant: str | None, request_id: str | None) -> dict:
    traceback = record_traceback(record)
    return make_event(
        record.created,
        record.levelname,
        record.levelno,
        record.name,
        redact_secrets(record_line(record)),
        tenant,
        request_id,
        traceback=redact_secrets(traceback) if traceback is not None else None,
    )


def make_event(
    created: float,
    level: str,
    levelno: int,
    target: str,
    message: str,
    tenant: str | None,
    request_id: str | None,
    *,
    traceback: str | None = None,
) -> dict:
    """An event as it travels to the log stream's clients; `message` (one line) and
    `traceback` must be redacted. `internal` marks what only platform staff may see."""
    return {
        "timestamp": format_timestamp(created),
        "level": level,
        "levelno": levelno,
        "target": target,
        "message": message,
        "tenant": tenant,
        "request_id": request_id,
        "traceback": traceback,
        "internal": is_infrastructure(target),
    }


def format_event(event: dict, fmt: str, *, staff: bool = True) -> str:
    """One WebSocket frame: the text line, or the JSON object (`fmt == "json"`). Platform
    staff (`staff`) get the traceback after the message; a tenant's clients never do."""
    message = event["message"]
    traceback = event.get("traceback") if staff else None
    if traceback:
        message = f"{message}\n{traceback}"
    if fmt == "json":
        frame = {key: event.get(key) for key in FRAME_FIELDS}
        frame["message"] = message
        return json.dumps(frame, ensure_ascii=False)
    return f"[{event['timestamp']}] {event['level']} [{event['target']}] {message}"


def parse_level(value: str | None) -> int:
    """A `?level=` value (name or number) as a logging level; an unknown or over-long value
    is ignored (everything is sent)."""
    if not value or len(value) > MAX_LEVEL_LENGTH:
        return logging.NOTSET
    value = value.strip().upper()
    if value.isascii() and value.isdigit():
        return int(value)
    if value == "WARN":
        value = "WARNING"
    level = logging.getLevelName(value)
    return level if isinstance(level, int) else logging.NOTSET
