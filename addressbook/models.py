from django.db import models
from django.db.models import Q

AGE_MIN = 0
AGE_MAX = 150


class Gender(models.TextChoices):
    MALE = "male", "Male"
    FEMALE = "female", "Female"
    OTHER = "other", "Other"
    UNSPECIFIED = "unspecified", "Unspecified"


class Contact(models.Model):
    """One entry of a tenant's address book; the table exists only in tenant databases."""

    Gender = Gender

    name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="")
    address = models.CharField(max_length=500, blank=True, default="")
    gender = models.CharField(max_length=16, choices=Gender.choices, default=Gender.UNSPECIFIED)
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = models.CharField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(name=""), name="addressbook_contact_name_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(age__isnull=True) | Q(age__gte=AGE_MIN, age__lte=AGE_MAX),
                name="addressbook_contact_age_range",
            ),
            models.CheckConstraint(
                condition=Q(gender__in=Gender.values),
                name="addressbook_contact_gender_valid",
            ),
        ]
        # Every list ordering is tie-broken by id, so each (field, id) pair is the index a
        # cursor page walks; the gender filter gets its own.
        indexes = [
            models.Index(fields=["name", "id"], name="contact_name_id_idx"),
            models.Index(fields=["email", "id"], name="contact_email_id_idx"),
            models.Index(fields=["age", "id"], name="contact_age_id_idx"),
            models.Index(fields=["created_at", "id"], name="contact_created_id_idx"),
            models.Index(fields=["updated_at", "id"], name="contact_updated_id_idx"),
            models.Index(fields=["gender", "id"], name="contact_gender_id_idx"),
        ]

    def __str__(self) -> str:
        return f"Contact {self.pk}"


# The contact's public fields, in the order the API and the exports show them; the fields a
# list may be ordered by (each cursor page walks its (field, id) index); and the field kinds
# the cursors and the list's date formatting need, read from the model's own fields.
CONTACT_FIELDS = (
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
ORDERING_FIELDS = ("name", "email", "age", "created_at", "updated_at", "id")
_PUBLIC = [Contact._meta.get_field(name) for name in CONTACT_FIELDS]
DATETIME_FIELDS = tuple(f.name for f in _PUBLIC if isinstance(f, models.DateTimeField))
INTEGER_FIELDS = frozenset(f.name for f in _PUBLIC if isinstance(f, models.IntegerField))
NULLABLE_FIELDS = frozenset(f.name for f in _PUBLIC if f.null)
