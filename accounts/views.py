"""The accounts API: auth endpoints on the tenant's host, the users API for tenant admins,
and the platform staff login. Views validate, call a service or selector, serialize."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.permissions import IsTenantAdmin
from accounts.serializers import (
    TENANT_FIELDS,
    LoginSerializer,
    LogoutSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    SignupResultSerializer,
    SignupSerializer,
    UserCreateSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from config.errors import TenantAccessDenied
from config.network import client_ip
from tenants.context import get_current_tenant


def check_tenant_fields(request) -> None:
    """A `tenant` / `tenant_id` in the query string or body must name the host's tenant
    (none on platform paths); otherwise 403 `Tenant access denied`."""
    tenant = get_current_tenant()
    accepted = {tenant.slug, str(tenant.pk)} if tenant is not None else set()
    values = [v for field in TENANT_FIELDS for v in request.query_params.getlist(field)]
    data = request.data
    if isinstance(data, dict):
        values += [data[field] for field in TENANT_FIELDS if field in data]
    for value in values:
        if tenant is None and value in (None, ""):
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TenantAccessDenied()
        if str(value).strip().lower() not in accepted:
            raise TenantAccessDenied()


class ApiView(APIView):
    """Checks the tenant fields before anything else, authentication included; a failed
    authentication is a 401 with a Bearer challenge on every endpoint."""

    def initial(self, request, *args, **kwargs):
        check_tenant_fields(request)
        super().initial(request, *args, **kwargs)

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'


class PublicView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- auth (tenant host) -------------------------------------------------------------------
class SignupView(PublicView):
    def post(self, request):
        data = _validated(SignupSerializer, request.data)
        user = services.user_register(**data)
        return Response(SignupResultSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    def post(self, request):
        data = _validated(LoginSerializer, request.data)
        tokens = services.login(**data, tenant=get_current_tenant(), ip=client_ip(request))
        return Response(tokens)


class RefreshView(PublicView):
    def post(self, request):
        data = _validated(RefreshSerializer, request.data)
        tokens = services.tokens_refresh(raw=data["refresh"], tenant=get_current_tenant())
        return Response(tokens)


class LogoutView(ApiView):
    def post(self, request):
        data = _validated(LogoutSerializer, request.data or {})
        services.logout(
            user=request.user,
            access_token=request.auth,
            refresh_raw=data.get("refresh") or None,
            tenant=get_current_tenant(),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ApiView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response(MeSerializer(request.user).data)


class PasswordChangeView(ApiView):
    def post(self, request):
        data = _validated(PasswordChangeSerializer, request.data)
        tokens = services.password_change(user=request.user, **data, tenant=get_current_tenant())
        return Response(tokens)


# --- users (tenant admins) ----------------------------------------------------------------
class UserListView(ApiView):
    permission_classes = [IsTenantAdmin]

    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.user_list(), request, view=self)
        return paginator.get_paginated_response(UserSerializer(page, many=True).data)

    def post(self, request):
        data = _validated(UserCreateSerializer, request.data)
        user = services.user_register(**data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailView(ApiView):
    permission_classes = [IsTenantAdmin]

    def _user(self, pk: int):
        user = selectors.user_get(user_id=pk)
        if user is None:
            raise NotFound()
        return user

    def get(self, request, pk: int):
        return Response(UserSerializer(self._user(pk)).data)

    def patch(self, request, pk: int):
        user = self._user(pk)
        data = _validated(UserUpdateSerializer, request.data)
        user = services.user_update(user=user, **data)
        return Response(UserSerializer(user).data)

    def delete(self, request, pk: int):
        services.user_deactivate(user=self._user(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- platform -----------------------------------------------------------------------------
class PlatformLoginView(PublicView):
    def post(self, request):
        data = _validated(LoginSerializer, request.data)
        tokens = services.login(**data, tenant=None, ip=client_ip(request))
        return Response(tokens)
