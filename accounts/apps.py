from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from accounts import checks, signing  # noqa: F401 (checks register themselves)
        from accounts.forms import AdminLoginForm

        signing.install()
        # The admin's login asks for the second factor of staff who enrolled one.
        admin.site.login_form = AdminLoginForm
