"""The tenants' Prometheus collector, registered from `TenantsConfig.ready()`."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from tenants.models import Tenant


class TenantCollector:
    """Tenants by status, read from the main database at scrape time."""

    def describe(self):
        # What registering reads instead of collect(): no query while the apps load.
        yield GaugeMetricFamily("tenants", "Tenants by status", labels=["status"])

    def collect(self):
        tenants = GaugeMetricFamily("tenants", "Tenants by status", labels=["status"])
        counts = dict.fromkeys(Tenant.Status.values, 0)
        try:
            rows = Tenant.objects.values("status").annotate(n=Count("id")).order_by()
            for row in rows:
                counts[row["status"]] = row["n"]
        except Exception:  # the main database is down: /ready reports it
            counts = {}
        for status, value in counts.items():
            tenants.add_metric([status], value)
        yield tenants
