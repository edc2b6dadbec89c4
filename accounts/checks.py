"""System checks of the accounts app. The token signing keys' ids are `accounts.E1xx`."""

import stat

from django.core.checks import Error, Tags, register

from accounts import keys


@register(Tags.security, deploy=True)
def check_token_signing_keys(app_configs, **kwargs):
    """With EdDSA or RS256: a current key of that algorithm exists (accounts.E101), and no
    key file can be read or written by anyone but its owner (accounts.E102)."""
    if not keys.uses_key_ring():
        return []
    algorithm = keys.configured_algorithm()
    directory = keys.key_directory()
    problems = []
    try:
        current = keys.load_key_ring(directory).current(algorithm)
    except (keys.KeyRingError, OSError, ValueError) as exc:
        current = None
        reason = f"unreadable ({type(exc).__name__})"
    else:
        reason = "no current key"
    if current is None or current.private_key is None:
        problems.append(
            Error(
                f"JWT_ALGORITHM is {algorithm} but JWT_KEY_DIR ({directory}): {reason}.",
                hint="Run `manage.py rotate_jwt_keys` to create the signing key.",
                id="accounts.E101",
            )
        )
    exposed = _exposed_files(directory)
    if exposed:
        problems.append(
            Error(
                f"Token signing key files are open to other users: {', '.join(exposed)}.",
                hint=f"chmod 700 {directory} and chmod 600 the files in it.",
                id="accounts.E102",
            )
        )
    return problems


def _exposed_files(directory) -> list[str]:
    """Key files readable or writable by group or others; the directory and the index when
    writable by them (a key could be planted)."""
    if not directory.is_dir():
        return []
    exposed = []
    if directory.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        exposed.append(str(directory))
    for path in sorted(directory.iterdir()):
        if path.suffix == ".pem":
            refused = stat.S_IRWXG | stat.S_IRWXO
        elif path.name == keys.INDEX_NAME:
            refused = stat.S_IWGRP | stat.S_IWOTH
        else:
            continue
        if path.stat().st_mode & refused:
            exposed.append(path.name)
    return exposed
