"""The project's URLs plus a probe that reports which tenant a request ran as, and what its
database holds; used to test middleware and routing through the real ASGI/WSGI stack."""

import asyncio
import random

from asgiref.sync import sync_to_async
from django.http import JsonResponse
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config.urls import urlpatterns as project_urlpatterns
from tenants.context import get_current_tenant


def _usernames() -> list[str]:
    return sorted(User.objects.values_list("username", flat=True))


async def tenant_probe(request):
    before = get_current_tenant()
    await asyncio.sleep(random.uniform(0, 0.01))
    users = await sync_to_async(_usernames)()
    after = get_current_tenant()
    return JsonResponse(
        {
            "before": before and before.slug,
            "after": after and after.slug,
            "users": users,
        }
    )


def tenant_probe_sync(request):
    tenant = get_current_tenant()
    return JsonResponse({"tenant": tenant and tenant.slug, "users": _usernames()})


class WhoAmI(APIView):
    def get(self, request):
        tenant = get_current_tenant()
        return Response({"user": request.user.username, "tenant": tenant and tenant.slug})


urlpatterns = [
    path("api/_whoami", WhoAmI.as_view()),
    path("api/_probe", tenant_probe),
    path("api/_probe_sync", tenant_probe_sync),
    *project_urlpatterns,
]
