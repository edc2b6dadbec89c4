from django.apps import AppConfig


class AddressbookConfig(AppConfig):
    name = "addressbook"
    verbose_name = "Address book"
