from django.db import models


class Contact(models.Model):
    """The product's Contact (addressbook.models.Contact): the same columns, the same
    default ordering and its index."""

    name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="")
    address = models.CharField(max_length=500, blank=True, default="")
    gender = models.CharField(max_length=16, default="unspecified")
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.CharField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "addressbook_contact"
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["name", "id"], name="contact_name_id_idx")]

    def __str__(self) -> str:
        return f"Contact {self.pk}"
