"""The accounts API: auth endpoints on the tenant's host, the users and API keys APIs for
tenant admins, and the platform staff login. Views validate, call a service or selector,
serialize."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from accounts import audit, mfa, selectors, services
from accounts.permissions import IsPlatformStaff, IsTenantAdmin
from accounts.serializers import (
    AUDIT_PAGE_SIZE,
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeyPageSerializer,
    ApiKeySerializer,
    AuditEventPageSerializer,
    AuditEventSerializer,
    AuditQuerySerializer,
    EmailVerifiedSerializer,
    EnrolmentTokenPairSerializer,
    LinkTokenSerializer,
    LoginSecondFactorSerializer,
    LoginSerializer,
    LogoutSerializer,
    MeSerializer,
    MessageSerializer,
    MfaChallengeSerializer,
    MfaCodeSerializer,
    MfaPolicySerializer,
    MfaPolicyUpdateSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetRequestSerializer,
    RecoveryCodesSerializer,
    RefreshSerializer,
    SignupResultSerializer,
    SignupSerializer,
    TokenPairSerializer,
    TotpEnrolmentSerializer,
    UserCreateSerializer,
    UserPageSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from config import pagination
from config.api import NOT_FOUND, PAGE_PARAMETERS
from config.network import client_ip
from config.openapi import documented_error
from tenants.api import ApiView
from tenants.context import get_current_tenant


class PublicView(ApiView):
    authentication_classes = []
    permission_classes = [AllowAny]


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _validated_query(serializer_class, request) -> dict:
    return _validated(serializer_class, request.query_params)


# A password login answers a token pair, a challenge for a second factor, or (a tenant
# that requires 2FA, a user without it) an enrolment-only pair.
LOGIN_RESULT = PolymorphicProxySerializer(
    component_name="LoginResult",
    serializers=[TokenPairSerializer, MfaChallengeSerializer, EnrolmentTokenPairSerializer],
    resource_type_field_name=None,
)


# --- auth (tenant host) -------------------------------------------------------------------
class SignupView(PublicView):
    @extend_schema(
        operation_id="auth_signup",
        tags=["auth"],
        auth=[],
        summary="Create a user of the host's tenant (the first one is an admin)",
        request=SignupSerializer,
        responses={201: SignupResultSerializer},
    )
    def post(self, request):
        data = _validated(SignupSerializer, request.data)
        user = services.user_register(**data, signed_up=True)
        return Response(SignupResultSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    @extend_schema(
        operation_id="auth_login",
        tags=["auth"],
        auth=[],
        summary="Log in to the host's tenant",
        request=LoginSerializer,
        responses={
            200: LOGIN_RESULT,
            401: documented_error(
                "`Invalid credentials` (unknown user, wrong password, inactive)."
            ),
        },
    )
    def post(self, request):
        data = _validated(LoginSerializer, request.data)
        tokens = services.login(**data, tenant=get_current_tenant(), ip=client_ip(request))
        return Response(tokens)


class TenantRealm:
    """Tokens of the host's tenant. The platform views below are the same views with
    `PlatformRealm` first: platform staff tokens, whatever the host."""

    def token_tenant(self):
        return get_current_tenant()


class PlatformRealm:
    def token_tenant(self):
        return None


class RefreshView(TenantRealm, PublicView):
    @extend_schema(
        operation_id="auth_refresh",
        tags=["auth"],
        auth=[],
        summary="Rotate a refresh token (the old one is blacklisted)",
        request=RefreshSerializer,
        responses={
            200: TokenPairSerializer,
            401: documented_error("`Invalid token`: revoked, rotated away, expired or malformed."),
        },
    )
    def post(self, request):
        data = _validated(RefreshSerializer, request.data)
        tokens = services.tokens_refresh(raw=data["refresh"], tenant=self.token_tenant())
        return Response(tokens)


class LogoutView(TenantRealm, ApiView):
    @extend_schema(
        operation_id="auth_logout",
        tags=["auth"],
        summary="Revoke the access token in use and, when given, the refresh token",
        request=LogoutSerializer,
        responses={204: None},
    )
    def post(self, request):
        data = _validated(LogoutSerializer, request.data or {})
        services.logout(
            user=request.user,
            access_token=request.auth,
            refresh_raw=data.get("refresh") or None,
            tenant=self.token_tenant(),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_me",
        tags=["auth"],
        summary="The authenticated user",
        responses={200: MeSerializer},
    )
    def get(self, request):
        return Response(MeSerializer(request.user).data)


class PasswordChangeView(TenantRealm, ApiView):
    @extend_schema(
        operation_id="auth_password_change",
        tags=["auth"],
        summary="Change the password; every earlier token stops working",
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        data = _validated(PasswordChangeSerializer, request.data)
        tokens = services.password_change(
            user=request.user, **data, tenant=self.token_tenant(), ip=client_ip(request)
        )
        return Response(tokens)


# --- password reset, e-mail verification (tenant host) ------------------------------------
RESET_LINK_SENT = "If an account of this tenant has that address, a reset link was sent to it."
VERIFICATION_LINK_SENT = "A verification link was sent to the account's address."
ALREADY_VERIFIED = "The account's address is verified already."
PASSWORD_RESET_DONE = "Password reset; every earlier token of the account stops working."  # noqa: S105
INVALID_LINK = documented_error(
    "`Invalid token`: a malformed, expired or used link, or another tenant's."
)


class PasswordResetView(PublicView):
    @extend_schema(
        operation_id="auth_password_reset",
        tags=["auth"],
        auth=[],
        summary="E-mail a password reset link (the same answer whether the address exists)",
        request=PasswordResetRequestSerializer,
        responses={202: MessageSerializer},
    )
    def post(self, request):
        data = _validated(PasswordResetRequestSerializer, request.data)
        services.password_reset_request(
            email=data["email"], tenant=get_current_tenant(), ip=client_ip(request)
        )
        return Response({"message": RESET_LINK_SENT}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(PublicView):
    @extend_schema(
        operation_id="auth_password_reset_confirm",
        tags=["auth"],
        auth=[],
        summary="Set a new password with a reset link's token; every earlier token stops",
        request=PasswordResetConfirmSerializer,
        responses={200: MessageSerializer, 401: INVALID_LINK},
    )
    def post(self, request):
        data = _validated(PasswordResetConfirmSerializer, request.data)
        services.password_reset_confirm(**data, tenant=get_current_tenant())
        return Response({"message": PASSWORD_RESET_DONE})


class VerifyEmailView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_verify_email",
        tags=["auth"],
        summary="E-mail a link that verifies the account's address (nothing when verified)",
        request=None,
        responses={202: MessageSerializer},
    )
    def post(self, request):
        sent = services.email_verification_request(
            user=request.user, tenant=get_current_tenant(), ip=client_ip(request)
        )
        message = VERIFICATION_LINK_SENT if sent else ALREADY_VERIFIED
        return Response({"message": message}, status=status.HTTP_202_ACCEPTED)


class VerifyEmailConfirmView(PublicView):
    @extend_schema(
        operation_id="auth_verify_email_confirm",
        tags=["auth"],
        auth=[],
        summary="Verify the address a verification link was sent to",
        request=LinkTokenSerializer,
        responses={200: EmailVerifiedSerializer, 401: INVALID_LINK},
    )
    def post(self, request):
        data = _validated(LinkTokenSerializer, request.data)
        user = services.email_verification_confirm(**data, tenant=get_current_tenant())
        return Response(EmailVerifiedSerializer(user).data)


# --- users (tenant admins) ----------------------------------------------------------------
class UserListView(ApiView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(
        operation_id="users_list",
        tags=["users"],
        summary="List the tenant's users",
        parameters=PAGE_PARAMETERS,
        responses={200: UserPageSerializer, 404: NOT_FOUND},
    )
    def get(self, request):
        return self.paginated(selectors.user_list(), UserSerializer)

    @extend_schema(
        operation_id="users_create",
        tags=["users"],
        summary="Create a user",
        request=UserCreateSerializer,
        responses={201: UserSerializer},
    )
    def post(self, request):
        data = _validated(UserCreateSerializer, request.data)
        user = services.user_register(**data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


LAST_ADMIN_CONFLICT = documented_error("`A tenant must keep at least one admin`.")


class UserDetailView(ApiView):
    permission_classes = [IsTenantAdmin]

    def _user(self, pk: int):
        user = selectors.user_get(user_id=pk)
        if user is None:
            raise NotFound()
        return user

    @extend_schema(
        operation_id="users_retrieve",
        tags=["users"],
        summary="One user",
        responses={200: UserSerializer, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        return Response(UserSerializer(self._user(pk)).data)

    @extend_schema(
        operation_id="users_update",
        tags=["users"],
        summary="Change a user's role or active flag",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, 404: NOT_FOUND, 409: LAST_ADMIN_CONFLICT},
    )
    def patch(self, request, pk: int):
        user = self._user(pk)
        data = _validated(UserUpdateSerializer, request.data)
        user = services.user_update(user=user, **data)
        return Response(UserSerializer(user).data)

    @extend_schema(
        operation_id="users_deactivate",
        tags=["users"],
        summary="Deactivate a user (the row stays, inactive)",
        responses={204: None, 404: NOT_FOUND, 409: LAST_ADMIN_CONFLICT},
    )
    def delete(self, request, pk: int):
        services.user_deactivate(user=self._user(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- API keys (tenant admins) -------------------------------------------------------------
class ApiKeyListView(ApiView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(
        operation_id="api_keys_list",
        tags=["api-keys"],
        summary="List the tenant's API keys (prefixes only, never a secret)",
        parameters=PAGE_PARAMETERS,
        responses={200: ApiKeyPageSerializer, 404: NOT_FOUND},
    )
    def get(self, request):
        return self.paginated(selectors.api_key_list(), ApiKeySerializer)

    @extend_schema(
        operation_id="api_keys_create",
        tags=["api-keys"],
        summary="Create an API key; the key is in this answer only",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer},
    )
    def post(self, request):
        data = _validated(ApiKeyCreateSerializer, request.data)
        api_key, key = services.api_key_create(
            **data, created_by=request.user, tenant=get_current_tenant()
        )
        body = ApiKeyCreatedSerializer(api_key, context={"key": key}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(ApiView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(
        operation_id="api_keys_revoke",
        tags=["api-keys"],
        summary="Revoke an API key (refused from the next request on)",
        responses={204: None, 404: documented_error("`Not found`: no such key in this tenant.")},
    )
    def delete(self, request, pk: int):
        api_key = selectors.api_key_get(key_id=pk)
        if api_key is None:
            raise NotFound()
        services.api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit trail (tenant admins) ---------------------------------------------------------
class AuditEventListView(ApiView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(
        operation_id="audit_list",
        tags=["audit"],
        summary="The tenant's security events, newest first, one cursor page at a time",
        parameters=[AuditQuerySerializer],
        responses={200: AuditEventPageSerializer},
    )
    def get(self, request):
        params = _validated_query(AuditQuerySerializer, request)
        page = pagination.paginate(
            audit.audit_event_list(
                event=params.get("event"), user=params.get("user"), since=params.get("since")
            ),
            ordering=audit.AUDIT_ORDERING,
            page_size=params.get("page_size", AUDIT_PAGE_SIZE),
            cursor=params.get("cursor") or None,
        )
        return Response(
            pagination.page_body(request, page, AuditEventSerializer(page.items, many=True).data)
        )


# --- platform -----------------------------------------------------------------------------
class PlatformLoginView(PublicView):
    @extend_schema(
        operation_id="platform_login",
        tags=["platform"],
        auth=[],
        summary="Log in as platform staff (a staff user of the main database)",
        request=LoginSerializer,
        responses={
            200: LOGIN_RESULT,
            401: documented_error(
                "`Invalid credentials` (unknown user, wrong password, not staff)."
            ),
        },
    )
    def post(self, request):
        data = _validated(LoginSerializer, request.data)
        tokens = services.login(**data, tenant=None, ip=client_ip(request))
        return Response(tokens)


class PlatformRefreshView(PlatformRealm, RefreshView):
    @extend_schema(
        operation_id="platform_refresh",
        tags=["platform"],
        auth=[],
        summary="Rotate a platform refresh token (the old one is refused from now on)",
        request=RefreshSerializer,
        responses={
            200: TokenPairSerializer,
            401: documented_error("`Invalid token`: revoked, rotated away, expired or malformed."),
            403: documented_error("`Tenant access denied`: a tenant's refresh token."),
        },
    )
    def post(self, request):
        return super().post(request)


class PlatformLogoutView(PlatformRealm, LogoutView):
    permission_classes = [IsPlatformStaff]

    @extend_schema(
        operation_id="platform_logout",
        tags=["platform"],
        summary="Revoke the platform access token in use and its refresh token",
        request=LogoutSerializer,
        responses={204: None},
    )
    def post(self, request):
        return super().post(request)


class PlatformPasswordChangeView(PlatformRealm, PasswordChangeView):
    permission_classes = [IsPlatformStaff]

    @extend_schema(
        operation_id="platform_password_change",
        tags=["platform"],
        summary="Change a platform staff password; every earlier token stops working",
        request=PasswordChangeSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        return super().post(request)


# --- second factor ------------------------------------------------------------------------
class BodyOnDeleteSchema(AutoSchema):
    """Documents the body of a DELETE (drf-spectacular documents bodies of POST, PUT and
    PATCH only): removing the authenticator takes a code."""

    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        self.method = "POST"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"


CODE_REFUSED = documented_error("`code`: `The code is not valid.` (counted like a failed login).")
TOTP_CONFLICT = documented_error(
    "`Two-factor authentication is already enabled`, `No two-factor enrolment to confirm` or "
    "`Two-factor authentication is not enabled`."
)


class TotpView(TenantRealm, ApiView):
    """The caller's authenticator: enrol (a new secret each time until confirmed), remove."""

    accepts_enrolment_tokens = True  # accounts.authentication: the enrolment-only tokens
    permission_classes = [IsAuthenticated]
    schema = BodyOnDeleteSchema()

    @extend_schema(
        operation_id="auth_mfa_totp_enrol",
        tags=["auth"],
        summary="Start two-factor enrolment: a new TOTP secret as an otpauth URI and a QR code",
        request=None,
        responses={200: TotpEnrolmentSerializer, 409: TOTP_CONFLICT},
    )
    def post(self, request):
        return Response(mfa.totp_enrol(user=request.user, tenant=self.token_tenant()))

    @extend_schema(
        operation_id="auth_mfa_totp_remove",
        tags=["auth"],
        summary="Remove the authenticator and the recovery codes (takes a current code)",
        request=MfaCodeSerializer,
        responses={204: None, 400: CODE_REFUSED, 409: TOTP_CONFLICT},
    )
    def delete(self, request):
        data = _validated(MfaCodeSerializer, request.data)
        mfa.totp_remove(
            user=request.user, code=data["code"], tenant=self.token_tenant(), ip=client_ip(request)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TotpConfirmView(TenantRealm, ApiView):
    accepts_enrolment_tokens = True  # accounts.authentication: the enrolment-only tokens
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_mfa_totp_confirm",
        tags=["auth"],
        summary="Confirm enrolment with a first code; answers ten recovery codes, shown once",
        request=MfaCodeSerializer,
        responses={200: RecoveryCodesSerializer, 400: CODE_REFUSED, 409: TOTP_CONFLICT},
    )
    def post(self, request):
        data = _validated(MfaCodeSerializer, request.data)
        codes = mfa.totp_confirm(
            user=request.user, code=data["code"], tenant=self.token_tenant(), ip=client_ip(request)
        )
        return Response({"recovery_codes": codes})


