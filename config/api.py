"""What the API's views and serializers share: pagination, strict request bodies, bounded
patterns and documented fields. The API view base and the tenant-claim rule live with the
tenants (tenants/api.py).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination

from config.errors import InvalidCursor
from config.openapi import documented_error

# The fields of a tenant claim, which any body or query string may carry (tenants/api.py).
TENANT_FIELDS = frozenset({"tenant", "tenant_id"})


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="1-based page number (404 past the last page)."),
    OpenApiParameter("page_size", int, description="Items per page (default 50, max 500)."),
]
NOT_FOUND = documented_error("`Not found`: no such item, or a page past the last one.")


def _too_long(field: serializers.Field, value) -> list[str] | None:
    """The max-length message when `value` (a string, or a list for a list field: too many
    items, or a string item too long) is longer than `field` allows, else None."""
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        # The count first: DRF validates every item before it counts them.
        if field.max_length is not None and len(value) > field.max_length:
            return [field.error_messages["max_length"].format(max_length=field.max_length)]
        limit = getattr(field.child, "max_length", None)
        if limit is not None and any(isinstance(v, str) and len(v) > limit for v in value):
            return [field.child.error_messages["max_length"].format(max_length=limit)]
        return None
    limit = getattr(field, "max_length", None)
    if isinstance(value, str) and limit is not None and len(value) > limit:
        return [field.error_messages["max_length"].format(max_length=limit)]
    return None


class LengthFirstMixin:
    """A string longer than its field's `max_length` is refused before any other check of
    the field runs: DRF runs every validator of a field even after the length one failed,
    so a pattern would otherwise see a client's whole (up to 1 MiB) value. Every other
    validator therefore only ever sees input of bounded length."""

    def to_internal_value(self, data):
        if hasattr(data, "get"):
            errors = {}
            for name, field in self.fields.items():
                if field.read_only:
                    continue
                value = data.get(field.source if field.source != "*" else name, None)
                message = _too_long(field, value)
                if message:
                    errors[name] = message
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class RejectUnknownFieldsMixin(LengthFirstMixin):
    """A body field the serializer does not declare is a 400 with a message per field
    (the tenant fields excepted: the view has checked them); strings are length-checked
    first (LengthFirstMixin)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields) - TENANT_FIELDS)
            if unknown:
                raise serializers.ValidationError({field: ["Unknown field."] for field in unknown})
        return super().to_internal_value(data)


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A plain serializer that rejects undeclared fields."""


class QuerySerializer(LengthFirstMixin, serializers.Serializer):
    """The query parameters of an endpoint: unknown ones are ignored, strings are
    length-checked first."""


class CursorPageMixin(serializers.Serializer):
    """`?cursor=` and `?page_size=` of a cursor-paginated list (config.pagination), the size
    clamped to `max_page_size`. A cursor is opaque to clients: whatever is wrong with it is
    `Invalid cursor`."""

    max_page_size = 500
    cursor = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, trim_whitespace=False
    )
    page_size = serializers.IntegerField(min_value=1, required=False)

    def is_valid(self, *, raise_exception=False):
        valid = super().is_valid()
        if not valid and raise_exception:
            if "cursor" in self.errors:
                raise InvalidCursor()
            raise serializers.ValidationError(self.errors)
        return valid

    def validate_page_size(self, value: int) -> int:
        return min(value, self.max_page_size)


class BoundedPattern(RegexValidator):
    """A pattern check that never runs its regex on more than `max_length` characters and
    matches the whole value (Python's `$` also matches before a final newline). The
    schema states the pattern (drf-spectacular reads RegexValidator's)."""

    def __init__(self, pattern: str, *, max_length: int, message: str):
        super().__init__(pattern, message=message)
        self.max_length = max_length

    def __call__(self, value):
        if not isinstance(value, str) or len(value) > self.max_length:
            raise DjangoValidationError(self.message, code=self.code)
        if not self.regex.fullmatch(value):
            raise DjangoValidationError(self.message, code=self.code)


class DocumentedCharField(serializers.CharField):
    """A CharField whose rule the server checks in code (a service, or a validator
    without a regex), stated for clients as `schema_pattern` (ECMA 262) or
    `schema_format` in the schema (config.openapi.CharFieldExtension)."""

    def __init__(
        self, *, schema_pattern: str | None = None, schema_format: str | None = None, **kwargs
    ):
        self.schema_pattern = schema_pattern
        self.schema_format = schema_format
        super().__init__(**kwargs)
