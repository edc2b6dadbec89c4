"""What every API view shares: JSON only, the tenant-claim rule, strict request bodies.

API.md, Conventions: a `tenant` / `tenant_id` a client sends, in any body or query string,
is checked against the host's tenant before anything else (authentication included): a
mismatch is 403 `Tenant access denied`, a match is accepted and ignored, never an unknown
field.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.views import APIView

from config.errors import TenantAccessDenied
from config.openapi import error_response as openapi_error
from config.parsers import StrictJSONParser
from tenants.context import get_current_tenant

TENANT_FIELDS = frozenset({"tenant", "tenant_id"})


def check_tenant_claims(request) -> exceptions.APIException | None:
    """403 `Tenant access denied` unless every tenant claim of the request names the host's
    tenant (its slug or id; on platform paths only an empty claim is accepted).

    A body that cannot be read (malformed JSON, another media type) is returned, not
    raised, for the view to report after authentication, as it would without this check.
    """
    tenant = get_current_tenant()
    accepted = {tenant.slug, str(tenant.pk)} if tenant is not None else set()
    claims = [v for field in TENANT_FIELDS for v in request.query_params.getlist(field)]
    body_error = None
    try:
        data = request.data
    except exceptions.APIException as exc:
        data, body_error = None, exc
    if isinstance(data, dict):
        claims += [data[field] for field in TENANT_FIELDS if field in data]
    for claim in claims:
        if tenant is None and claim in (None, ""):
            continue
        if isinstance(claim, bool) or not isinstance(claim, str | int):
            raise TenantAccessDenied()
        if str(claim).strip().lower() not in accepted:
            raise TenantAccessDenied()
    return body_error


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="1-based page number (404 past the last page)."),
    OpenApiParameter("page_size", int, description="Items per page (default 50, max 500)."),
]
NOT_FOUND = openapi_error("`Not found`: no such item, or a page past the last one.")


class ApiView(APIView):
    """The base of the project's API views: tenant claims first, then DRF's
    authentication and permissions; a failed authentication is a 401 with a Bearer
    challenge. Bodies are read by StrictJSONParser (config/parsers.py)."""

    parser_classes = [StrictJSONParser]

    def initial(self, request, *args, **kwargs):
        body_error = check_tenant_claims(request)
        super().initial(request, *args, **kwargs)
        if body_error is not None:
            raise body_error

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'

    def paginated(self, queryset, serializer_class):
        """A page of `queryset` as `{count, next, previous, results}`."""
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


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
