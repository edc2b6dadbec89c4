"""The contact export: CSV (RFC 4180) or one JSON array, produced as a stream of chunks."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from addressbook.selectors import EXPORT_FIELDS

logger = logging.getLogger("addressbook.exports")

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); a leading apostrophe makes it text.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 200


def export_filename(tenant_slug: str, file_format: str, now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d")
    return f"contacts-{tenant_slug}-{day}.{file_format}"


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as the API's serializer writes it (TIME_ZONE is UTC);
    DRF's DateTimeField does the same with a time-zone lookup per value, which was 40 % of
    an export's time."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows a contact (datetimes as ISO 8601, like the serializer)."""
    return {
        field: _iso(value) if isinstance(value, datetime) else value
        for field, value in ((f, row[f]) for f in EXPORT_FIELDS)
    }


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_PREFIXES) else value
    if isinstance(value, datetime):
        return _iso(value)
    return "" if value is None else value


class _Line:
    """A write-only file for csv.writer: returns what it is given."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A header line, then one CRLF-terminated line per row; fields quoted when needed."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    yield writer.writerow(EXPORT_FIELDS)
    lines = []
    for row in rows:
        lines.append(writer.writerow([_csv_cell(row[field]) for field in EXPORT_FIELDS]))
        if len(lines) >= _ROWS_PER_CHUNK:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def json_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON array, written an element at a time."""
    separator = "["
    parts = []
    for row in rows:
        parts.append(separator + json.dumps(_plain(row), ensure_ascii=False))
        separator = ","
        if len(parts) >= _ROWS_PER_CHUNK:
            yield "".join(parts)
            parts = []
    yield "".join(parts) + ("[]" if separator == "[" else "]")


def contact_export(
    *,
    rows: Iterable[dict[str, Any]],
    file_format: str,
    tenant_slug: str,
    user_id: Any,
) -> Iterator[bytes]:
    """The export file as UTF-8 chunks; logs the row count once the last chunk is out."""
    count = 0

    def counted():
        nonlocal count
        for row in rows:
            count += 1
            yield row

    chunks = csv_chunks if file_format == "csv" else json_chunks
    for chunk in chunks(counted()):
        yield chunk.encode()
    logger.info(
        "Exported %s contacts as %s (tenant=%s user=%s)",
        count,
        file_format,
        tenant_slug,
        user_id,
    )