class LoginSecondFactorView(TenantRealm, PublicView):
    @extend_schema(
        operation_id="auth_login_mfa",
        tags=["auth"],
        auth=[],
        summary="Finish a two-factor login: the mfa_token of the password step and a code",
        request=LoginSecondFactorSerializer,
        responses={
            200: TokenPairSerializer,
            401: documented_error(
                "`Invalid credentials` (wrong or reused code); `Invalid token` (mfa_token "
                "forged, expired or used)."
            ),
            403: documented_error("`Tenant access denied`: another tenant's mfa_token."),
        },
    )
    def post(self, request):
        data = _validated(LoginSecondFactorSerializer, request.data)
        tokens = mfa.login_complete(**data, tenant=self.token_tenant(), ip=client_ip(request))
        return Response(tokens)


class MfaPolicyView(ApiView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(
        operation_id="auth_mfa_policy_retrieve",
        tags=["auth"],
        summary="Whether the tenant requires two-factor login (tenant admins)",
        responses={200: MfaPolicySerializer},
    )
    def get(self, request):
        return Response(MfaPolicySerializer(mfa.policy_get()).data)

    @extend_schema(
        operation_id="auth_mfa_policy_update",
        tags=["auth"],
        summary="Require two-factor login of the tenant's users, or stop requiring it",
        request=MfaPolicyUpdateSerializer,
        responses={200: MfaPolicySerializer},
    )
    def patch(self, request):
        data = _validated(MfaPolicyUpdateSerializer, request.data)
        return Response(MfaPolicySerializer(mfa.policy_update(**data)).data)


class UserMfaView(ApiView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(
        operation_id="users_mfa_reset",
        tags=["users"],
        summary="Remove a user's authenticator and recovery codes (a lost device)",
        responses={204: None, 404: NOT_FOUND, 409: TOTP_CONFLICT},
    )
    def delete(self, request, pk: int):
        user = selectors.user_get(user_id=pk)
        if user is None:
            raise NotFound()
        mfa.totp_reset(user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PlatformTotpView(PlatformRealm, TotpView):
    permission_classes = [IsPlatformStaff]

    @extend_schema(
        operation_id="platform_mfa_totp_enrol",
        tags=["platform"],
        summary="Start two-factor enrolment of a platform staff account",
        request=None,
        responses={200: TotpEnrolmentSerializer, 409: TOTP_CONFLICT},
    )
    def post(self, request):
        return super().post(request)

    @extend_schema(
        operation_id="platform_mfa_totp_remove",
        tags=["platform"],
        summary="Remove a staff account's authenticator (takes a current code)",
        request=MfaCodeSerializer,
        responses={204: None, 400: CODE_REFUSED, 409: TOTP_CONFLICT},
    )
    def delete(self, request):
        return super().delete(request)


class PlatformTotpConfirmView(PlatformRealm, TotpConfirmView):
    permission_classes = [IsPlatformStaff]

    @extend_schema(
        operation_id="platform_mfa_totp_confirm",
        tags=["platform"],
        summary="Confirm a staff account's enrolment; answers ten recovery codes, shown once",
        request=MfaCodeSerializer,
        responses={200: RecoveryCodesSerializer, 400: CODE_REFUSED, 409: TOTP_CONFLICT},
    )
    def post(self, request):
        return super().post(request)


class PlatformLoginSecondFactorView(PlatformRealm, LoginSecondFactorView):
    @extend_schema(
        operation_id="platform_login_mfa",
        tags=["platform"],
        auth=[],
        summary="Finish a platform staff two-factor login",
        request=LoginSecondFactorSerializer,
        responses={
            200: TokenPairSerializer,
            401: documented_error(
                "`Invalid credentials` (wrong or reused code); `Invalid token` (mfa_token "
                "forged, expired or used)."
            ),
            403: documented_error("`Tenant access denied`: a tenant's mfa_token."),
        },
    )
    def post(self, request):
        return super().post(request)
