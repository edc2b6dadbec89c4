"""The contact export: CSV (RFC 4180) or one JSON array, produced as a stream of chunks."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import count, islice
from operator import itemgetter
from typing import Any

from django.db import connections

from addressbook import selectors
from addressbook.models import CONTACT_FIELDS
from addressbook.serializers import api_datetime

logger = logging.getLogger("addressbook.exports")

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); a leading apostrophe makes it text.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ROWS_PER_CHUNK = 500


def export_filename(tenant_slug: str, file_format: str, now: datetime | None = None) -> str:
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d")
    return f"contacts-{tenant_slug}-{day}.{file_format}"


def _formatted_by_database(using: str) -> bool:
    return connections[using].vendor == "postgresql"


def _csv_cells(row: tuple) -> list[Any]:
    """The row's cells as the CSV file shows them: formula protection on text, datetimes
    as ISO 8601 (None and numbers the writer itself turns into "" and digits). Inline
    rather than a function per cell: this runs for every cell of the file."""
    return [
        ("'" + value if value.startswith(_FORMULA_PREFIXES) else value)
        if isinstance(value, str)
        else (api_datetime(value) if isinstance(value, datetime) else value)
        for value in row
    ]


def csv_chunks(rows: Iterable[tuple]) -> Iterator[str]:
    """A header line, then one CRLF-terminated line per row (a tuple of CONTACT_FIELDS);
    fields quoted when needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CONTACT_FIELDS)
    cells = map(_csv_cells, rows)
    while True:
        writer.writerows(islice(cells, _ROWS_PER_CHUNK))
        text = buffer.getvalue()
        if not text:
            return
        yield text
        buffer.seek(0)
        buffer.truncate()


def _plain(row: tuple) -> dict[str, Any]:
    """A row as the API shows a contact (datetimes as ISO 8601, like the serializer)."""
    return {
        field: api_datetime(value) if isinstance(value, datetime) else value
        for field, value in zip(CONTACT_FIELDS, row, strict=True)
    }


def json_chunks(rows: Iterable[tuple]) -> Iterator[str]:
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
    filters: Mapping[str, Any],
    using: str,
    file_format: str,
    tenant_slug: str,
    user_id: Any,
) -> Iterator[bytes]:
    """The export file of the contacts `filters` select in the database `using`, as UTF-8
    chunks; logs the row count once the last chunk is out."""
    columns = selectors.api_datetime_columns() if _formatted_by_database(using) else {}
    rows = selectors.contact_export_rows(filters=filters, using=using, columns=columns)
    # zip() takes one number from `tally` per row, in C: a counting generator around
    # the rows cost a Python frame per row.
    tally = count()
    rows = map(itemgetter(0), zip(rows, tally, strict=False))
    chunks = csv_chunks(rows) if file_format == "csv" else json_chunks(rows)
    for chunk in chunks:
        yield chunk.encode()
    logger.info(
        "Exported %s contacts as %s (tenant=%s user=%s)",
        next(tally),
        file_format,
        tenant_slug,
        user_id,
    )
