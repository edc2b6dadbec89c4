from django.core.exceptions import ValidationError

MAX_PASSWORD_LENGTH = 128


class PasswordStrengthValidator:
    """At least one upper-case letter, one lower-case letter and one digit; at most 128
    characters (Django's MinimumLengthValidator sets the lower bound of 8)."""

    def validate(self, password: str, user=None) -> None:
        errors = []
        if len(password) > MAX_PASSWORD_LENGTH:
            errors.append(
                ValidationError(
                    f"This password is too long. It must contain at most "
                    f"{MAX_PASSWORD_LENGTH} characters.",
                    code="password_too_long",
                )
            )
        if not any(c.isupper() for c in password):
            errors.append(
                ValidationError(
                    "This password must contain an upper-case letter.", code="password_no_upper"
                )
            )
        if not any(c.islower() for c in password):
            errors.append(
                ValidationError(
                    "This password must contain a lower-case letter.", code="password_no_lower"
                )
            )
        if not any(c.isdigit() for c in password):
            errors.append(
                ValidationError("This password must contain a digit.", code="password_no_digit")
            )
        if errors:
            raise ValidationError(errors)

    def get_help_text(self) -> str:
        return (
            "Your password must contain an upper-case letter, a lower-case letter and a "
            f"digit, and at most {MAX_PASSWORD_LENGTH} characters."
        )
