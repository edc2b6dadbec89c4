"""The platform tenants API (any host, platform staff token): list, provision, show,
change, suspend, health."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts.permissions import IsPlatformStaff
from accounts.services import api_validation_error
from accounts.views import ApiView, Pagination
from config.errors import ServiceUnavailable
from tenants.models import Tenant
from tenants.selectors import tenant_health, tenant_list
from tenants.serializers import TenantCreateSerializer, TenantSerializer, TenantUpdateSerializer
from tenants.services import (
    AdminSpec,
    ProvisioningError,
    provision_tenant,
    tenant_suspend,
    tenant_update,
)


def _tenant_or_404(slug: str) -> Tenant:
    tenant = tenant_list(slugs=[slug]).first()
    if tenant is None:
        raise NotFound()
    return tenant


class PlatformView(ApiView):
    permission_classes = [IsPlatformStaff]


class TenantListView(PlatformView):
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(tenant_list(), request, view=self)
        return paginator.get_paginated_response(TenantSerializer(page, many=True).data)

    def post(self, request):
        serializer = TenantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        admin = AdminSpec(**data["admin"]) if data.get("admin") else None
        try:
            tenant = provision_tenant(
                slug=data["slug"],
                name=data["name"],
                domains=data["domains"],
                database_url=data["database_url"],
                admin=admin,
            )
        except ValidationError as exc:
            raise api_validation_error(exc) from exc
        except ProvisioningError as exc:
            raise ServiceUnavailable("Tenant provisioning failed; it can be retried") from exc
        tenant = _tenant_or_404(tenant.slug)
        return Response(TenantSerializer(tenant).data, status=status.HTTP_201_CREATED)


class TenantDetailView(PlatformView):
    def get(self, request, slug: str):
        return Response(TenantSerializer(_tenant_or_404(slug)).data)

    def patch(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        serializer = TenantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            tenant_update(tenant=tenant, **serializer.validated_data)
        except ValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(TenantSerializer(_tenant_or_404(slug)).data)

    def delete(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        try:
            tenant_suspend(tenant)
        except ValidationError as exc:
            raise api_validation_error(exc) from exc
        return Response(TenantSerializer(_tenant_or_404(slug)).data)


class TenantHealthView(PlatformView):
    def get(self, request, slug: str):
        body = tenant_health(tenant=_tenant_or_404(slug))
        code = status.HTTP_200_OK if body["status"] == "ok" else 503
        return Response(body, status=code)
