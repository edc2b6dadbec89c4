"""Content negotiation for a JSON-only API (its own module: DRF imports it while loading
rest_framework.views)."""

from rest_framework.negotiation import DefaultContentNegotiation


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """Always JSON, whatever the Accept header; `?format=` is never DRF's renderer switch
    (the contact export uses it for csv|json)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
