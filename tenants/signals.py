from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenants.models import Domain, Tenant
from tenants.resolution import resolver


@receiver([post_save, post_delete], sender=Tenant)
@receiver([post_save, post_delete], sender=Domain)
def invalidate_tenant_resolution(**kwargs) -> None:
    resolver.invalidate()
