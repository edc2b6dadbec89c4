"""The platform tenants API (any host, platform staff token): list, provision, show,
change, suspend, health."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts.permissions import IsPlatformStaff
from config.api import NOT_FOUND, PAGE_PARAMETERS
from config.openapi import documented_error
from tenants.api import ApiView
from tenants.models import Tenant
from tenants.selectors import tenant_health, tenant_list
from tenants.serializers import (
    TenantCreateSerializer,
    TenantHealthSerializer,
    TenantPageSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
)
from tenants.services import (
    AdminSpec,
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
    @extend_schema(
        operation_id="tenants_list",
        tags=["platform"],
        summary="List tenants",
        parameters=PAGE_PARAMETERS,
        responses={200: TenantPageSerializer, 404: NOT_FOUND},
    )
    def get(self, request):
        return self.paginated(tenant_list(), TenantSerializer)

    @extend_schema(
        operation_id="tenants_create",
        tags=["platform"],
        summary="Provision a tenant: database, migrations, first admin",
        request=TenantCreateSerializer,
        responses={
            201: TenantSerializer,
            503: documented_error("`Tenant provisioning failed; it can be retried`."),
        },
    )
    def post(self, request):
        serializer = TenantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        admin = AdminSpec(**data["admin"]) if data.get("admin") else None
        tenant = provision_tenant(
            slug=data["slug"],
            name=data["name"],
            domains=data["domains"],
            database_url=data["database_url"],
            server=data["server"],
            admin=admin,
            refuse_active=True,
        )
        tenant = _tenant_or_404(tenant.slug)
        return Response(TenantSerializer(tenant).data, status=status.HTTP_201_CREATED)


class TenantDetailView(PlatformView):
    @extend_schema(
        operation_id="tenants_retrieve",
        tags=["platform"],
        summary="One tenant",
        responses={200: TenantSerializer, 404: NOT_FOUND},
    )
    def get(self, request, slug: str):
        return Response(TenantSerializer(_tenant_or_404(slug)).data)

    @extend_schema(
        operation_id="tenants_update",
        tags=["platform"],
        summary="Rename a tenant, change its status or domains",
        request=TenantUpdateSerializer,
        responses={200: TenantSerializer, 404: NOT_FOUND},
    )
    def patch(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        serializer = TenantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant_update(tenant=tenant, **serializer.validated_data)
        return Response(TenantSerializer(_tenant_or_404(slug)).data)

    @extend_schema(
        operation_id="tenants_suspend",
        tags=["platform"],
        summary="Suspend a tenant (its database is kept)",
        responses={200: TenantSerializer, 404: NOT_FOUND},
    )
    def delete(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        tenant_suspend(tenant)
        return Response(TenantSerializer(_tenant_or_404(slug)).data)


class TenantHealthView(PlatformView):
    @extend_schema(
        operation_id="tenants_health",
        tags=["platform"],
        summary="Whether the tenant's database answers and is fully migrated",
        responses={200: TenantHealthSerializer, 404: NOT_FOUND, 503: TenantHealthSerializer},
    )
    def get(self, request, slug: str):
        body = tenant_health(tenant=_tenant_or_404(slug))
        code = status.HTTP_200_OK if body["status"] == "ok" else 503
        return Response(body, status=code)
