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
