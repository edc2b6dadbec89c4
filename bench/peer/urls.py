from django.http import HttpResponse
from django.urls import path

from bench.peer.contacts.views import ContactList


def health(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/address-book", ContactList.as_view()),
    path("health", health),  # what the harness waits for (bench.servers.wait_for_http)
]
