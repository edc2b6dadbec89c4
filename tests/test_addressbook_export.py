"""The export's PostgreSQL path (datetimes and CSV formula protection computed by the
database) against the Python one, its chunking, and its tenant scope."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from addressbook import exports, selectors
from addressbook.models import Contact
from tenants.context import use_tenant
from tests.helpers import CONTACT_FIELDS

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/api/address-book"
on_postgresql = pytest.mark.skipif(
    connections["default"].vendor != "postgresql", reason="the database-formatted path"
)

# Cells that need quoting, escaping, formula protection or care with NULL and unicode.
TRICKY_TEXT = [
    '=HYPERLINK("http://evil","click")',
    "+33 1 23",
    "-5",
    "@sum(A1)",
    "\tTabbed",
    "\rreturn",
    "'already quoted",
    'quote " inside',
    "comma, inside",
    "new\nline",
    "cr\r\ninside",
    "back\\slash",
    "\\.",
    "ctrl \x01\x1f end",
    "Zoë Ødegård 山田 😀",
    "line\u2028separator",
    " spaced ",
    "x",
]
DATETIMES = [
    datetime(2024, 2, 29, 23, 59, 59, 0, tzinfo=UTC),
    datetime(2024, 3, 1, 0, 0, 0, 120000, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
]


@pytest.fixture
def tricky_book(acme):
    """Contacts with every tricky text in every text column, NULL and extreme ages, and
    datetimes with and without microseconds."""
    with use_tenant(acme):
        contacts = []
        for i, text in enumerate(TRICKY_TEXT):
            contacts.append(
                Contact.objects.create(
                    name=text,
                    email=TRICKY_TEXT[-1 - i],
                    phone="" if i % 3 else text[:20],
                    address=text * 2,
                    gender=Contact.Gender.values[i % 4],
                    age=(None, 0, 150, 42)[i % 4],
                    notes="" if i % 2 else text,
                )
            )
        for i, contact in enumerate(contacts):
            Contact.objects.filter(pk=contact.pk).update(
                created_at=DATETIMES[i % len(DATETIMES)],
                updated_at=DATETIMES[(i + 1) % len(DATETIMES)],
            )
    return contacts


def export_bytes(api, query: str) -> bytes:
    response = api.get(f"{URL}/export?{query}")
    assert response.status_code == HTTPStatus.OK
    return b"".join(response.streaming_content)


@on_postgresql
@pytest.mark.parametrize("file_format", ["csv", "json"])
@pytest.mark.parametrize("ordering", ["name", "-created_at", "age,-updated_at", "-id"])
def test_postgresql_export_is_byte_for_byte_the_python_one(
    api, tricky_book, monkeypatch, file_format, ordering
):
    monkeypatch.setattr(selectors, "EXPORT_BATCH_SIZE", 5)
    query = f"format={file_format}&ordering={ordering}"
    from_database = export_bytes(api, query)
    monkeypatch.setattr(exports, "_formatted_by_database", lambda using: False)
    from_python = export_bytes(api, query)
    assert from_database == from_python
    assert from_database.count(b'"id"' if file_format == "json" else b"\r\n") >= len(tricky_book)


@on_postgresql
def test_postgresql_formats_the_export_columns_itself(api, acme, tricky_book):
    with CaptureQueriesContext(connections[acme.alias]) as queries:
        export_bytes(api, "format=csv")
    reads = [q["sql"] for q in queries if "addressbook_contact" in q["sql"]]
    assert reads
    assert all("to_char" in sql for sql in reads)


def test_csv_export_quotes_protects_and_formats_every_tricky_cell(api, tricky_book):
    text = export_bytes(api, "format=csv&ordering=id").decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CONTACT_FIELDS
    names = [row[1] for row in rows[1:]]
    protected = {"=", "+", "-", "@", "\t", "\r"}
    assert names == ["'" + t if t[0] in protected else t for t in TRICKY_TEXT]
    created = [row[8] for row in rows[1:5]]
    assert created == [
        "2024-02-29T23:59:59Z",
        "2024-03-01T00:00:00.120000Z",
        "1999-12-31T23:59:59.000001Z",
        "0999-01-02T03:04:05Z",
    ]
    assert [row[6] for row in rows[1:5]] == ["", "0", "150", "42"]


def test_json_export_keeps_the_values_as_stored(api, tricky_book):
    exported = json.loads(export_bytes(api, "format=json&ordering=id"))
    assert [c["name"] for c in exported] == TRICKY_TEXT
    assert [c["age"] for c in exported[:4]] == [None, 0, 150, 42]
    assert exported[1]["created_at"] == "2024-03-01T00:00:00.120000Z"
    assert list(exported[0]) == CONTACT_FIELDS


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_a_long_export_is_cut_into_chunks_without_losing_a_row(
    api, acme, make_contact, monkeypatch, caplog, file_format
):
    monkeypatch.setattr(exports, "_ROWS_PER_CHUNK", 3)
    monkeypatch.setattr(selectors, "EXPORT_BATCH_SIZE", 4)
    with use_tenant(acme):
        Contact.objects.bulk_create(Contact(name=f"C{i}") for i in range(7))
    logger = logging.getLogger("addressbook")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="addressbook")
    try:
        chunks = list(api.get(f"{URL}/export?format={file_format}").streaming_content)
    finally:
        logger.removeHandler(caplog.handler)
    assert len(chunks) == 3  # 3 + 3 + 1 rows (the CSV header goes with the first)
    body = b"".join(chunks).decode()
    if file_format == "csv":
        names = [row[1] for row in csv.reader(io.StringIO(body, newline=""))][1:]
    else:
        names = [c["name"] for c in json.loads(body)]
    assert names == [f"C{i}" for i in range(7)]
    logged = [r.getMessage() for r in caplog.records if r.name == "addressbook.exports"]
    assert [line.split(" as ")[0] for line in logged] == ["Exported 7 contacts"]


@pytest.mark.parametrize("ordering", ["name", "-email", "age", "-age", "created_at", "-id"])
def test_export_order_is_the_list_order(api, acme, tricky_book, monkeypatch, ordering):
    monkeypatch.setattr(selectors, "EXPORT_BATCH_SIZE", 3)
    exported = json.loads(export_bytes(api, f"format=json&ordering={ordering}"))
    listed = api.get(f"{URL}?ordering={ordering}&page_size=500").json()["results"]
    assert [c["id"] for c in exported] == [c["id"] for c in listed]
    assert len(exported) == len(tricky_book)


@pytest.mark.parametrize(
    "query",
    [
        "search=%25'%22%5C_",
        "name=%F0%9F%98%80",
        "email=%00",
        "age=150&ordering=-updated_at",
        "age_min=0&age_max=0&gender=other",
        "phone=(",
    ],
)
@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_odd_filters_never_break_the_export(api, tricky_book, query, file_format):
    response = api.get(f"{URL}/export?format={file_format}&{query}")
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
    if response.status_code == HTTPStatus.OK:
        body = b"".join(response.streaming_content).decode()
        assert body.startswith("id,name" if file_format == "csv" else "[")


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_export_never_contains_another_tenants_contacts(
    api, acme, globex, make_contact, file_format
):
    make_contact(acme, "Acme Only")
    make_contact(globex, "=Globex Secret", notes="globex")
    body = export_bytes(api, f"format={file_format}")
    assert b"Acme Only" in body
    assert b"Globex" not in body
    assert b"globex" not in body
