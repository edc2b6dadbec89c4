from dataclasses import dataclass

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiKey
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


@dataclass(frozen=True)
class ApiKeyScopes:
    """The scopes an API key needs on a view that admits keys (its `api_key_scopes`):
    `read` for GET, HEAD and OPTIONS, `write` for any other method. A view without
    `api_key_scopes` refuses every key (accounts.authentication.ApiKeyAuthentication)."""

    read: str
    write: str

    def for_method(self, method: str) -> str:
        return self.read if method in SAFE_METHODS else self.write


CONTACT_SCOPES = ApiKeyScopes(read=ApiKey.Scope.CONTACTS_READ, write=ApiKey.Scope.CONTACTS_WRITE)
