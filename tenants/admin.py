"""Tenant onboarding in the Django admin: saving a new tenant provisions it at once.

The platform admin works on the main database only, so it lists only what it can open:
models that live only in tenant databases are taken off the platform admin site.
"""

from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from tenants import services
from tenants.db.aliases import DEFAULT_SERVER, database_name_for
from tenants.lifecycle import archive_path
from tenants.lifecycle.backup import backup_tenant
from tenants.lifecycle.export import export_tenant
from tenants.lifecycle.move import move_finish, move_tenant
from tenants.models import DatabaseServer, Domain, Tenant, TenantArchive
from tenants.routers import shared_labels, tenant_labels
from tenants.selectors import PLACED_STATUSES
from tenants.validators import normalize_host


def unregister_tenant_only_models(site: admin.AdminSite) -> list[str]:
    """Unregister from `site` every model that lives only in tenant databases (their
    changelists would raise NoTenantError without a tenant). Returns their labels."""
    tenant_only = tenant_labels() - shared_labels()
    for config in apps.get_app_configs():
        # Load the app's admin module now, so its registrations exist to be undone.
        if config.label in tenant_only and find_spec(f"{config.name}.admin") is not None:
            import_module(f"{config.name}.admin")
    removed = []
    for model in list(site._registry):
        if model._meta.app_label in tenant_only:
            site.unregister(model)
            removed.append(model._meta.label)
    return removed


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ["domain", "is_primary"]

    def clean_domain(self):
        return normalize_host(self.cleaned_data["domain"])


class DomainFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        for form in self.forms:
            host = getattr(form, "cleaned_data", {}).get("domain")
            if not host or form.cleaned_data.get("DELETE"):
                continue
            owner = services.other_tenant_of_host(host, self.instance.slug)
            if owner is not None:
                form.add_error("domain", f"'{host}' is already used by another tenant ({owner}).")


class DomainInline(admin.TabularInline):
    model = Domain
    form = DomainForm
    formset = DomainFormSet
    extra = 1
    fields = ["domain", "is_primary"]


class TenantAdminForm(forms.ModelForm):
    admin_username = forms.CharField(required=False, label="First admin: username")
    admin_email = forms.EmailField(required=False, label="First admin: e-mail")
    admin_password = forms.CharField(
        required=False,
        label="First admin: password",
        widget=forms.PasswordInput(render_value=False),
    )

    server = forms.ModelChoiceField(
        queryset=DatabaseServer.objects.filter(status=DatabaseServer.Status.ACCEPTING),
        required=False,
        empty_label="The accepting server with the most room",
        label="Database server",
    )

    class Meta:
        model = Tenant
        fields = ["slug", "name", "database_url"]

    placed: DatabaseServer | None = None

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if Tenant.objects.filter(slug=slug).exists():
            raise ValidationError(
                "A tenant with this slug exists (dropped and purged slugs are never reused)."
            )
        return slug

    def admin_spec(self) -> services.AdminSpec | None:
        data = self.cleaned_data
        values = [data.get("admin_username"), data.get("admin_email"), data.get("admin_password")]
        if not any(values):
            return None
        return services.AdminSpec(*(value or "" for value in values))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            database_url = data.get("database_url", "")
            server = data.get("server")
            if server is not None and database_url:
                raise ValidationError(
                    {"server": ["Choose a database server or give a database URL, not both."]}
                )
            if not database_url:
                self.placed = services.choose_server(server.name if server else "")
            services.validate_tenant_input(
                slug=data["slug"],
                name=data["name"],
                database_url=database_url,
                admin=self.admin_spec(),
                server=self.placed,
            )
        except ValidationError as exc:
            for field, field_messages in exc.message_dict.items():
                target = field.replace("admin.", "admin_")
                if target not in self.fields:
                    target = None
                for message in field_messages:
                    self.add_error(target, message)
        return data


class TenantArchiveInline(admin.TabularInline):
    """The backups and exports written of a tenant, each with its download link."""

    model = TenantArchive
    extra = 0
    can_delete = False
    fields = ["kind", "download", "size_bytes", "sha256", "created_at", "created_by", "deleted_at"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="File")
    def download(self, archive):
        name = Path(archive.path).name
        if archive.deleted_at is not None or not Path(archive.path).is_file():
            return name
        url = reverse("admin:tenants_tenant_archive", args=[archive.tenant_id, archive.pk])
        return format_html('<a href="{}">{}</a>', url, name)


