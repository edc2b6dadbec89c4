from django.urls import path

from logstream import views

urlpatterns = [
    path("logs", views.logs_gone, name="logs-gone"),
]
