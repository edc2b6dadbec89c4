"""Request and response shapes of the accounts API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts import audit
from accounts.links import MAX_LINK_TOKEN_LENGTH
from accounts.models import ApiKey, AuditEvent, User
from accounts.validators import MAX_PASSWORD_LENGTH
from config.api import CursorPageMixin, DocumentedCharField, QuerySerializer, StrictSerializer
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
AUDIT_PAGE_SIZE = 50
AUDIT_MAX_PAGE_SIZE = 500


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


class PasswordResetRequestSerializer(StrictSerializer):
    email = serializers.EmailField(max_length=254)


class LinkTokenSerializer(StrictSerializer):
    """The token of an e-mailed link (the part after `#token=`)."""

    token = serializers.CharField(max_length=MAX_LINK_TOKEN_LENGTH)


class PasswordResetConfirmSerializer(LinkTokenSerializer):
    new_password = new_password_field()


class UserUpdateSerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)
    is_active = serializers.BooleanField(required=False)


EXPIRY_MAX_LENGTH = 64


@extend_schema_field({"type": "string", "format": "date-time", "maxLength": EXPIRY_MAX_LENGTH})
class ExpiryField(serializers.DateTimeField):
    """An ISO 8601 date-time of bounded length: a longer string is refused before it is
    parsed (config.api.LengthFirstMixin reads `max_length`)."""

    max_length = EXPIRY_MAX_LENGTH
    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "max_length": "Ensure this field has no more than {max_length} characters.",
    }


class ApiKeyCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices), min_length=1, max_length=2
    )
    expires_at = ExpiryField(required=False, help_text="When the key stops working (future).")


# --- output -------------------------------------------------------------------------------
class SignupResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role"]


class MeSerializer(serializers.ModelSerializer):
    tenant = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "tenant", "email_verified"]

    def get_tenant(self, user) -> str | None:
        return current_tenant_slug()


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_active", "date_joined", "last_login"]


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as listed: its prefix, never its secret."""

    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKey.Scope.choices))
    created_by = serializers.IntegerField(source="created_by_id", help_text="A user id.")

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "expires_at",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A key just created: the one answer that carries the key itself."""

    key = serializers.SerializerMethodField(help_text="`<prefix>.<secret>`, shown only once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]

    def get_key(self, api_key) -> str:
        return self.context["key"]


# --- audit trail ------------------------------------------------------------------------
class AuditQuerySerializer(CursorPageMixin, QuerySerializer):
    max_page_size = AUDIT_MAX_PAGE_SIZE
    event = serializers.CharField(required=False, max_length=32)
    user = serializers.CharField(required=False, max_length=USERNAME_MAX_LENGTH)
    since = DocumentedCharField(required=False, max_length=64, schema_format="date-time")

    def validate_event(self, value: str) -> str:
        if value not in audit.EVENTS:
            raise serializers.ValidationError(
                f"Unknown event; one of: {', '.join(sorted(audit.EVENTS))}."
            )
        return value

    def validate_since(self, value: str):
        """An ISO 8601 instant (UTC when it has no offset), parsed as DRF parses one."""
        return serializers.DateTimeField().to_internal_value(value)


class AuditActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class AuditTargetSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="`user`, `tenant`, `api_key`...")
    id = serializers.CharField()
    label = serializers.CharField(help_text="A username, a tenant name, a key name...")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["id", "event", "created_at", "actor", "target", "ip", "request_id", "details"]

    @extend_schema_field(AuditActorSerializer(allow_null=True))
    def get_actor(self, event: AuditEvent) -> dict | None:
        if event.actor_id is None:
            return None
        return {"id": event.actor_id, "username": event.actor_username}

    @extend_schema_field(AuditTargetSerializer(allow_null=True))
    def get_target(self, event: AuditEvent) -> dict | None:
        if not event.target_type:
            return None
        return {"type": event.target_type, "id": event.target_id, "label": event.target_label}


class AuditEventPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AuditEventSerializer(many=True)


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


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()


class EmailVerifiedSerializer(serializers.Serializer):
    email_verified = serializers.BooleanField()


class UserPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = UserSerializer(many=True)


class ApiKeyPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ApiKeySerializer(many=True)


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
