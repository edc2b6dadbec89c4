"""The one rule for signing secrets (SECRET_KEY, JWT_SECRET): production refuses to start
with a weak one (config/settings.py) and `check --deploy` reports it elsewhere
(config.E001, config.E002)."""

MIN_SECRET_LENGTH = 50
MIN_DISTINCT_CHARACTERS = 8
# Words of placeholder values (the development default, example and build-time values).
WEAK_MARKERS = ("dev-insecure", "change-me", "changeme", "secret", "build-only")


def is_weak_secret(value: str) -> bool:
    """True for a secret too short, too repetitive, or carrying a placeholder's words."""
    lowered = value.lower()
    return (
        len(value) < MIN_SECRET_LENGTH
        or len(set(value)) < MIN_DISTINCT_CHARACTERS
        or any(marker in lowered for marker in WEAK_MARKERS)
    )
