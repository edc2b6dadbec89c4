from django.db import models

from tenants.db.aliases import alias_for
from tenants.validators import validate_domain, validate_slug


class Tenant(models.Model):
    """A customer organisation; the row lives in the main database, its data in its own."""

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        FAILED = "failed", "Failed"
        DROPPED = "dropped", "Dropped"

    slug = models.CharField(max_length=63, unique=True, validators=[validate_slug])
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PROVISIONING, db_index=True
    )
    database_name = models.CharField(max_length=255, blank=True)
    database_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="Only for a tenant placed on another database server. Credentials are "
        "never shown by the API.",
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def alias(self) -> str:
        """The `DATABASES` alias this tenant's queries are routed to."""
        return alias_for(self.slug)

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(models.Model):
    """A host name served as a tenant (`acme.example.com`); compared lower-case, no port."""

    domain = models.CharField(max_length=253, unique=True, validators=[validate_domain])
    tenant = models.ForeignKey(Tenant, related_name="domains", on_delete=models.CASCADE)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs):
        self.domain = self.domain.strip().lower()
        super().save(*args, **kwargs)
