from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.TenantListView.as_view(), name="platform-tenant-list"),
    path("/<slug:slug>", views.TenantDetailView.as_view(), name="platform-tenant-detail"),
    path("/<slug:slug>/health", views.TenantHealthView.as_view(), name="platform-tenant-health"),
]
