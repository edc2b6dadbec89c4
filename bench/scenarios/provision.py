"""`tenants.services.provision_tenant` in the runner's process: template clone, migrations
check and first admin, timed per tenant."""

from __future__ import annotations

import time

from bench.context import ADMIN_PASSWORD, Context
from bench.report import Target, percentile
from bench.scenarios import Metric, Need

KEY = "provision"
TITLE = "provision_tenant on PostgreSQL (template clone, first admin)"
NEEDS = {Need.POSTGRESQL, Need.DJANGO}
METRICS = (Metric("median_s", "median", "s", Target("<=", 0.5, "s")),)


def run(ctx: Context, run: int) -> dict:
    from django.db import connections

    from tenants.services import AdminSpec, provision_tenant

    times = []
    for i in range(ctx.mode.provisions):
        slug = f"prov-{run}-{i}"
        t0 = time.perf_counter()
        provision_tenant(
            slug=slug,
            name=slug,
            admin=AdminSpec("owner", f"owner@{slug}.example.com", ADMIN_PASSWORD),
        )
        times.append(time.perf_counter() - t0)
    connections.close_all()
    times.sort()
    return {"median_s": percentile(times, 50), "max_s": times[-1]}