class MoveForm(forms.Form):
    server = forms.ModelChoiceField(
        queryset=DatabaseServer.objects.filter(status=DatabaseServer.Status.ACCEPTING),
        to_field_name="name",
        help_text="An accepting server other than the tenant's.",
    )
    drop_source = forms.BooleanField(
        required=False, help_text="Drop the source database as soon as the move switches."
    )


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "status",
        "domain_list",
        "server",
        "database_name",
        "created_at",
    ]
    list_filter = ["status", "server"]
    search_fields = ["slug", "name", "domains__domain"]
    inlines = [DomainInline, TenantArchiveInline]
    actions = [
        "provision_selected",
        "migrate_selected",
        "suspend_selected",
        "activate_selected",
        "backup_selected",
        "export_selected",
        "move_selected",
        "finish_move_selected",
    ]

    def get_inlines(self, request, obj):
        # The onboarding form is a tenant and its domains; archives exist only afterwards.
        return [DomainInline] if obj is None else self.inlines

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TenantAdminForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return [
                "slug",
                "name",
                "server",
                "database_url",
                "admin_username",
                "admin_email",
                "admin_password",
            ]
        return [
            "slug",
            "name",
            "status",
            "server",
            "database_name",
            "last_error",
            "created_at",
            "updated_at",
            "provisioned_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "slug",
            "status",
            "server",
            "database_name",
            "last_error",
            "created_at",
            "updated_at",
            "provisioned_at",
        ]

    @admin.display(description="Domains")
    def domain_list(self, obj):
        return format_html_join(", ", "{}", ((d.domain,) for d in obj.domains.all()))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("server").prefetch_related("domains")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.status = Tenant.Status.PROVISIONING
            obj.server = None if obj.database_url else form.placed
            obj.database_name = database_name_for(obj.slug, obj.database_url, server=obj.server)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if change:
            return
        tenant = form.instance
        self._provision(request, tenant, admin_spec=form.admin_spec())

    def _provision(self, request, tenant, admin_spec=None) -> None:
        try:
            services.provision_tenant(
                slug=tenant.slug,
                name=tenant.name,
                domains=[d.domain for d in tenant.domains.all()],
                database_url=tenant.database_url,
                admin=admin_spec,
            )
        except (ValidationError, services.ProvisioningError) as exc:
            text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else exc.reason
            self.message_user(
                request,
                f"Provisioning of '{tenant.slug}' failed: {text}. "
                "Fix the cause and use the 'Provision' action to retry.",
                messages.ERROR,
            )
        else:
            self.message_user(
                request, f"Tenant '{tenant.slug}' is provisioned and active.", messages.SUCCESS
            )

    @admin.action(description="Provision (or retry provisioning)")
    def provision_selected(self, request, queryset):
        for tenant in queryset.exclude(status__in=[Tenant.Status.SUSPENDED, *Tenant.GONE_STATUSES]):
            self._provision(request, tenant)

    @admin.action(description="Re-run migrations")
    def migrate_selected(self, request, queryset):
        for tenant in queryset.filter(status=Tenant.Status.ACTIVE):
            try:
                applied = services.migrate_tenant(tenant)
            except Exception as exc:
                reason = services.mask_url_credentials(str(exc))
                self.message_user(
                    request,
                    f"Tenant {tenant.slug}: migration failed: {reason}",
                    messages.ERROR,
                )
            else:
                self.message_user(request, f"Tenant {tenant.slug}: {applied} migration(s) applied.")

    @admin.action(description="Suspend")
    def suspend_selected(self, request, queryset):
        for tenant in queryset.exclude(status__in=Tenant.GONE_STATUSES):
            services.tenant_suspend(tenant)
        self.message_user(request, "Selected tenants are suspended.")

    @admin.action(description="Activate (suspended tenants)")
    def activate_selected(self, request, queryset):
        for tenant in queryset.filter(status=Tenant.Status.SUSPENDED):
            services.tenant_activate(tenant)
        self.message_user(request, "Selected suspended tenants are active.")

    # --- lifecycle: each recorded in the platform audit trail with the staff user --------
    def _each(self, request, queryset, verb: str, run) -> None:
        """Run `run(tenant)` for each tenant; its message, or its error, per tenant."""
        for tenant in queryset:
            try:
                done = run(tenant)
            except ValidationError as exc:
                self.message_user(
                    request, f"{tenant.slug}: not {verb}: {'; '.join(exc.messages)}", messages.ERROR
                )
            except Exception as exc:
                reason = services.mask_url_credentials(str(exc))
                self.message_user(
                    request, f"{tenant.slug}: {verb} failed: {reason}", messages.ERROR
                )
            else:
                self.message_user(request, f"{tenant.slug}: {done}", messages.SUCCESS)

    @admin.action(description="Back up (a file with a manifest, kept on the server)")
    def backup_selected(self, request, queryset):
        def run(tenant):
            output = archive_path(tenant.slug, "backup", ".tar")
            archive = backup_tenant(tenant, output=output, actor=request.user)
            return f"backed up to {Path(archive.path).name} ({archive.size_bytes} bytes)."

        self._each(request, queryset, "backed up", run)

    @admin.action(description="Export data (portable archive, no secrets)")
    def export_selected(self, request, queryset):
        def run(tenant):
            output = archive_path(tenant.slug, "export", ".zip")
            archive = export_tenant(tenant, output=output, actor=request.user)
            return f"exported to {Path(archive.path).name} ({archive.size_bytes} bytes)."

        self._each(request, queryset, "exported", run)

    @admin.action(description="Move to another server…")
    def move_selected(self, request, queryset):
        form = MoveForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            target, drop = form.cleaned_data["server"], form.cleaned_data["drop_source"]

            def run(tenant):
                move = move_tenant(tenant, to=target, drop_source=drop, actor=request.user)
                kept = "" if move.state == "finished" else "; the source is kept until Finish move"
                return f"moved to {target.name} ({move.state}{kept})."

            self._each(request, queryset, "moved", run)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Move tenants to another server",
            "tenants": list(queryset.select_related("server")),
            "form": form,
        }
        return TemplateResponse(request, "admin/tenants/tenant/move.html", context)

    @admin.action(description="Finish move (drop the source database)")
    def finish_move_selected(self, request, queryset):
        def run(tenant):
            move = move_finish(tenant, actor=request.user)
            return f"move to {move.target_server.name} finished; the source is dropped."

        self._each(request, queryset, "finished", run)

    def get_urls(self):
        download = path(
            "<int:tenant_id>/archives/<int:archive_id>/",
            self.admin_site.admin_view(self.archive_view),
            name="tenants_tenant_archive",
        )
        return [download, *super().get_urls()]

    def archive_view(self, request, tenant_id: int, archive_id: int):
        if not self.has_view_permission(request):
            raise Http404
        archive = TenantArchive.objects.filter(
            tenant_id=tenant_id, pk=archive_id, deleted_at=None
        ).first()
        if archive is None or not Path(archive.path).is_file():
            raise Http404
        return FileResponse(
            Path(archive.path).open("rb"),
            as_attachment=True,
            filename=Path(archive.path).name,
            content_type="application/octet-stream",
        )

    def has_delete_permission(self, request, obj=None):
        # A deleted row would free the slug while its database lives on, and the next
        # tenant of that slug would inherit it: tenants are suspended here, and only
        # `manage.py drop_tenant` drops one (its row stays, as `dropped`).
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "subtitle": "Tenants are never deleted here: use the Suspend action; "
            "manage.py drop_tenant drops a suspended tenant's database.",
        }
        return super().change_view(request, object_id, form_url, extra_context)


