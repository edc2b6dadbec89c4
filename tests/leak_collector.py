"""Collects, for the whole test session, every secret the code handled and everything it
showed: the secrets are the passwords given to the password hashers, the secrets of API
keys given to their digest, every JWT encoded, every token of an e-mailed link (password
reset, e-mail verification) and the signing keys; the output is every record emitted by a
logging handler (any logger, any handler but pytest's own), every WebSocket text frame sent
by a consumer, every error body (status 400 and above) answered by the HTTP and ASGI
handlers and every audit event written (accounts.audit writes them with `bulk_create`).

`tests/test_secrets_never_leak.py` runs last and asserts that no secret appears in the
output. Installed by a session fixture in `tests/conftest.py`.
"""

from __future__ import annotations

import logging
import re
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from unittest import mock

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
MIN_SECRET_LENGTH = 8  # shorter test passwords would match ordinary words


@dataclass
class Exposure:
    kind: str  # "log", "frame", "error body" or "audit event"
    where: str
    text: str


@dataclass
class LeakCollector:
    secrets: set[str] = field(default_factory=set)
    output: list[Exposure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    installed_: bool = False
    recording_secrets: bool = True

    @contextmanager
    def fuzzed_input(self):
        """Passwords and tokens made up by a fuzzer are nobody's secrets (and can be any
        common word); output is still collected."""
        self.recording_secrets = False
        try:
            yield
        finally:
            self.recording_secrets = True

    def secret(self, value) -> None:
        if not self.recording_secrets:
            return
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            with self.lock:
                self.secrets.add(value)

    def show(self, kind: str, where: str, text) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if text:
            with self.lock:
                self.output.append(Exposure(kind, where, str(text)))

    def leaks(self) -> list[tuple[Exposure, str]]:
        """(exposure, what leaked) for every output that contains a secret or a JWT."""
        with self.lock:
            secrets, output = sorted(self.secrets), list(self.output)
        found = []
        for exposure in output:
            for secret in secrets:
                if secret in exposure.text:
                    found.append((exposure, _mask(secret)))
            match = JWT.search(exposure.text)
            if match:
                found.append((exposure, f"a JWT {_mask(match.group())}"))
        return found

    @contextmanager
    def installed(self):
        with ExitStack() as stack:
            for target, wrapper in self._patches():
                stack.enter_context(mock.patch(target, wrapper(_resolve(target))))
            self.installed_ = True
            try:
                yield self
            finally:
                self.installed_ = False

    # --- the hooks --------------------------------------------------------------------
    def _patches(self):
        collector = self
        plain = logging.Formatter("%(levelname)s [%(name)s] %(message)s")

        def handler_handle(real):
            def handle(handler, record):
                passed = real(handler, record)
                if passed and not type(handler).__module__.startswith("_pytest"):
                    try:
                        text = plain.format(record)
                    except Exception:
                        text = str(record.msg)
                    collector.show("log", f"{record.name} via {type(handler).__name__}", text)
                return passed

            return handle

        def hasher(real):
            def method(self, password, *args, **kwargs):
                collector.secret(password)
                return real(self, password, *args, **kwargs)

            return method

        def token_str(real):
            def method(self):
                value = real(self)
                collector.secret(value)
                return value

            return method

        def link_token(real):
            def method(self, *args, **kwargs):
                value = real(self, *args, **kwargs)
                collector.secret(value)
                return value

            return method

        def ws_send(real):
            async def send(self, text_data=None, bytes_data=None, close=False):
                collector.show("frame", type(self).__name__, text_data or bytes_data)
                return await real(self, text_data=text_data, bytes_data=bytes_data, close=close)

            return send

        def _error_body(response, where):
            if (
                response is not None
                and response.status_code >= 400
                and not getattr(response, "streaming", False)
            ):
                collector.show("error body", where, response.content)

        def get_response(real):
            def method(self, request):
                response = real(self, request)
                _error_body(response, f"{request.method} {request.path}")
                return response

            return method

        def get_response_async(real):
            async def method(self, request):
                response = await real(self, request)
                _error_body(response, f"{request.method} {request.path}")
                return response

            return method

        def bulk_create(real):
            def method(self, objs, *args, **kwargs):
                objs = list(objs)
                if self.model._meta.label == "accounts.AuditEvent":
                    for obj in objs:
                        fields = [f.attname for f in obj._meta.concrete_fields]
                        text = " ".join(str(getattr(obj, name)) for name in fields)
                        collector.show("audit event", obj.event, text)
                return real(self, objs, *args, **kwargs)

            return method

        return [
            ("logging.Handler.handle", handler_handle),
            ("django.db.models.query.QuerySet.bulk_create", bulk_create),
            ("django.contrib.auth.hashers.Argon2PasswordHasher.encode", hasher),
            ("django.contrib.auth.hashers.Argon2PasswordHasher.verify", hasher),
            ("django.contrib.auth.hashers.PBKDF2PasswordHasher.encode", hasher),
            ("django.contrib.auth.hashers.PBKDF2PasswordHasher.verify", hasher),
            ("accounts.api_keys.ApiKeyGenerator.digest", hasher),
            ("rest_framework_simplejwt.tokens.Token.__str__", token_str),
            ("accounts.links.PasswordResetTokens.make_token", link_token),
            ("accounts.links.EmailVerificationTokens.make_token", link_token),
            ("channels.generic.websocket.AsyncWebsocketConsumer.send", ws_send),
            ("django.core.handlers.base.BaseHandler.get_response", get_response),
            ("django.core.handlers.base.BaseHandler.get_response_async", get_response_async),
        ]


def _resolve(target: str):
    module_path, cls_name, attr = target.rsplit(".", 2)
    import importlib

    module = importlib.import_module(module_path)
    return getattr(getattr(module, cls_name), attr)


def _mask(secret: str) -> str:
    return f"{secret[:4]}...({len(secret)} chars)"


collector = LeakCollector()
