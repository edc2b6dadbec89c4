"""Input and output shapes of the address book API: the contact, and the query parameters
of the list, export and stats endpoints."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from addressbook.models import AGE_MAX, AGE_MIN, CONTACT_FIELDS, ORDERING_FIELDS, Contact
from addressbook.selectors import AGE_BANDS
from config.api import (
    BoundedPattern,
    CursorPageMixin,
    DocumentedCharField,
    QuerySerializer,
    RejectUnknownFieldsMixin,
)

# A tenant claim is checked by the view before any serializer runs (API.md, Conventions);
# a matching one is accepted and ignored, never reported as an unknown field.

# The API.md phone: an optional leading "+", then digits, spaces, "-", "(" and ")", at least
# one digit. No nested quantifier and no overlap between the first class and the digit, so
# the pattern is linear even on a backtracking engine; it only ever sees at most
# PHONE_MAX_LENGTH characters anyway (config.api.LengthFirstMixin). The schema states it.
PHONE_MIN_LENGTH, PHONE_MAX_LENGTH = 7, 20
PHONE_PATTERN = r"^\+?[ ()\-]*[0-9][0-9 ()\-]*$"
validate_phone = BoundedPattern(
    PHONE_PATTERN,
    max_length=PHONE_MAX_LENGTH,
    message='Enter a valid phone number: an optional leading "+", then digits, spaces, '
    '"-", "(" and ")".',
)


DEFAULT_ORDERING = ("name",)
_ORDERING_TERM = rf"-?({'|'.join(ORDERING_FIELDS)})"
ORDERING_PATTERN = rf"^ *({_ORDERING_TERM} *(, *{_ORDERING_TERM} *)*)?$"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class ContactSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A contact; rejects fields it does not know. Optional text fields accept null as
    "empty" and every text value is stored trimmed."""

    name = serializers.CharField(min_length=1, max_length=100)
    email = serializers.EmailField(
        max_length=254, required=False, allow_blank=True, allow_null=True
    )
    phone = serializers.CharField(
        min_length=PHONE_MIN_LENGTH,
        max_length=PHONE_MAX_LENGTH,
        required=False,
        allow_blank=True,
        allow_null=True,
        validators=[validate_phone],
    )
    address = serializers.CharField(
        max_length=500, required=False, allow_blank=True, allow_null=True
    )
    gender = serializers.ChoiceField(choices=Contact.Gender.choices, required=False)
    age = serializers.IntegerField(
        min_value=AGE_MIN, max_value=AGE_MAX, required=False, allow_null=True
    )
    notes = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, allow_null=True
    )

    class Meta:
        model = Contact
        fields = list(CONTACT_FIELDS)
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        for field in ("email", "phone", "address", "notes"):
            if field in values and values[field] is None:
                values[field] = ""
        return values


def api_datetime(value: datetime) -> str:
    """A datetime as ContactSerializer writes it: ISO 8601 in UTC with a `Z` (TIME_ZONE is
    UTC), without DRF's time-zone lookup per value."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def contact_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`ContactSerializer(contacts, many=True).data` for contacts read as `.values()` dicts
    (selectors.contact_page_values), built directly. DRF's field-by-field representation
    was the largest single cost of a list page (about 1.3 ms of CPU for 50 rows); a test
    holds the two equal. A datetime PostgreSQL already wrote (`api_<field>`) is taken as
    it is."""
    rows = list(rows)
    if not rows:
        return []
    sources = [f"api_{field}" if f"api_{field}" in rows[0] else field for field in CONTACT_FIELDS]
    return [
        {
            field: api_datetime(value) if isinstance(value, datetime) else value
            for field, value in zip(CONTACT_FIELDS, [row[s] for s in sources], strict=True)
        }
        for row in rows
    ]


class ContactFilterSerializer(QuerySerializer):
    """The filters and ordering shared by the list and the export."""

    search = serializers.CharField(required=False, allow_blank=True, max_length=200)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=50)
    gender = serializers.ChoiceField(choices=Contact.Gender.choices, required=False)
    age = serializers.IntegerField(min_value=AGE_MIN, max_value=AGE_MAX, required=False)
    age_min = serializers.IntegerField(min_value=AGE_MIN, max_value=AGE_MAX, required=False)
    age_max = serializers.IntegerField(min_value=AGE_MIN, max_value=AGE_MAX, required=False)
    ordering = DocumentedCharField(
        required=False, allow_blank=True, max_length=200, schema_pattern=ORDERING_PATTERN
    )

    def validate_ordering(self, value: str) -> tuple[str, ...]:
        terms = tuple(term.strip() for term in value.split(",") if term.strip())
        if not terms:
            return DEFAULT_ORDERING
        seen = set()
        for term in terms:
            field = term.removeprefix("-")
            if field not in ORDERING_FIELDS:
                raise serializers.ValidationError(
                    f"Unknown ordering field {field!r}; allowed: {', '.join(ORDERING_FIELDS)}."
                )
            if field in seen:
                raise serializers.ValidationError(f"Ordering field {field!r} is repeated.")
            seen.add(field)
        return terms

    def validate(self, attrs):
        attrs.setdefault("ordering", DEFAULT_ORDERING)
        return {key: value for key, value in attrs.items() if value != ""}


class ContactPageSerializer(CursorPageMixin, ContactFilterSerializer):
    max_page_size = MAX_PAGE_SIZE


class ContactExportSerializer(ContactFilterSerializer):
    format = serializers.ChoiceField(choices=["csv", "json"])


# --- documentation only (responses as the views render them) ----------------------------
class ContactResultSerializer(ContactSerializer):
    """A contact as returned: optional text fields are "" when empty, never null."""

    email = serializers.CharField()
    phone = serializers.CharField()
    address = serializers.CharField()
    notes = serializers.CharField()
    gender = serializers.ChoiceField(choices=Contact.Gender.choices)


class ContactCursorPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ContactResultSerializer(many=True)


class GenderCountsSerializer(serializers.Serializer):
    male = serializers.IntegerField()
    female = serializers.IntegerField()
    other = serializers.IntegerField()
    unspecified = serializers.IntegerField()


# Band names ("0-17", "65+") are not Python identifiers, hence the class built from a dict.
AgeBandCountsSerializer = type(
    "AgeBandCountsSerializer",
    (serializers.Serializer,),
    {band: serializers.IntegerField() for band in AGE_BANDS},
)


class EmailDomainCountSerializer(serializers.Serializer):
    domain = serializers.CharField()
    count = serializers.IntegerField()


class MonthCountSerializer(serializers.Serializer):
    month = serializers.RegexField(r"^\d{4}-\d{2}$", help_text="YYYY-MM (UTC).")
    count = serializers.IntegerField()


class ContactStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_gender = GenderCountsSerializer()
    by_age_band = AgeBandCountsSerializer()
    by_email_domain = EmailDomainCountSerializer(many=True, help_text="The top 20 domains.")
    created_per_month = MonthCountSerializer(many=True)
