from django.core.signals import request_finished
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenants.db.connections import enforce_connection_cap
from tenants.models import Domain, Tenant
from tenants.resolution import resolver


@receiver([post_save, post_delete], sender=Tenant)
@receiver([post_save, post_delete], sender=Domain)
def invalidate_tenant_resolution(**kwargs) -> None:
    resolver.invalidate()


@receiver(request_finished)
def close_idle_tenant_connections(**kwargs) -> None:
    enforce_connection_cap()
