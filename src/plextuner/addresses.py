"""Which address we advertise in URLs: one policy for HTTP bodies, UDP discovery, Plex and the demo.

1. `advertise_host` from the config, when set;
2. else the Host header the client used, when it is a plain hostname or IP literal (a client that
   reached us by a name gets that name back);
3. else the local address the client reached us on (HTTP socket, or the discovery source address
   the kernel would use towards the peer);
4. else a specific listen address (`host`), else this machine's LAN address (a routing lookup,
   nothing is sent), else loopback.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: the M3U parser need not import the config (pydantic)
    from plextuner.config import Settings

_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
_WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 - compared against, never bound
_TEST_NET = "192.0.2.1"  # RFC 5737: a route lookup towards it names our LAN address


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def host_from_header(host: str | None) -> str | None:
    """The host part of a Host header when it is safe to echo into URLs, else None."""
    host = host or ""
    if host.startswith("["):
        literal = host[1:].split("]", 1)[0]
        return f"[{literal}]" if is_ip(literal) else None
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name if _HOSTNAME.match(name) else None


def source_address_towards(peer: str, port: int = 9) -> str | None:
    """Our address on the route to `peer` (a UDP connect sends nothing), None when unroutable."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((peer, port))
            return str(probe.getsockname()[0])
    except (OSError, ValueError):
        return None


def lan_address() -> str:
    return source_address_towards(_TEST_NET) or "127.0.0.1"


def advertised_host(
    settings: Settings, *, request_host: str | None = None, local: str | None = None
) -> str:
    """The host to put in every URL we hand out (see the module docstring for the order)."""
    if settings.advertise_host:
        return settings.advertise_host
    from_header = host_from_header(request_host) if request_host is not None else None
    if from_header:
        return from_header
    if local and local not in _WILDCARDS:
        return local
    if settings.host not in _WILDCARDS:
        return settings.host
    return lan_address()
