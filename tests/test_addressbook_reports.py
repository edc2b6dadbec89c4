"""The address book's export (CSV / JSON, streamed) and stats endpoints."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.test.utils import CaptureQueriesContext

from addressbook import selectors
from addressbook.models import Contact
from tenants.context import use_tenant
from tests.helpers import CONTACT_FIELDS, HostAsyncClient, client_for

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/api/address-book"


def body_of(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


# --- Export ---------------------------------------------------------------------------------


@pytest.fixture
def tricky(acme, make_contact):
    """Contacts whose cells need quoting, escaping or formula protection."""
    return [
        make_contact(
            acme,
            '=HYPERLINK("http://evil","click")',
            email="a@b.co",
            phone="+1 555 0100",
            notes="-2+3",
            age=30,
            gender="male",
        ),
        make_contact(acme, "Zoë Ødegård 山田", address='1, "Quoted" St\r\nLine 2', notes="@sum"),
        make_contact(acme, "\tTabbed", notes="\rreturn"),
        make_contact(acme, "Plain Person", email="plain@example.org"),
    ]


def test_csv_export_is_rfc4180_with_a_header_and_formula_protection(api, tricky):
    response = api.get(f"{URL}/export?format=csv")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="contacts-acme-{today()}.csv"'
    )
    text = body_of(response)
    assert text.startswith(",".join(CONTACT_FIELDS) + "\r\n")
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CONTACT_FIELDS
    by_id = {int(row[0]): dict(zip(CONTACT_FIELDS, row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {c.pk for c in tricky}
    evil, zoe, tabbed, plain = (by_id[c.pk] for c in tricky)
    assert evil["name"] == '\'=HYPERLINK("http://evil","click")'
    assert evil["phone"] == "'+1 555 0100"
    assert evil["notes"] == "'-2+3"
    assert (evil["age"], evil["gender"]) == ("30", "male")
    assert zoe["name"] == "Zoë Ødegård 山田"
    assert zoe["address"] == '1, "Quoted" St\r\nLine 2'
    assert zoe["notes"] == "'@sum"
    assert zoe["age"] == ""
    assert tabbed["name"] == "'\tTabbed"
    assert tabbed["notes"] == "'\rreturn"
    assert plain == {
        **plain,
        "name": "Plain Person",
        "email": "plain@example.org",
        "gender": "unspecified",
    }
    assert '"1, ""Quoted"" St\r\nLine 2"' in text


def test_json_export_is_one_array_of_contacts_as_the_api_shows_them(api, tricky):
    response = api.get(f"{URL}/export?format=json")
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="contacts-acme-{today()}.json"'
    )
    exported = json.loads(body_of(response))
    listed = api.get(URL).json()["results"]
    assert exported == listed
    assert {c["name"] for c in exported} >= {
        "Zoë Ødegård 山田",
        '=HYPERLINK("http://evil","click")',
    }


def test_an_empty_export_is_a_header_or_an_empty_array(api):
    assert body_of(api.get(f"{URL}/export?format=csv")) == ",".join(CONTACT_FIELDS) + "\r\n"
    assert json.loads(body_of(api.get(f"{URL}/export?format=json"))) == []


def test_export_applies_the_list_filters_and_ordering(api, acme, make_contact):
    for name, age in (("Old A", 70), ("Old B", 80), ("Young", 20), ("Unknown", None)):
        make_contact(acme, name, age=age)
    response = api.get(f"{URL}/export?format=json&age_min=65&ordering=-age")
    assert [c["name"] for c in json.loads(body_of(response))] == ["Old B", "Old A"]
    rows = list(csv.reader(io.StringIO(body_of(api.get(f"{URL}/export?format=csv&search=old")))))
    assert sorted(row[1] for row in rows[1:]) == ["Old A", "Old B"]


def test_export_reads_in_keyset_batches_and_visits_every_row_once(api, acme, monkeypatch):
    monkeypatch.setattr(selectors, "EXPORT_BATCH_SIZE", 7)
    with use_tenant(acme):
        Contact.objects.bulk_create(
            Contact(name=f"R{i:02}", age=None if i % 5 == 0 else i) for i in range(30)
        )
    with CaptureQueriesContext(connections[acme.alias]) as queries:
        exported = json.loads(body_of(api.get(f"{URL}/export?format=json&ordering=age")))
    assert len(exported) == 30
    assert len({c["id"] for c in exported}) == 30
    reads = [q["sql"] for q in queries if "addressbook_contact" in q["sql"]]
    assert len(reads) == 5  # 7 + 7 + 7 + 7 + 2
    assert all("OFFSET" not in sql.upper() for sql in reads)
    ages = [c["age"] for c in exported]
    assert ages == sorted(a for a in ages if a is not None) + [None] * 6


def test_export_is_streamed_chunk_by_chunk_under_asgi(acme, ann, bearer, make_contact):
    for i in range(3):
        make_contact(acme, f"Async {i}")
    token = bearer(ann, acme)["HTTP_AUTHORIZATION"]

    async def export() -> tuple[bool, bytes]:
        client = HostAsyncClient("acme.test")
        response = await client.get(f"{URL}/export?format=csv", headers={"authorization": token})
        assert response.status_code == HTTPStatus.OK
        chunks = [chunk async for chunk in response.streaming_content]
        return response.is_async, b"".join(chunks)

    is_async, content = async_to_sync(export)()
    assert is_async
    assert content.decode().count("Async ") == 3


@pytest.mark.parametrize("query", ["format=xml", "format=", "", "format=csv&age=abc"])
def test_an_unknown_or_missing_export_format_is_400(api, query):
    response = api.get(f"{URL}/export?{query}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["status"] == HTTPStatus.BAD_REQUEST
    assert response.json()["message"] == "Validation failed"


def test_export_needs_a_token(acme):
    response = client_for("acme.test").get(f"{URL}/export?format=csv")
    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_export_logs_one_line_with_the_row_count(api, ann, acme, make_contact, caplog):
    make_contact(acme, "Secret Name", email="secret@example.org")
    make_contact(acme, "Other Name")
    logger = logging.getLogger("addressbook")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="addressbook")
    try:
        body_of(api.get(f"{URL}/export?format=csv"))
    finally:
        logger.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("addressbook")]
    assert lines == [f"Exported 2 contacts as csv (tenant=acme user={ann.pk})"]


# --- Stats ----------------------------------------------------------------------------------


def _created(acme, contact: Contact, when: str) -> None:
    with use_tenant(acme):
        Contact.objects.filter(pk=contact.pk).update(
            created_at=datetime.fromisoformat(when).replace(tzinfo=UTC)
        )


def test_stats_match_hand_computed_values(api, acme, globex, make_contact):
    people = [
        ("Kid", "male", 17, "kid@School.edu", "2024-01-15T10:00"),
        ("Teen", "female", 18, "teen@school.edu", "2024-01-31T23:59"),
        ("Young", "female", 29, "y@example.com", "2024-02-01T00:00"),
        ("Mid", "other", 30, "m@example.com", "2024-02-10T12:00"),
        ("Mid2", "male", 44, "m2@example.com", "2024-03-01T00:00"),
        ("Senior", "male", 45, "", "2024-03-05T00:00"),
        ("Older", "unspecified", 64, "o@mail.org", "2024-03-06T00:00"),
        ("Old", "female", 65, "old@mail.org", "2024-12-31T23:59"),
        ("Ancient", "female", 150, "anc@example.com", "2025-01-01T00:00"),
        ("Baby", "unspecified", 0, "", "2025-01-02T00:00"),
        ("Nobody", "unspecified", None, "n@example.com", "2025-01-03T00:00"),
    ]
    for name, gender, age, email, when in people:
        _created(acme, make_contact(acme, name, gender=gender, age=age, email=email), when)
    make_contact(globex, "Elsewhere", gender="male", age=20, email="x@globex.test")

    response = api.get(f"{URL}/stats")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "total": 11,
        "by_gender": {"male": 3, "female": 4, "other": 1, "unspecified": 3},
        "by_age_band": {
            "0-17": 2,
            "18-29": 2,
            "30-44": 2,
            "45-64": 2,
            "65+": 2,
            "unknown": 1,
        },
        "by_email_domain": [
            {"domain": "example.com", "count": 5},
            {"domain": "mail.org", "count": 2},
            {"domain": "school.edu", "count": 2},
        ],
        "created_per_month": [
            {"month": "2024-01", "count": 2},
            {"month": "2024-02", "count": 2},
            {"month": "2024-03", "count": 3},
            {"month": "2024-12", "count": 1},
            {"month": "2025-01", "count": 3},
        ],
    }


def test_stats_of_an_empty_address_book(api):
    assert api.get(f"{URL}/stats").json() == {
        "total": 0,
        "by_gender": {"male": 0, "female": 0, "other": 0, "unspecified": 0},
        "by_age_band": {"0-17": 0, "18-29": 0, "30-44": 0, "45-64": 0, "65+": 0, "unknown": 0},
        "by_email_domain": [],
        "created_per_month": [],
    }


def test_stats_list_the_top_20_email_domains(api, acme):
    with use_tenant(acme):
        Contact.objects.bulk_create(
            Contact(name=f"D{d}-{n}", email=f"u{n}@d{d:02}.test")
            for d in range(25)
            for n in range(d + 1)
        )
    domains = api.get(f"{URL}/stats").json()["by_email_domain"]
    assert len(domains) == 20
    assert domains[0] == {"domain": "d24.test", "count": 25}
    assert domains[-1] == {"domain": "d05.test", "count": 6}


def test_stats_take_a_few_queries_whatever_the_size(api, acme):
    with use_tenant(acme):
        Contact.objects.bulk_create(Contact(name=f"S{i}", age=i % 100) for i in range(200))
    with CaptureQueriesContext(connections[acme.alias]) as queries:
        assert api.get(f"{URL}/stats").json()["total"] == 200
    assert len([q for q in queries if "addressbook_contact" in q["sql"]]) == 3
