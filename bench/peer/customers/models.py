from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    """A tenant: its schema (`schema_name`) and a name."""

    name = models.CharField(max_length=100)
    auto_create_schema = True


class Domain(DomainMixin):
    """A host name (`<slug>.localhost`) that resolves to a tenant."""
