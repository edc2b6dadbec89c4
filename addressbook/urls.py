from django.urls import path

from addressbook import views

urlpatterns = [
    path("", views.ContactListCreateView.as_view(), name="contact-list"),
    path("/export", views.ContactExportView.as_view(), name="contact-export"),
    path("/stats", views.ContactStatsView.as_view(), name="contact-stats"),
    path("/<int:pk>", views.ContactDetailView.as_view(), name="contact-detail"),
]
