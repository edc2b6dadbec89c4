from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/login", views.PlatformLoginView.as_view(), name="platform-login"),
]
