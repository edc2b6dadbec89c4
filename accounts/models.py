from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower


class User(AbstractUser):
    """A tenant's user (in that tenant's database) or a platform staff member (main DB)."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    email = models.EmailField("email address", max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    # Tokens issued before this instant are refused (password change, role change,
    # deactivation); stored here so revocation survives a cache flush.
    tokens_valid_after = models.DateTimeField(null=True, blank=True)
    # Created by open signup (anyone can): such an account never satisfies an allow-list.
    signed_up = models.BooleanField(default=False)

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def is_tenant_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class RevokedToken(models.Model):
    """A token refused before its expiry (logout, refresh rotation). Lives in the database
    of the tenant that issued it, so a flushed cache never brings the token back."""

    jti = models.CharField(max_length=255, unique=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-revoked_at"]

    def __str__(self) -> str:
        return self.jti


class TotpDevice(models.Model):
    """A user's authenticator (TOTP, RFC 6238). Pending until the first code confirms it;
    `last_used_step` is the time step of the last code accepted, so no code is accepted
    twice (RFC 6238, section 5.2)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    secret = models.CharField(max_length=64)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_step = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"TOTP of user {self.user_id}"

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """One single-use recovery code of a user, stored as a keyed hash (HMAC-SHA256 under
    SECRET_KEY), never as the code."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "code_hash"], name="accounts_recoverycode_user_hash_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"recovery code of user {self.user_id}"


class MfaPolicy(models.Model):
    """The tenant's second-factor policy: one row (pk 1) in the tenant's database. When
    `required`, a user without an authenticator logs in to enrolment only."""

    required = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "MFA policies"

    def __str__(self) -> str:
        return "two-factor required" if self.required else "two-factor optional"
