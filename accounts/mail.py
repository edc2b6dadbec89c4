"""E-mails to users, rendered from `templates/accounts/` and sent through Django's e-mail
backend (console unless `EMAIL_HOST` names an SMTP server) on a background thread.

Sending off the request keeps a password-reset request as fast for an unknown address
(nothing sent) as for a known one (a message handed to a slow SMTP server): the answer's
timing does not tell which addresses exist. A message still queued when the process ends
is lost; the user asks again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

logger = logging.getLogger("accounts.mail")

_sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="accounts-mail")
_pending: set[Future] = set()
_pending_lock = threading.Lock()


def render_message(*, template: str, to: str, context: dict) -> EmailMessage:
    """The message of `templates/accounts/<template>_subject.txt` and `_body.txt`."""
    subject = render_to_string(f"accounts/{template}_subject.txt", context)
    body = render_to_string(f"accounts/{template}_body.txt", context)
    return EmailMessage(
        subject=" ".join(subject.split()),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )


def send_in_background(message: EmailMessage, *, what: str) -> None:
    """Queue `message`; a failure to send is logged (without the message) and dropped."""
    future = _sender.submit(_send, message, what)
    with _pending_lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def _send(message: EmailMessage, what: str) -> None:
    try:
        message.send()
    except Exception as exc:
        logger.warning("E-mail not sent (%s): %s", what, type(exc).__name__)


def _forget(future: Future) -> None:
    with _pending_lock:
        _pending.discard(future)


def wait_for_outgoing_mail(timeout: float = 10.0) -> None:
    """Block until every queued message was handed to the backend (tests, shutdown)."""
    with _pending_lock:
        pending = set(_pending)
    wait(pending, timeout=timeout)
