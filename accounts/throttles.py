"""Login throttles on the Django cache (Redis when configured): a per-IP rate on every
login attempt, and a per-account lockout after repeated failures. Both expire by
themselves; both answer 429 with `Retry-After`.

The lockout's `identifier` is what is counted, chosen by `accounts.services`: the account
(`user:<id>`, whichever name or address the attempt used), or an identifier that names no
account."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from config.ratelimit import count_hit

logger = logging.getLogger("accounts.throttles")

RATE_WINDOW = 60


def _now() -> float:
    return time.time()


def _account_key(*, scope: str, identifier: str) -> str:
    digest = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]
    return f"accounts:login-fail:{scope}:{digest}"


def _fail_open(func):
    """A cache outage must not lock everyone out: log it and let the attempt through."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Throttled:
            raise
        except Exception:
            logger.warning("Cache unavailable; login throttles skipped for this attempt")
            return None

    return wrapper


@_fail_open
def check_login_rate(*, ip: str) -> None:
    """Count one login attempt from `ip`; raise Throttled past LOGIN_RATE_LIMIT_PER_MINUTE."""
    limit = settings.LOGIN_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    count, wait = count_hit(f"accounts:login-ip:{ip}", window=RATE_WINDOW)
    if count > limit:
        logger.warning("Login rate limit reached for a client address (limit=%s/min)", limit)
        raise Throttled(wait=wait)


def _lock_state(*, scope: str, identifier: str) -> tuple[int, float | None]:
    """(failures counted in the current window, when that window started)."""
    key = _account_key(scope=scope, identifier=identifier)
    found = cache.get_many([f"{key}:start", f"{key}:count"])  # one round trip
    started, count = found.get(f"{key}:start"), found.get(f"{key}:count")
    if started is None:
        return 0, None
    if _now() - started >= settings.LOGIN_LOCKOUT_WINDOW:
        cache.delete_many([f"{key}:start", f"{key}:count"])
        return 0, None
    return int(count or 0), started


@_fail_open
def check_lockout(*, scope: str, identifier: str) -> bool:
    """Raise Throttled while `identifier` (an account, see above) in `scope` is locked out.

    Returns whether failures of the account are being counted (a window is open), so a
    successful login clears them only when there is something to clear; None when the
    cache could not tell.
    """
    count, started = _lock_state(scope=scope, identifier=identifier)
    if started is not None and count >= settings.LOGIN_LOCKOUT_THRESHOLD:
        wait = max(1, math.ceil(started + settings.LOGIN_LOCKOUT_WINDOW - _now()))
        raise Throttled(wait=wait)
    return started is not None


@_fail_open
def record_login_failure(*, scope: str, identifier: str) -> bool:
    """Count a failed login; returns True when this failure locks the account."""
    window = settings.LOGIN_LOCKOUT_WINDOW
    key = _account_key(scope=scope, identifier=identifier)
    _lock_state(scope=scope, identifier=identifier)  # drops an expired window
    cache.add(f"{key}:start", _now(), window)
    cache.add(f"{key}:count", 0, window)
    try:
        count = cache.incr(f"{key}:count")
    except ValueError:
        cache.set(f"{key}:count", 1, window)
        count = 1
    return count == settings.LOGIN_LOCKOUT_THRESHOLD


@_fail_open
def reset_login_failures(*, scope: str, identifier: str) -> None:
    key = _account_key(scope=scope, identifier=identifier)
    cache.delete_many([f"{key}:start", f"{key}:count"])


# --- link e-mails (password reset, e-mail verification) -----------------------------------
LINK_ADDRESS_WINDOW = 3600


def check_email_link_rate(*, ip: str | None, address: str, scope: str) -> None:
    """Count one request for a link e-mail to `address` (in tenant `scope`) from `ip`;
    raise Throttled past `EMAIL_LINK_RATE_LIMIT_PER_MINUTE` per client address or
    `EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR` per recipient. An address is counted whether or not
    it has an account, so a 429 tells nothing about which do. A cache outage lets the
    request through (logged), as for logins."""
    try:
        per_ip = settings.EMAIL_LINK_RATE_LIMIT_PER_MINUTE
        if ip is not None and per_ip > 0:
            count, wait = count_hit(f"accounts:link-ip:{ip}", window=RATE_WINDOW)
            if count > per_ip:
                logger.warning("Link e-mail rate limit reached for a client address")
                raise Throttled(wait=wait)
        per_address = settings.EMAIL_LINK_ADDRESS_LIMIT_PER_HOUR
        if per_address > 0:
            # casefold, not lower: the database compares addresses case-insensitively with
            # Unicode's folding (a long s is an s), so one mailbox is one counter.
            digest = hashlib.sha256(address.strip().casefold().encode()).hexdigest()[:32]
            key = f"accounts:link-address:{scope}:{digest}"
            count, wait = count_hit(key, window=LINK_ADDRESS_WINDOW)
            if count > per_address:
                logger.warning("Link e-mail rate limit reached for an address (tenant=%s)", scope)
                raise Throttled(wait=wait)
    except Throttled:
        raise
    except Exception:
        logger.warning("Cache unavailable; link e-mail throttles skipped for this request")