class DatabaseServerAddForm(forms.ModelForm):
    class Meta:
        model = DatabaseServer
        fields = ["name", "url_env", "admin_url_env", "status", "capacity"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            services.validate_server_input(
                name=data["name"],
                url_env=data["url_env"],
                admin_url_env=data.get("admin_url_env", ""),
                status=data["status"],
                capacity=data.get("capacity"),
            )
        except ValidationError as exc:
            for field, field_messages in exc.message_dict.items():
                for message in field_messages:
                    self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(DatabaseServer)
class DatabaseServerAdmin(admin.ModelAdmin):
    """Servers show the names of the variables holding their URLs, never a URL."""

    list_display = ["name", "status", "capacity", "tenant_count", "url_env", "admin_url_env"]
    list_filter = ["status"]
    actions = ["mark_accepting", "mark_draining", "mark_offline"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DatabaseServerAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        # A tenant's alias is built from its server's name; the variables are the
        # deployment's, changed there.
        return [] if obj is None else ["name", "url_env", "admin_url_env", "created_at"]

    def get_queryset(self, request):
        placed = Count("tenants", filter=Q(tenants__status__in=PLACED_STATUSES))
        return super().get_queryset(request).annotate(tenant_count=placed)

    @admin.display(description="Tenants", ordering="tenant_count")
    def tenant_count(self, obj):
        return obj.tenant_count

    def has_delete_permission(self, request, obj=None):
        # A server that ever held a tenant keeps its row (its tenants' rows point at it).
        return obj is not None and obj.name != DEFAULT_SERVER and not obj.tenants.exists()

    def _set_status(self, request, queryset, status: str) -> None:
        for server in queryset:
            services.database_server_set_status(server, status)
        self.message_user(request, f"Selected servers are {status}.")

    @admin.action(description="Accepting new tenants")
    def mark_accepting(self, request, queryset):
        self._set_status(request, queryset, DatabaseServer.Status.ACCEPTING)

    @admin.action(description="Draining (no new tenants)")
    def mark_draining(self, request, queryset):
        self._set_status(request, queryset, DatabaseServer.Status.DRAINING)

    @admin.action(description="Offline (no new tenants)")
    def mark_offline(self, request, queryset):
        self._set_status(request, queryset, DatabaseServer.Status.OFFLINE)


unregister_tenant_only_models(admin.site)
