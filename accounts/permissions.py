from rest_framework.permissions import BasePermission

from tenants.context import get_current_tenant


class IsTenantAdmin(BasePermission):
    """An authenticated admin of the request's tenant."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user is not None
            and user.is_authenticated
            and get_current_tenant() is not None
            and user.is_tenant_admin
        )


class IsPlatformStaff(BasePermission):
    """An authenticated staff user of the main database (a platform token)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user is not None
            and user.is_authenticated
            and get_current_tenant() is None
            and user.is_staff
        )
