from django.core.management.commands.check import Command as DjangoCheckCommand


class Command(DjangoCheckCommand):
    """Django's `check`, except that `--deploy` also runs the database-tagged checks (tenant
    databases reachable, migrations applied) against the main database's registry, as if
    `--database default` had been given."""

    def handle(self, *app_labels, **options):
        if options["deploy"] and not options.get("databases"):
            options["databases"] = ["default"]
        return super().handle(*app_labels, **options)
