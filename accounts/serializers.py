"""Request and response shapes of the accounts API."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import User
from config.api import StrictSerializer
from tenants.context import get_current_tenant


# --- input --------------------------------------------------------------------------------
class SignupSerializer(StrictSerializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class UserCreateSerializer(SignupSerializer):
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)


class LoginSerializer(StrictSerializer):
    username_or_email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class RefreshSerializer(StrictSerializer):
    refresh = serializers.CharField(max_length=4096)


class LogoutSerializer(StrictSerializer):
    refresh = serializers.CharField(max_length=4096, required=False, allow_blank=True)


class PasswordChangeSerializer(StrictSerializer):
    old_password = serializers.CharField(max_length=4096, trim_whitespace=False)
    new_password = serializers.CharField(max_length=4096, trim_whitespace=False)


class UserUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


# --- output -------------------------------------------------------------------------------
class SignupResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role"]


class MeSerializer(serializers.ModelSerializer):
    tenant = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "tenant"]

    def get_tenant(self, user) -> str | None:
        tenant = get_current_tenant()
        return tenant.slug if tenant is not None else None


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_active", "date_joined", "last_login"]


# --- documentation only (the views build these bodies from services) ---------------------
class TokenPairSerializer(serializers.Serializer):
    """The body of a login, refresh or password change. Platform logins get no refresh
    token and no tenant."""

    token = serializers.CharField(help_text="The access token (same value as `access`).")
    access = serializers.CharField()
    refresh = serializers.CharField(allow_null=True)
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="Lifetime of the access token, seconds.")
    tenant = serializers.CharField(allow_null=True, help_text="The tenant's slug.")


class UserPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = UserSerializer(many=True)
