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
]
