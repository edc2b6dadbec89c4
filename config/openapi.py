"""OpenAPI documentation: the bearer scheme, the error envelope and the operations bodies.

Schema-only code: nothing here runs while a request is served.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class TenantJWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TenantJWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token issued for the tenant of the request's host.",
        }


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


class ReadinessSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    checks = ReadinessChecksSerializer()
