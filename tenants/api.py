"""The base of every API view: JSON only, the tenant-claim rule, strict request bodies.

API.md, Conventions: a `tenant` / `tenant_id` a client sends, in any body or query string,
is checked against the host's tenant before anything else (authentication included): a
mismatch is 403 `Tenant access denied`, a match is accepted and ignored, never an unknown
field.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.views import APIView

from config.api import TENANT_FIELDS, Pagination
from config.errors import TenantAccessDenied
from config.parsers import StrictJSONParser
from tenants.context import get_current_tenant


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
