from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


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
    # Proven by a link sent to `email` (accounts.links); any change of the address clears
    # it (save() below), since the proof was for the old one.
    email_verified = models.BooleanField(default=False)

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    @classmethod
    def from_db(cls, db, field_names, values):
        user = super().from_db(db, field_names, values)
        user._stored_email = user.__dict__.get("email")
        return user

    def save(self, *args, **kwargs):
        """Saving a new address clears `email_verified`, wherever the change comes from
        (the API, the admin, a command); a queryset's update() bypasses this."""
        stored = getattr(self, "_stored_email", None)
        update_fields = kwargs.get("update_fields")
        saves_email = update_fields is None or "email" in update_fields
        if saves_email and stored is not None and self.email != stored and self.email_verified:
            self.email_verified = False
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "email_verified"}
        super().save(*args, **kwargs)
        if saves_email:
            self._stored_email = self.email

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


class ApiKey(models.Model):
    """A machine client's key to one tenant (accounts.api_keys has its format). Only the prefix
    and a digest of the secret are stored; the key itself is shown once, at creation."""

    class Scope(models.TextChoices):
        CONTACTS_READ = "contacts:read", "Read the address book"
        CONTACTS_WRITE = "contacts:write", "Read and change the address book"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=96, unique=True)
    secret_digest = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.prefix

    def grants(self, scope: str) -> bool:
        """Whether the key's scopes allow `scope`; writing the address book includes
        reading it."""
        if scope in self.scopes:
            return True
        return scope == self.Scope.CONTACTS_READ and self.Scope.CONTACTS_WRITE in self.scopes


class AuditEvent(models.Model):
    """A security event (accounts.audit has the vocabulary and the one way to write one).

    A tenant's events live in that tenant's database, the platform's (tenants created,
    suspended, dropped; staff logins) in the main database. Actor and target are copied,
    not foreign keys: the trail keeps the names they had at the time and outlives them."""

    event = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    target_type = models.CharField(max_length=16, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at", "id"], name="accounts_audit_time"),
            models.Index(fields=["event", "created_at"], name="accounts_audit_event_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.actor_username or '-'} {self.created_at:%Y-%m-%d %H:%M:%S}"


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
