from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from accounts.forms import AdminLoginForm

        # The admin's login asks for the second factor of staff who enrolled one.
        admin.site.login_form = AdminLoginForm
