"""Client address and network allow-lists (CIDR, IPv4 and IPv6)."""

import ipaddress
from functools import cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value)


def ip_in(address: str | None, values) -> bool:
    """True when `address` lies in one of the CIDRs `values`."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in parse_networks(tuple(values)))


def peer_is_trusted_proxy(peer: str | None) -> bool:
    return ip_in(peer, settings.TRUSTED_PROXY_IPS)


def client_ip(request) -> str:
    """The peer address, or the first forwarded one when the peer is a trusted proxy."""
    peer = request.META.get("REMOTE_ADDR", "")
    if peer_is_trusted_proxy(peer):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return peer
