"""Writes on users: creation, and (with the accounts API) roles, passwords and revocation."""

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import router, transaction

from accounts.models import User


def validate_new_user(*, username: str, email: str, password: str) -> None:
    """Raise ValidationError (a dict by field) unless a user could be created from these."""
    errors: dict[str, list] = {}
    probe = User(username=username, email=email)
    try:
        User._meta.get_field("username").run_validators(username)
        if not username:
            raise ValidationError("This field may not be blank.")
    except ValidationError as exc:
        errors["username"] = exc.messages
    try:
        EmailValidator()(email)
    except ValidationError as exc:
        errors["email"] = exc.messages
    try:
        password_validation.validate_password(password, probe)
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)


def user_create(
    *,
    username: str,
    email: str,
    password: str,
    role: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    """Create a user in the active database (the current tenant's, or the main one).

    The first user of a database is an admin whatever `role` says.
    """
    validate_new_user(username=username, email=email, password=password)
    with transaction.atomic(using=router.db_for_write(User)):
        if not User.objects.exists():
            role = User.Role.ADMIN
        user = User(
            username=username,
            email=email.strip(),
            role=role or User.Role.MEMBER,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
        user.set_password(password)
        user.save()
    return user
