"""The address book API (API.md, "Address book"): validate, call a selector or a service,
serialize."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.permissions import CONTACT_SCOPES
from addressbook import exports, selectors, services
from addressbook.serializers import (
    DEFAULT_PAGE_SIZE,
    ContactCursorPageSerializer,
    ContactExportSerializer,
    ContactPageSerializer,
    ContactResultSerializer,
    ContactSerializer,
    ContactStatsSerializer,
    contact_rows,
)
from config import pagination
from config.openapi import documented_error
from tenants.api import ApiView
from tenants.context import get_current_tenant


def _query(serializer_class, request):
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


async def _in_sync_thread(chunks):
    """`chunks` pulled one at a time in Django's sync thread: under ASGI a synchronous
    iterator would otherwise be read to the end into memory before the first byte goes out."""
    done = object()
    step = sync_to_async(next, thread_sensitive=True)
    while (chunk := await step(chunks, done)) is not done:
        yield chunk


CONTACT_NOT_FOUND = documented_error("`Not found`: no such contact in this tenant.")


class ContactListCreateView(ApiView):
    api_key_scopes = CONTACT_SCOPES

    @extend_schema(
        operation_id="contacts_list",
        tags=["address-book"],
        summary="List contacts, filtered and ordered, one cursor page at a time",
        parameters=[ContactPageSerializer],
        responses={200: ContactCursorPageSerializer},
    )
    def get(self, request):
        params = _query(ContactPageSerializer, request)
        page = pagination.paginate(
            selectors.contact_page_values(filters=params),
            ordering=selectors.contact_ordering(params),
            page_size=params.get("page_size", DEFAULT_PAGE_SIZE),
            cursor=params.get("cursor"),
        )
        return Response(pagination.page_body(request, page, contact_rows(page.items)))

    @extend_schema(
        operation_id="contacts_create",
        tags=["address-book"],
        summary="Create a contact",
        request=ContactSerializer,
        responses={201: ContactResultSerializer},
    )
    def post(self, request):
        serializer = ContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact = services.contact_create(data=serializer.validated_data, user=request.user)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)


class ContactDetailView(ApiView):
    api_key_scopes = CONTACT_SCOPES

    @extend_schema(
        operation_id="contacts_retrieve",
        tags=["address-book"],
        summary="One contact",
        responses={200: ContactResultSerializer, 404: CONTACT_NOT_FOUND},
    )
    def get(self, request, pk: int):
        return Response(ContactSerializer(selectors.contact_get(contact_id=pk)).data)

    @extend_schema(
        operation_id="contacts_replace",
        tags=["address-book"],
        summary="Replace a contact",
        request=ContactSerializer,
        responses={200: ContactResultSerializer, 404: CONTACT_NOT_FOUND},
    )
    def put(self, request, pk: int):
        return self._update(request, pk, partial=False)

    @extend_schema(
        operation_id="contacts_update",
        tags=["address-book"],
        summary="Change some fields of a contact",
        request=ContactSerializer(partial=True),
        responses={200: ContactResultSerializer, 404: CONTACT_NOT_FOUND},
    )
    def patch(self, request, pk: int):
        return self._update(request, pk, partial=True)

    @extend_schema(
        operation_id="contacts_delete",
        tags=["address-book"],
        summary="Delete a contact",
        responses={204: None, 404: CONTACT_NOT_FOUND},
    )
    def delete(self, request, pk: int):
        contact = selectors.contact_get(contact_id=pk)
        services.contact_delete(contact=contact, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, pk: int, *, partial: bool):
        contact = selectors.contact_get(contact_id=pk)
        serializer = ContactSerializer(contact, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        contact = services.contact_update(
            contact=contact, data=serializer.validated_data, partial=partial, user=request.user
        )
        return Response(ContactSerializer(contact).data)


class ContactExportView(ApiView):
    api_key_scopes = CONTACT_SCOPES

    @extend_schema(
        operation_id="contacts_export",
        tags=["address-book"],
        summary="Download every contact the filters select, as CSV or JSON",
        description="Streamed as an attachment named `contacts-<tenant>-<YYYYMMDD>.<csv|json>`.",
        parameters=[ContactExportSerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="`format=csv`: text/csv (RFC 4180, a header line); `format=json`: "
                "application/json, one array of contacts.",
            ),
            (200, "application/json"): OpenApiResponse(ContactResultSerializer(many=True)),
        },
    )
    def get(self, request):
        params = _query(ContactExportSerializer, request)
        tenant = get_current_tenant()
        file_format = params["format"]
        # The stream is read after this view (and the tenant context) has returned, so it
        # reads from the tenant's alias explicitly.
        chunks = exports.contact_export(
            filters=params,
            using=tenant.alias,
            file_format=file_format,
            tenant_slug=tenant.slug,
            user_id=request.user.pk,
        )
        if isinstance(request._request, ASGIRequest):
            chunks = _in_sync_thread(chunks)
        response = StreamingHttpResponse(chunks, content_type=exports.CONTENT_TYPES[file_format])
        filename = exports.export_filename(tenant.slug, file_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response


class ContactStatsView(ApiView):
    api_key_scopes = CONTACT_SCOPES

    @extend_schema(
        operation_id="contacts_stats",
        tags=["address-book"],
        summary="Totals of the address book",
        responses={200: ContactStatsSerializer},
    )
    def get(self, request):
        return Response(selectors.contact_stats())
