"""Client address and network allow-lists (CIDR, IPv4 and IPv6).

The client address is computed here and nowhere else: HTTP requests (`client_ip`) and ASGI
scopes such as a WebSocket handshake (`scope_client_ip`) both go through `client_address`.
Every consumer (allow-lists, rate limits, lockouts, logs) takes it from one of these.
"""

import ipaddress
from functools import cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Only the right end of X-Forwarded-For is read (bounded work): the hops our own proxies
# wrote are there, and a client padding the left cannot push them out of reach.
MAX_FORWARDED_LENGTH = 2048


@cache
def parse_networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value)


def _ip(address: str | None):
    if not address:
        return None
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def _hop_ip(hop: str):
    """The address of one X-Forwarded-For hop: `addr`, `v4:port` or `[v6]:port`."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1 : hop.find("]")] if "]" in hop else ""
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    return _ip(hop)


def ip_in(address: str | None, values) -> bool:
    """True when `address` lies in one of the CIDRs `values`."""
    ip = _ip(address)
    if ip is None:
        return False
    return any(ip in network for network in parse_networks(tuple(values)))


def peer_is_trusted_proxy(peer: str | None) -> bool:
    return ip_in(peer, settings.TRUSTED_PROXY_IPS)


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """The peer address, or, when the peer is a trusted proxy, the rightmost
    `X-Forwarded-For` hop that is not a trusted proxy itself.

    Hops are read right to left because only the right end was written by proxies we trust:
    anything to the left of the first untrusted hop is whatever the client chose to send.
    A hop that is not an IP address ends the walk (the chain cannot be trusted past it)
    and the last trusted address seen is the answer.
    """
    peer = (peer or "").strip()
    if not forwarded_for or not peer_is_trusted_proxy(peer):
        return peer
    hops = forwarded_for[-MAX_FORWARDED_LENGTH:].split(",")
    if len(forwarded_for) > MAX_FORWARDED_LENGTH:
        hops = hops[1:]  # the cut may have left part of an address
    address = peer
    for hop in reversed(hops):
        ip = _hop_ip(hop)
        if ip is None:
            return address
        address = str(ip)
        if not peer_is_trusted_proxy(address):
            return address
    return address


def client_ip(request) -> str:
    """The client address of a Django request (see `client_address`)."""
    return client_address(
        request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR")
    )


def scope_peer(scope: dict) -> str:
    """The transport's peer address of an ASGI scope (no proxy header read): what decides
    whether the peer is a trusted proxy."""
    client = scope.get("client")
    return client[0] if client else ""


def scope_client_ip(scope: dict) -> str:
    """The client address of an ASGI scope, e.g. a WebSocket handshake."""
    forwarded = None
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-forwarded-for":
            # Several header lines are one list (RFC 9110, 5.3).
            piece = value.decode("latin1")
            forwarded = piece if forwarded is None else f"{forwarded},{piece}"
    return client_address(scope_peer(scope), forwarded)
