from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny

from accounts.backends import admin_login
from accounts.jwks import jwks
from config import views
from config.metrics import metrics_view
from logstream.views import log_viewer

urlpatterns = [
    path("", views.landing, name="landing"),
    path("admin/logs/", admin.site.admin_view(log_viewer), name="admin-logs"),
    # Before admin/: the admin's own login view, throttled attempts answered 429.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("metrics", metrics_view, name="metrics"),
    path(".well-known/jwks.json", jwks, name="jwks"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(
            permission_classes=[AllowAny],
            authentication_classes=[],
            # The schema is YAML or JSON (?format=json), unlike the JSON-only API.
            content_negotiation_class=DefaultContentNegotiation,
        ),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="schema", permission_classes=[AllowAny], authentication_classes=[]
        ),
        name="docs",
    ),
    path("api/", include("accounts.urls")),
    path("api/", include("tenants.urls")),
    path("api/", include("addressbook.urls")),
    path("api/", include("logstream.urls")),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
