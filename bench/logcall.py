"""Cost of one log call to the caller: `logger.info(...)` on a project logger with the
production handlers (console + LogStreamHandler on the Redis layer), inside a tenant
context. Calls are paced in bursts so the publisher's bounded queue never fills (a full
queue would make calls cheaper by dropping). Prints JSON: mean/p50/p99 in microseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    from bench.report import percentile
    from logstream.handlers import publisher
    from tenants.context import use_tenant
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=args.tenant)
    logger = logging.getLogger("addressbook.bench")
    durations = []
    clock = time.perf_counter_ns
    with use_tenant(tenant):
        for i in range(50):  # warm-up: imports, the publisher thread, the Redis connection
            logger.info("warm-up %d", i)
        time.sleep(0.5)
        done = 0
        while done < args.n:
            for _ in range(args.burst):
                t0 = clock()
                logger.info("bench log call %d for user %s", done, "someone")
                durations.append(clock() - t0)
                done += 1
            time.sleep(0.01)
    durations.sort()
    print(
        json.dumps(
            {
                "calls": len(durations),
                "mean_us": sum(durations) / len(durations) / 1000,
                "p50_us": percentile(durations, 50) / 1000,
                "p99_us": percentile(durations, 99) / 1000,
                **publisher.stats(),
            }
        )
    )


if __name__ == "__main__":
    main()
