from django.urls import path

from addressbook import views

urlpatterns = [
    path("address-book", views.ContactListCreateView.as_view(), name="contact-list"),
    path("address-book/export", views.ContactExportView.as_view(), name="contact-export"),
    path("address-book/stats", views.ContactStatsView.as_view(), name="contact-stats"),
    path("address-book/<int:pk>", views.ContactDetailView.as_view(), name="contact-detail"),
]
