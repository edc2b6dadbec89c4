"""Run a management command in this process and SIGKILL it at one lifecycle step:

    python -m tests.killed_command STEP COMMAND [ARGS ...]

STEP is `operation:name` as `tenants.lifecycle.step` announces it (e.g. `move:copy`); the
process dies there without running any `finally` or `atexit` code, as a killed operator's
command would. Exit status -9 when the step was reached, the command's own otherwise. The
environment chooses the databases (the tests pass their own `DATABASE_URL` and tags)."""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    target, command, *args = argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    import tenants.lifecycle as lifecycle

    reached = lifecycle.step

    def step(operation: str, name: str, slug: str) -> None:
        reached(operation, name, slug)
        if f"{operation}:{name}" == target:
            os.kill(os.getpid(), signal.SIGKILL)

    lifecycle.step = step
    call_command(command, *args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
