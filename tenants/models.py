from django.db import models

from tenants.db.aliases import DEFAULT_SERVER, alias_for
from tenants.validators import (
    validate_domain,
    validate_env_name,
    validate_server_name,
    validate_slug,
)


class DatabaseServer(models.Model):
    """A server that holds tenant databases. The row names the environment variables that
    hold its URLs; a URL, and so its password, is never stored in the database."""

    class Status(models.TextChoices):
        ACCEPTING = "accepting", "Accepting new tenants"
        DRAINING = "draining", "Draining (serves its tenants, takes no new one)"
        OFFLINE = "offline", "Offline (takes no new tenant)"

    name = models.CharField(max_length=32, unique=True, validators=[validate_server_name])
    url_env = models.CharField(
        max_length=100,
        validators=[validate_env_name],
        help_text="Environment variable holding the URL tenants connect through (it may be "
        "a pooler's).",
    )
    admin_url_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_env_name],
        help_text="Environment variable holding a direct URL for creating, cloning and "
        "dropping databases; blank: the URL above.",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACCEPTING, db_index=True
    )
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most tenants it may hold; blank: no limit."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tenant(models.Model):
    """A customer organisation; the row lives in the main database, its data in its own."""

    class Status(models.TextChoices):
        PROVISIONING = "provisioning", "Provisioning"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        FAILED = "failed", "Failed"
        DROPPED = "dropped", "Dropped"
        PURGED = "purged", "Purged (a tombstone: the slug is never reused)"

    # Its database is gone: nothing serves it, it holds no domain, its slug is never reused.
    GONE_STATUSES = (Status.DROPPED, Status.PURGED)

    slug = models.CharField(max_length=63, unique=True, validators=[validate_slug])
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PROVISIONING, db_index=True
    )
    database_name = models.CharField(max_length=255, blank=True)
    database_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="Only for a tenant placed on another database server. Credentials are "
        "never shown by the API.",
    )
    server = models.ForeignKey(
        DatabaseServer,
        related_name="tenants",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Where its database lives; empty only for a tenant with its own URL.",
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    dropped_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its database was dropped (the retention "
        "period before `purge_tenant` counts from here).",
    )
    moving = models.BooleanField(
        default=False,
        help_text="In a move's cut-over: its writes answer 503 'Tenant is being moved', "
        "its reads go on (`move_tenant`).",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def alias(self) -> str:
        """The `DATABASES` alias this tenant's queries are routed to."""
        return alias_for(self.slug, self.server_name)

    @property
    def server_name(self) -> str | None:
        """Its server's name; None for a tenant with its own database URL (and for one not
        placed yet, which is the default server's)."""
        if self.server_id is None:
            return None if self.database_url else DEFAULT_SERVER
        return self.server.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(models.Model):
    """A host name served as a tenant (`acme.example.com`); compared lower-case, no port."""

    domain = models.CharField(max_length=253, unique=True, validators=[validate_domain])
    tenant = models.ForeignKey(Tenant, related_name="domains", on_delete=models.CASCADE)
    is_primary = models.BooleanField(default=False)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs):
        self.domain = self.domain.strip().lower()
        super().save(*args, **kwargs)


class TenantArchive(models.Model):
    """A file the product wrote about one tenant: a backup (`backup_tenant`) or a portable
    export (`export_tenant`). The path is on the machine that wrote it; `purge_tenant`
    deletes every one still there."""

    class Kind(models.TextChoices):
        BACKUP = "backup", "Backup"
        EXPORT = "export", "Export"

    tenant = models.ForeignKey(Tenant, related_name="archives", on_delete=models.CASCADE)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(
        max_length=150, blank=True, help_text="The staff user, or empty for a command."
    )
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} of {self.tenant.slug} at {self.path}"


class TenantRestore(models.Model):
    """A restore of a tenant from a backup file (`restore_tenant`), under way or done: the
    database it restores into and, for a restore into an existing tenant, the previous
    database, kept aside read-only until `restore_tenant --finish` drops it. An interrupted
    restore is resumed (or rolled back) from here."""

    class State(models.TextChoices):
        RESTORING = "restoring", "Restoring (still served from its previous database)"
        SWITCHED = "switched", "Switched (the previous database is kept aside, read-only)"
        FINISHED = "finished", "Finished (the previous database is dropped)"
        ROLLED_BACK = "rolled_back", "Rolled back (the restored database is dropped)"

    tenant = models.ForeignKey(Tenant, related_name="restores", on_delete=models.CASCADE)
    source_slug = models.CharField(max_length=63, help_text="The slug the backup was made of.")
    archive_path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64, help_text="The backup's data, as its manifest says.")
    database_name = models.CharField(max_length=255, help_text="The database restored into.")
    previous_database_name = models.CharField(
        max_length=255,
        blank=True,
        help_text="The database kept aside; empty for a restore as a new tenant.",
    )
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.RESTORING, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(
        max_length=150, blank=True, help_text="The staff user, or empty for a command."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"restore of {self.tenant.slug} ({self.state})"


class TenantMove(models.Model):
    """One move of a tenant's database to another server (`tenants.lifecycle.move`): where
    from and where to, and how far it got, so that a move interrupted anywhere is resumed
    or rolled back from here. The tenant is served from the source until `state` is
    `switched`, from the target afterwards; the source is dropped at `finished`."""

    class State(models.TextChoices):
        COPYING = "copying", "Copying (served from the source)"
        CUTOVER = "cutover", "Cut-over (writes refused, reads from the source)"
        SWITCHED = "switched", "Switched (served from the target, source kept read-only)"
        FINISHED = "finished", "Finished (source dropped)"
        ROLLED_BACK = "rolled_back", "Rolled back (target dropped, served from the source)"

    # The states of a move not over yet: at most one per tenant.
    OPEN_STATES = (State.COPYING, State.CUTOVER, State.SWITCHED)

    tenant = models.ForeignKey(Tenant, related_name="moves", on_delete=models.CASCADE)
    source_server = models.ForeignKey(DatabaseServer, related_name="+", on_delete=models.PROTECT)
    source_database = models.CharField(max_length=255)
    target_server = models.ForeignKey(DatabaseServer, related_name="+", on_delete=models.PROTECT)
    target_database = models.CharField(max_length=255)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.COPYING, db_index=True
    )
    drop_source = models.BooleanField(
        default=False, help_text="Drop the source as soon as the placement flips."
    )
    details = models.JSONField(
        default=dict, blank=True, help_text="Timings, rows and checksums per table."
    )
    last_error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    cutover_at = models.DateTimeField(null=True, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(
        max_length=150, blank=True, help_text="The staff user, or empty for a command."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(state__in=["copying", "cutover", "switched"]),
                name="one_open_move_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"move of {self.tenant.slug} to {self.target_server.name} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES
