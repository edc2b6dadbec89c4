from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination

from bench.peer.contacts.models import Contact


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = (
            "id",
            "name",
            "email",
            "phone",
            "address",
            "gender",
            "age",
            "notes",
            "created_at",
            "updated_at",
        )


class ContactPage(CursorPagination):
    """The product's page: 50 contacts by (name, id), {next, previous, results}."""

    page_size = 50
    ordering = ("name", "id")


class ContactList(generics.ListAPIView):
    """GET /api/address-book: the current tenant's contacts, first page of 50."""

    serializer_class = ContactSerializer
    pagination_class = ContactPage
    queryset = Contact.objects.all()
