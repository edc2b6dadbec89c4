"""OpenAPI documentation: the bearer scheme, the error envelope and the operations bodies.

Schema-only code: nothing here runs while a request is served.
"""

from django.core.validators import EmailValidator, RegexValidator
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from config.paths import PROBE_PATHS, is_platform_path

BEARER = "bearerAuth"
API_KEY = "apiKeyAuth"


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TenantJWTAuthentication"
    name = BEARER

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token issued for the tenant of the request's host.",
        }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """An API key; required (instead of a token) only on the views that admit keys (their
    `api_key_scopes`)."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = API_KEY

    def get_security_requirement(self, auto_schema):
        if getattr(auto_schema.view, "api_key_scopes", None) is None:
            return None
        return {self.name: []}

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": (
                "An API key of the tenant of the request's host, `<prefix>.<secret>`; also "
                "accepted as `Authorization: Bearer <prefix>.<secret>`. Scopes: "
                "`contacts:read` (GET on the address book), `contacts:write` (any method)."
            ),
        }


# DRF refuses NUL in every text field and trims them unless told not to, so a required
# trimmed field needs a character that is not whitespace. Both patterns are linear.
TEXT_PATTERN = r"^\s*[^\s\u0000][^\u0000]*$"
NO_NUL_PATTERN = r"^[^\u0000]*$"


class CharFieldExtension(OpenApiSerializerFieldExtension):
    """Every request text field states in the schema what the server checks besides its
    length: a field's own pattern (`schema_pattern`, config.api.DocumentedCharField), else
    DRF's own rules (no NUL; not whitespace only where a blank is refused), so a value a
    client generates from the schema is never refused by a rule the schema hides."""

    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if direction != "request" or schema is None or schema.get("type") != "string":
            return schema
        stated = (RegexValidator, EmailValidator)
        if "pattern" in schema or "format" in schema or "enum" in schema:
            return schema
        if any(isinstance(v, stated) for v in field.validators):
            return schema
        if getattr(field, "schema_format", None):
            return {**schema, "format": field.schema_format}
        pattern = getattr(field, "schema_pattern", None)
        if pattern is None:
            blank_refused = field.trim_whitespace and not field.allow_blank
            pattern = TEXT_PATTERN if blank_refused else NO_NUL_PATTERN
        schema = {**schema, "pattern": pattern}
        if field.allow_blank and not schema.get("minLength"):
            # drf-spectacular states a blank-allowed field as oneOf [this, maxLength 0]:
            # this branch must not match "" too, or "" matches both and oneOf refuses it.
            schema["minLength"] = 1
        return schema


class ErrorSerializer(serializers.Serializer):
    """The one error shape; `details` only on field validation errors."""

    status = serializers.IntegerField()
    error = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])


class ReadinessChecksSerializer(serializers.Serializer):
    database = serializers.ChoiceField(choices=["ok", "unavailable"])
    cache = serializers.ChoiceField(choices=["ok", "unavailable"])
    channel_layer = serializers.ChoiceField(choices=["ok", "unavailable"])


class UnavailableTenantsSerializer(serializers.Serializer):
    unavailable = serializers.IntegerField(
        min_value=0, help_text="How many tenants' databases are failing (never which)."
    )


class ReadinessSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checks = ReadinessChecksSerializer()
    tenants = UnavailableTenantsSerializer(required=False)


def documented_error(description: str) -> OpenApiResponse:
    """An operation-specific error answer, in the envelope; `description` names the
    messages a client can match on."""
    return OpenApiResponse(ErrorSerializer, description=description)


# --- the error answers every operation may give ------------------------------------------
OPTIONAL_RESPONSE_FIELDS = {
    "Error": {"details"},
    "Readiness": {"tenants"},
    # A JWK carries the members of its key type only (OKP: crv, x; RSA: n, e).
    "Jwk": {"crv", "x", "n", "e"},
}
BODYLESS_PATHS = frozenset({"/health", "/ready", "/api/logs"})


def _error(description: str, headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _common_errors(path: str, operation: dict, view) -> dict[str, dict]:
    """The envelope errors the middleware and the API base views can give on `path`,
    besides what the operation itself documents."""
    from rest_framework.negotiation import DefaultContentNegotiation

    tenant_path = not is_platform_path(path)
    api_view = path not in BODYLESS_PATHS
    authenticated = any(BEARER in requirement for requirement in operation.get("security", []))
    messages_400 = ["`Invalid Content-Length header`"]
    messages_403 = []
    if api_view:
        messages_400 = ["`Validation failed` (with `details`)", "`Malformed JSON`", *messages_400]
        messages_403.append("`Tenant access denied` (a `tenant` / `tenant_id` of another tenant)")
    if tenant_path:
        messages_400.append("`Invalid host header`")
        messages_403.append("`Tenant suspended`")
    if path.startswith("/api/platform/"):
        messages_403.append("`Access from this network is not allowed` (ADMIN_ALLOWED_IPS)")
    errors = {"400": _error("; ".join(messages_400) + ".")}
    if authenticated:
        errors["401"] = _error(
            "`Missing authorization header`; `Invalid token` (bad signature, expired, revoked, "
            "malformed).",
            headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
        )
        messages_403.append(
            "`Tenant access denied` (a token of another tenant, a platform token on a tenant "
            "endpoint or a tenant token on a platform endpoint); a user without the role the "
            "endpoint requires"
        )
        messages_403.append(
            "`Insufficient scope` (an API key on an endpoint or a method its scopes do not cover)"
        )
    if messages_403:
        errors["403"] = _error("; ".join(messages_403) + ".")
    if tenant_path:
        errors["404"] = _error("`Unknown tenant`: the host matches no active tenant.")
    negotiation = view.content_negotiation_class
    if api_view and negotiation.select_renderer is DefaultContentNegotiation.select_renderer:
        errors["406"] = _error("`Could not satisfy the request Accept header.`")
    errors["413"] = _error("`Request body too large` (MAX_REQUEST_SIZE_BYTES).")
    if api_view:
        errors["415"] = _error("A body that is not application/json.")
    if path not in PROBE_PATHS:
        errors["429"] = _error(
            "`Too many requests`: the per-IP rate limit, the throttles of logins and of "
            "link e-mails (password reset, e-mail verification), or too many failed API key "
            "attempts from the client address.",
            headers={
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait.",
                    "required": True,
                }
            },
        )
    errors["500"] = _error("`Internal server error` (logged; no traceback in the body).")
    if tenant_path:
        errors["503"] = _error(
            "`Tenant database unavailable`: the tenant's database refuses "
            "connections (retried by itself)."
        )
    return errors


def add_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOK: document on every operation the envelope errors it can give
    besides its own (middleware answers, authentication, negotiation, limits), and close
    the envelope and the request bodies (unknown fields are a 400)."""
    views = {
        (path, method.lower()): view
        for path, _regex, method, view in generator._get_paths_and_endpoints()
    }
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code, response in _common_errors(path, operation, views[path, method]).items():
                responses.setdefault(code, response)
            operation["responses"] = dict(sorted(responses.items()))
    for name, schema in result["components"]["schemas"].items():
        if schema.get("type") != "object" or "properties" not in schema:
            continue
        schema.setdefault("additionalProperties", False)
        if not name.endswith("Request"):
            # Response bodies always carry every field (model defaults make drf-spectacular
            # mark some optional), except the ones listed as optional.
            optional = OPTIONAL_RESPONSE_FIELDS.get(name, set())
            schema["required"] = sorted(set(schema["properties"]) - optional)
    return result
