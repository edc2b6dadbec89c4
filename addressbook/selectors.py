"""Reads of the address book. Every function runs against the current tenant's database
(the router picks it), or the alias given."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Any

from django.db import connections, router
from django.db.models import CharField, Count, Expression, F, Func, Q, QuerySet, Value
from django.db.models.functions import Lower, StrIndex, Substr, TruncMonth
from django.http import Http404

from addressbook.models import CONTACT_FIELDS, DATETIME_FIELDS, Contact
from config import pagination

AGE_BANDS = {
    "0-17": Q(age__lte=17),
    "18-29": Q(age__gte=18, age__lte=29),
    "30-44": Q(age__gte=30, age__lte=44),
    "45-64": Q(age__gte=45, age__lte=64),
    "65+": Q(age__gte=65),
    "unknown": Q(age__isnull=True),
}
TOP_EMAIL_DOMAINS = 20
EXPORT_BATCH_SIZE = 2000
_MAX_ID = 2**63 - 1


def contact_list(*, filters: Mapping[str, Any], using: str | None = None) -> QuerySet[Contact]:
    """Contacts matching `filters` (the validated ContactFilterSerializer data), ordered
    by `filters["ordering"]` and then by id. Text filters are case-insensitive "contains";
    `age_min` / `age_max` are inclusive."""
    using = using or router.db_for_read(Contact)
    queryset = Contact.objects.using(using).all()
    if search := filters.get("search"):
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(email__icontains=search) | Q(phone__icontains=search)
        )
    for field in ("name", "email", "phone"):
        if value := filters.get(field):
            queryset = queryset.filter(**{f"{field}__icontains": value})
    if gender := filters.get("gender"):
        queryset = queryset.filter(gender=gender)
    if (age := filters.get("age")) is not None:
        queryset = queryset.filter(age=age)
    if (age_min := filters.get("age_min")) is not None:
        queryset = queryset.filter(age__gte=age_min)
    if (age_max := filters.get("age_max")) is not None:
        queryset = queryset.filter(age__lte=age_max)
    return queryset.order_by(*contact_ordering(filters))


class IsoDateTime(Func):
    """PostgreSQL: a timestamptz as `serializers.api_datetime` writes it (microseconds only
    when not zero). Django reads a timestamptz with a pure-Python loader: parsing two per
    row and formatting them again was over a third of an export's time in the web worker,
    and 7 % of a list page's."""

    template = (
        "replace(to_char(%(expressions)s AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    )
    output_field = CharField()


def api_datetime_columns() -> dict[str, Func]:
    """The contact's datetimes as PostgreSQL writes them for the API (IsoDateTime)."""
    return {field: IsoDateTime(F(field)) for field in DATETIME_FIELDS}


def contact_page_values(*, filters: Mapping[str, Any]) -> QuerySet:
    """`contact_list(filters)` as `.values()` dicts for the list endpoint: CONTACT_FIELDS,
    except that on PostgreSQL the datetimes come already written (`api_<field>`, see
    IsoDateTime), with the raw value kept only when the keyset cursor orders by it."""
    using = router.db_for_read(Contact)
    queryset = contact_list(filters=filters, using=using)
    if connections[using].vendor != "postgresql":
        return queryset.values(*CONTACT_FIELDS)
    ordered_by = {term.removeprefix("-") for term in contact_ordering(filters)}
    raw = [f for f in CONTACT_FIELDS if f not in DATETIME_FIELDS or f in ordered_by]
    formatted = {f"api_{field}": column for field, column in api_datetime_columns().items()}
    return queryset.annotate(**formatted).values(*raw, *formatted)


def contact_ordering(filters: Mapping[str, Any]) -> tuple[str, ...]:
    """The requested ordering made unique by a final `id`."""
    return pagination.full_ordering(filters.get("ordering", ("name",)))


def contact_get(*, contact_id: int) -> Contact:
    """The contact with this id in the current tenant; Http404 if there is none."""
    if not 0 < contact_id <= _MAX_ID:
        raise Http404
    try:
        return Contact.objects.get(pk=contact_id)
    except Contact.DoesNotExist as exc:
        raise Http404 from exc


def contact_export_rows(
    *,
    filters: Mapping[str, Any],
    using: str,
    columns: Mapping[str, Expression] | None = None,
    batch_size: int | None = None,
) -> Iterator[tuple]:
    """Every contact `filters` select, as tuples of CONTACT_FIELDS in that order, read from
    `using` in keyset batches: memory stays flat however many rows there are, and the
    generator does not depend on the tenant context (it usually runs after the view has
    returned). A field in `columns` is read as that expression instead, computed by the
    database (the keyset still reads the ordering fields as they are)."""
    columns = columns or {}
    ordering = contact_ordering(filters)
    names = [f"export_{field}" if field in columns else field for field in CONTACT_FIELDS]
    keys = [term.removeprefix("-") for term in ordering if term.removeprefix("-") not in names]
    # Named tuples: the keyset reads a row's ordering values by attribute, and a tuple
    # costs a fraction of a `.values()` dict per row.
    queryset = (
        contact_list(filters=filters, using=using)
        .annotate(**{f"export_{field}": expression for field, expression in columns.items()})
        .values_list(*names, *keys, named=True)
    )
    rows = pagination.iterate(
        queryset, ordering=ordering, batch_size=batch_size or EXPORT_BATCH_SIZE
    )
    return map(itemgetter(slice(len(names))), rows) if keys else rows


def contact_stats() -> dict[str, Any]:
    """Totals of the current tenant's address book, computed by the database in three
    queries: counts by gender and age band, the top e-mail domains, contacts per month."""
    contacts = Contact.objects.all()
    genders = Contact.Gender.values
    counts = contacts.aggregate(
        total=Count("id"),
        **{f"gender_{g}": Count("id", filter=Q(gender=g)) for g in genders},
        **{f"band_{i}": Count("id", filter=q) for i, q in enumerate(AGE_BANDS.values())},
    )
    domains = (
        contacts.exclude(email="")
        .annotate(domain=Lower(Substr("email", StrIndex("email", Value("@")) + 1)))
        .values("domain")
        .annotate(count=Count("id"))
        .order_by("-count", "domain")[:TOP_EMAIL_DOMAINS]
    )
    months = (
        contacts.annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(count=Count("id"))
        .order_by("month")
    )
    return {
        "total": counts["total"],
        "by_gender": {g: counts[f"gender_{g}"] for g in genders},
        "by_age_band": {band: counts[f"band_{i}"] for i, band in enumerate(AGE_BANDS)},
        "by_email_domain": [{"domain": d["domain"], "count": d["count"]} for d in domains],
        "created_per_month": [
            {"month": m["month"].strftime("%Y-%m"), "count": m["count"]} for m in months
        ],
    }
