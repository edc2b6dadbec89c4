"""Writes to the address book. Each logs one line naming the tenant, the acting user and
the contact id, never the contact's personal data."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, router, transaction
from django.http import Http404

from addressbook.models import Contact
from tenants.context import current_tenant_slug

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger("addressbook.services")

# What a field becomes when a full update (PUT) leaves it out.
_DEFAULTS = {
    "email": "",
    "phone": "",
    "address": "",
    "gender": Contact.Gender.UNSPECIFIED,
    "age": None,
    "notes": "",
}


def contact_create(*, data: Mapping[str, Any], user: User | None = None) -> Contact:
    """A new contact from validated `data` (ContactSerializer)."""
    contact = Contact(**{**_DEFAULTS, **data})
    contact.save(using=router.db_for_write(Contact))
    logger.info(
        "Contact %s created (tenant=%s user=%s)",
        contact.pk,
        current_tenant_slug(),
        getattr(user, "pk", None),
    )
    return contact


def contact_update(
    *, contact: Contact, data: Mapping[str, Any], partial: bool, user: User | None = None
) -> Contact:
    """`contact` changed by validated `data`; a full update (`partial=False`) resets the
    optional fields it leaves out to their defaults."""
    changes = dict(data) if partial else {**_DEFAULTS, **data}
    for field, value in changes.items():
        setattr(contact, field, value)
    using = router.db_for_write(Contact, instance=contact)
    try:
        with transaction.atomic(using=using):
            contact.save(using=using, update_fields=[*changes, "updated_at"])
    except DatabaseError:
        # Deleted by another request since it was read: "did not affect any rows".
        if not Contact.objects.using(using).filter(pk=contact.pk).exists():
            raise Http404 from None
        raise
    logger.info(
        "Contact %s updated (tenant=%s user=%s)",
        contact.pk,
        current_tenant_slug(),
        getattr(user, "pk", None),
    )
    return contact


def contact_delete(*, contact: Contact, user: User | None = None) -> None:
    contact_id = contact.pk
    using = router.db_for_write(Contact, instance=contact)
    with transaction.atomic(using=using):
        contact.delete(using=using)
    logger.info(
        "Contact %s deleted (tenant=%s user=%s)",
        contact_id,
        current_tenant_slug(),
        getattr(user, "pk", None),
    )
