"""The tenants' Prometheus collector, registered from `TenantsConfig.ready()`."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from tenants.db.aliases import DEFAULT_SERVER
from tenants.models import Tenant

OWN_URL = "-"  # the `server` label of tenants with a database URL of their own


def _tenants_gauge() -> GaugeMetricFamily:
    return GaugeMetricFamily("tenants", "Tenants by status", labels=["status"])


def _per_server_gauge() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "database_server_tenants",
        "Tenants by database server and status ('-': a tenant's own database URL)",
        labels=["server", "status"],
    )


class TenantCollector:
    """Tenants by status, and by database server and status, read from the main database
    at scrape time (one query)."""

    def describe(self):
        # What registering reads instead of collect(): no query while the apps load.
        yield _tenants_gauge()
        yield _per_server_gauge()

    def collect(self):
        tenants, per_server = _tenants_gauge(), _per_server_gauge()
        counts = dict.fromkeys(Tenant.Status.values, 0)
        by_server: dict[tuple[str, str], int] = {}
        try:
            rows = (
                Tenant.objects.values("status", "server__name", "database_url")
                .annotate(n=Count("id"))
                .order_by()
            )
            for row in rows:
                counts[row["status"]] += row["n"]
                server = row["server__name"] or (OWN_URL if row["database_url"] else DEFAULT_SERVER)
                key = (server, row["status"])
                by_server[key] = by_server.get(key, 0) + row["n"]
        except Exception:  # the main database is down: /ready reports it
            counts, by_server = {}, {}
        for status, value in counts.items():
            tenants.add_metric([status], value)
        for (server, status), value in sorted(by_server.items()):
            per_server.add_metric([server, status], value)
        yield tenants
        yield per_server
