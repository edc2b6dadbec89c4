"""The Django admin's login form: the password check of `accounts.backends` plus the second
factor of staff who enrolled an authenticator (accounts.mfa)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate

from accounts.serializers import MFA_CODE_MAX_LENGTH


class AdminLoginForm(AdminAuthenticationForm):
    otp_code = forms.CharField(
        label="Two-factor code",
        required=False,
        max_length=MFA_CODE_MAX_LENGTH,
        strip=True,
        help_text="Only for accounts with an authenticator: its code, or a recovery code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def clean(self):
        """AuthenticationForm's clean, with the code handed to the backend."""
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            self.user_cache = authenticate(
                self.request,
                username=username,
                password=password,
                otp_code=self.cleaned_data.get("otp_code") or None,
            )
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
