"""The platform tenants API (any host, platform staff token): list, provision, show,
change, suspend, health; and the lifecycle actions for staff: back up, export, download
what was written, move to another server."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts.permissions import IsPlatformStaff
from config.api import NOT_FOUND, PAGE_PARAMETERS
from config.openapi import documented_error
from tenants.api import ApiView
from tenants.lifecycle import archive_path
from tenants.lifecycle.backup import backup_tenant
from tenants.lifecycle.export import export_tenant
from tenants.lifecycle.move import move_finish, move_tenant, open_move
from tenants.models import DatabaseServer, Tenant, TenantArchive, TenantMove
from tenants.selectors import tenant_health, tenant_list
from tenants.serializers import (
    TenantArchivePageSerializer,
    TenantArchiveSerializer,
    TenantCreateSerializer,
    TenantHealthSerializer,
    TenantMoveInputSerializer,
    TenantMoveSerializer,
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


# --- lifecycle actions ---------------------------------------------------------------------
# Each runs in the request, as the command does, and is recorded in the platform's audit
# trail with the staff user who asked. Files go under TENANT_ARCHIVE_DIR with names the
# product chooses: a client never names a path on the server.
class TenantBackupView(PlatformView):
    @extend_schema(
        operation_id="tenants_backup",
        tags=["platform"],
        summary="Back up a tenant's database (one file with a manifest, kept on the server)",
        request=None,
        responses={201: TenantArchiveSerializer, 404: NOT_FOUND},
    )
    def post(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        archive = backup_tenant(
            tenant, output=archive_path(slug, "backup", ".tar"), actor=request.user
        )
        return Response(TenantArchiveSerializer(archive).data, status=status.HTTP_201_CREATED)


class TenantExportView(PlatformView):
    @extend_schema(
        operation_id="tenants_export",
        tags=["platform"],
        summary="Export a tenant's data as a portable archive (JSON lines per model, no secrets)",
        request=None,
        responses={201: TenantArchiveSerializer, 404: NOT_FOUND},
    )
    def post(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        archive = export_tenant(
            tenant, output=archive_path(slug, "export", ".zip"), actor=request.user
        )
        return Response(TenantArchiveSerializer(archive).data, status=status.HTTP_201_CREATED)


class TenantArchiveListView(PlatformView):
    @extend_schema(
        operation_id="tenants_archives",
        tags=["platform"],
        summary="The backups and exports written of a tenant, newest first",
        parameters=PAGE_PARAMETERS,
        responses={200: TenantArchivePageSerializer, 404: NOT_FOUND},
    )
    def get(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        return self.paginated(
            tenant.archives.order_by("-created_at", "-id"), TenantArchiveSerializer
        )


class TenantArchiveDownloadView(PlatformView):
    @extend_schema(
        operation_id="tenants_archive_download",
        tags=["platform"],
        summary="Download one backup or export (404 once purged or gone from the disk)",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(description="The file."),
            404: NOT_FOUND,
        },
    )
    def get(self, request, slug: str, archive_id: int):
        tenant = _tenant_or_404(slug)
        archive = TenantArchive.objects.filter(
            tenant=tenant, pk=archive_id, deleted_at=None
        ).first()
        path = Path(archive.path) if archive is not None else None
        if path is None or not path.is_file():
            raise NotFound()
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=path.name,
            content_type="application/octet-stream",
        )


class TenantMoveView(PlatformView):
    @extend_schema(
        operation_id="tenants_move_status",
        tags=["platform"],
        summary="The tenant's latest move (404 when it never moved)",
        responses={200: TenantMoveSerializer, 404: NOT_FOUND},
    )
    def get(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        move = TenantMove.objects.filter(tenant=tenant).order_by("-started_at", "-id").first()
        if move is None:
            raise NotFound()
        return Response(TenantMoveSerializer(move).data)

    @extend_schema(
        operation_id="tenants_move",
        tags=["platform"],
        summary="Move a tenant's database to another server (or resume its move); the "
        "source is kept until finished unless drop_source",
        request=TenantMoveInputSerializer,
        responses={200: TenantMoveSerializer, 404: NOT_FOUND},
    )
    def post(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        serializer = TenantMoveInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        target = DatabaseServer.objects.filter(name=data["server"]).first()
        if target is None:
            raise ValidationError({"server": [f"Unknown database server '{data['server']}'."]})
        move = move_tenant(tenant, to=target, drop_source=data["drop_source"], actor=request.user)
        return Response(TenantMoveSerializer(move).data)


class TenantMoveFinishView(PlatformView):
    @extend_schema(
        operation_id="tenants_move_finish",
        tags=["platform"],
        summary="Finish the tenant's switched move: drop the source database",
        request=None,
        responses={200: TenantMoveSerializer, 404: NOT_FOUND},
    )
    def post(self, request, slug: str):
        tenant = _tenant_or_404(slug)
        if open_move(tenant) is None:
            raise ValidationError({"move": [f"Tenant '{slug}' has no move to finish."]})
        return Response(TenantMoveSerializer(move_finish(tenant, actor=request.user)).data)
