import logging

from django.core.management.base import BaseCommand, CommandError

from accounts import keys

logger = logging.getLogger("accounts.keys")


class Command(BaseCommand):
    help = (
        "Rotate the token signing key (JWT_ALGORITHM EdDSA or RS256): a new key signs from "
        "now on, the replaced one keeps verifying until the tokens it signed have expired "
        "(the refresh token lifetime), then is retired. Previous keys past that time are "
        "retired on every run. --retire KID retires a previous key at once (its tokens are "
        "refused); --list shows the keys."
    )
    # The check this command answers (accounts.E101) must not stop it from running.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--algorithm",
            choices=keys.KEY_ALGORITHMS,
            help="Algorithm of the new key (default: JWT_ALGORITHM).",
        )
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--retire",
            metavar="KID",
            # A kid is base64url and may start with "-": argparse then needs the = form.
            help="Retire this previous key now (--retire=KID).",
        )
        action.add_argument(
            "--retire-expired",
            action="store_true",
            help="Only retire previous keys past their time (no new key).",
        )
        action.add_argument("--list", action="store_true", help="List the keys and exit.")

    def handle(self, *args, **options):
        try:
            if options["list"]:
                self._list()
            elif options["retire"]:
                key = keys.retire_key(kid=options["retire"])
                logger.info("Token signing key retired (kid=%s)", key.kid)
                self.stdout.write(f"Retired key {key.kid}.")
            elif options["retire_expired"]:
                self._report_expired(keys.retire_expired_keys())
            else:
                self._rotate(options["algorithm"])
        except keys.KeyRingError as exc:
            raise CommandError(str(exc)) from exc

    def _rotate(self, algorithm: str | None) -> None:
        algorithm = algorithm or keys.configured_algorithm()
        if algorithm not in keys.KEY_ALGORITHMS:
            raise CommandError(
                f"JWT_ALGORITHM is {algorithm}: tokens are signed with JWT_SECRET, not a key "
                f"pair. Pass --algorithm ({' or '.join(keys.KEY_ALGORITHMS)}) to prepare one."
            )
        before = {k.kid: k.status for k in keys.list_keys()}
        key = keys.rotate_keys(alg=algorithm)
        after = {k.kid: k for k in keys.list_keys()}
        logger.info("Token signing key rotated (kid=%s, alg=%s)", key.kid, key.alg)
        self.stdout.write(f"New current {key.alg} key {key.kid}.")
        for kid, status in before.items():
            now = after[kid]
            if status == keys.Status.CURRENT and now.status == keys.Status.PREVIOUS:
                self.stdout.write(
                    f"Key {kid} verifies until {now.retire_after.isoformat()}, then retires."
                )
            elif status != keys.Status.RETIRED and now.status == keys.Status.RETIRED:
                self.stdout.write(f"Retired key {kid}.")

    def _report_expired(self, retired: list[keys.SigningKey]) -> None:
        for key in retired:
            logger.info("Token signing key retired (kid=%s)", key.kid)
            self.stdout.write(f"Retired key {key.kid}.")
        if not retired:
            self.stdout.write("No key to retire.")

    def _list(self) -> None:
        ring = keys.list_keys()
        if not ring:
            self.stdout.write(f"No key in {keys.key_directory()}.")
        for key in ring:
            until = f" until {key.retire_after.isoformat()}" if key.retire_after else ""
            self.stdout.write(
                f"{key.kid}  {key.alg}  {key.status}{until}  created {key.created.isoformat()}"
            )
