from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/signup", views.SignupView.as_view(), name="auth-signup"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path("auth/password", views.PasswordChangeView.as_view(), name="auth-password"),
    path("auth/password-reset", views.PasswordResetView.as_view(), name="auth-password-reset"),
    path(
        "auth/password-reset/confirm",
        views.PasswordResetConfirmView.as_view(),
        name="auth-password-reset-confirm",
    ),
    path("auth/verify-email", views.VerifyEmailView.as_view(), name="auth-verify-email"),
    path(
        "auth/verify-email/confirm",
        views.VerifyEmailConfirmView.as_view(),
        name="auth-verify-email-confirm",
    ),
    path("auth/login/mfa", views.LoginSecondFactorView.as_view(), name="auth-login-mfa"),
    path("auth/mfa/totp", views.TotpView.as_view(), name="auth-mfa-totp"),
    path("auth/mfa/totp/confirm", views.TotpConfirmView.as_view(), name="auth-mfa-totp-confirm"),
    path("auth/mfa/policy", views.MfaPolicyView.as_view(), name="auth-mfa-policy"),
    path("users", views.UserListView.as_view(), name="user-list"),
    path("users/<int:pk>", views.UserDetailView.as_view(), name="user-detail"),
    path("users/<int:pk>/mfa", views.UserMfaView.as_view(), name="user-mfa"),
    path("api-keys", views.ApiKeyListView.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("audit", views.AuditEventListView.as_view(), name="audit-list"),
    path("platform/auth/login", views.PlatformLoginView.as_view(), name="platform-login"),
    path("platform/auth/refresh", views.PlatformRefreshView.as_view(), name="platform-refresh"),
    path("platform/auth/logout", views.PlatformLogoutView.as_view(), name="platform-logout"),
    path(
        "platform/auth/password",
        views.PlatformPasswordChangeView.as_view(),
        name="platform-password",
    ),
    path(
        "platform/auth/login/mfa",
        views.PlatformLoginSecondFactorView.as_view(),
        name="platform-login-mfa",
    ),
    path("platform/auth/mfa/totp", views.PlatformTotpView.as_view(), name="platform-mfa-totp"),
    path(
        "platform/auth/mfa/totp/confirm",
        views.PlatformTotpConfirmView.as_view(),
        name="platform-mfa-totp-confirm",
    ),
]
