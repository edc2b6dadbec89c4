"""Request and response shapes of the accounts API."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import User
from accounts.validators import MAX_PASSWORD_LENGTH
from config.api import DocumentedCharField, StrictSerializer
from tenants.context import current_tenant_slug

# --- input --------------------------------------------------------------------------------
# A new user's values are checked by the service (accounts.services.validate_new_user,
# with uniqueness: one 400 names every problem); the schema states the same rules.
USERNAME_MAX_LENGTH = 150
USERNAME_PATTERN = r"^[\w.@+-]+$"  # Django's UnicodeUsernameValidator
# PasswordStrengthValidator and MinimumLengthValidator: 8-128 characters, an upper-case
# letter, a lower-case letter and a digit (the server also takes non-ASCII letters).
PASSWORD_SCHEMA_PATTERN = r"^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])[^\u0000]{8,128}$"  # noqa: S105 (a pattern)
# Longer than any password a user can have: a login with one is just a wrong password.
PASSWORD_INPUT_MAX_LENGTH = 4096


def username_field() -> DocumentedCharField:
    return DocumentedCharField(
        max_length=USERNAME_MAX_LENGTH, trim_whitespace=False, schema_pattern=USERNAME_PATTERN
    )


def new_password_field() -> DocumentedCharField:
    """A password being set. Its length is checked here, before the strength validators
    (the similarity one compares it with the username and e-mail) see it."""
    return DocumentedCharField(
        max_length=MAX_PASSWORD_LENGTH,
        trim_whitespace=False,
        schema_pattern=PASSWORD_SCHEMA_PATTERN,
        error_messages={
            "max_length": "This password is too long. It must contain at most {max_length} "
            "characters."
        },
    )


class NewUserSerializer(StrictSerializer):
    """A user being created: username, e-mail address and password."""

    username = username_field()
    email = DocumentedCharField(max_length=254, schema_format="email")
    password = new_password_field()


class SignupSerializer(NewUserSerializer):
    pass


class UserCreateSerializer(NewUserSerializer):
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)


class LoginSerializer(StrictSerializer):
    username_or_email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=PASSWORD_INPUT_MAX_LENGTH, trim_whitespace=False)


class RefreshSerializer(StrictSerializer):
    refresh = serializers.CharField(max_length=4096)


class LogoutSerializer(StrictSerializer):
    refresh = serializers.CharField(max_length=4096, required=False, allow_blank=True)


class PasswordChangeSerializer(StrictSerializer):
    old_password = serializers.CharField(
        max_length=PASSWORD_INPUT_MAX_LENGTH, trim_whitespace=False
    )
    new_password = new_password_field()


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
        return current_tenant_slug()


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


# --- second factor ------------------------------------------------------------------------
# A TOTP code (6 digits) or a recovery code (`xxxxx-xxxxx`); spaces and dashes are ignored.
MFA_CODE_MAX_LENGTH = 32
MFA_TOKEN_MAX_LENGTH = 512


class MfaCodeSerializer(StrictSerializer):
    code = serializers.CharField(max_length=MFA_CODE_MAX_LENGTH)


class LoginSecondFactorSerializer(StrictSerializer):
    mfa_token = serializers.CharField(max_length=MFA_TOKEN_MAX_LENGTH)
    code = serializers.CharField(max_length=MFA_CODE_MAX_LENGTH)


class MfaPolicyUpdateSerializer(StrictSerializer):
    required = serializers.BooleanField(required=False)


class MfaPolicySerializer(serializers.Serializer):
    required = serializers.BooleanField(
        help_text="Users without an authenticator log in to enrolment only."
    )


class TotpEnrolmentSerializer(serializers.Serializer):
    otpauth_uri = serializers.CharField(help_text="The `otpauth://totp/...` URI.")
    qr_svg = serializers.CharField(help_text="The URI as a QR code, an SVG document.")


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(),
        min_length=10,
        max_length=10,
        help_text="Ten single-use codes, shown once.",
    )


class EnrolmentTokenPairSerializer(TokenPairSerializer):
    """A login to a tenant that requires two-factor login, by a user without an
    authenticator: the tokens reach the enrolment endpoints only."""

    mfa_enrolment_required = serializers.BooleanField()


class MfaChallengeSerializer(serializers.Serializer):
    """A login whose password was right for a user with an authenticator."""

    mfa_required = serializers.BooleanField()
    mfa_token = serializers.CharField(
        help_text="For POST /api/auth/login/mfa, with a code; short-lived, single use."
    )
