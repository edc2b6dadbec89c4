from django.urls import path

from tenants import views

urlpatterns = [
    path("platform/tenants", views.TenantListView.as_view(), name="platform-tenant-list"),
    path(
        "platform/tenants/<slug:slug>",
        views.TenantDetailView.as_view(),
        name="platform-tenant-detail",
    ),
    path(
        "platform/tenants/<slug:slug>/health",
        views.TenantHealthView.as_view(),
        name="platform-tenant-health",
    ),
    path(
        "platform/tenants/<slug:slug>/backups",
        views.TenantBackupView.as_view(),
        name="platform-tenant-backup",
    ),
    path(
        "platform/tenants/<slug:slug>/exports",
        views.TenantExportView.as_view(),
        name="platform-tenant-export",
    ),
    path(
        "platform/tenants/<slug:slug>/archives",
        views.TenantArchiveListView.as_view(),
        name="platform-tenant-archives",
    ),
    path(
        "platform/tenants/<slug:slug>/archives/<int:archive_id>",
        views.TenantArchiveDownloadView.as_view(),
        name="platform-tenant-archive-download",
    ),
    path(
        "platform/tenants/<slug:slug>/move",
        views.TenantMoveView.as_view(),
        name="platform-tenant-move",
    ),
    path(
        "platform/tenants/<slug:slug>/move/finish",
        views.TenantMoveFinishView.as_view(),
        name="platform-tenant-move-finish",
    ),
]
