"""Believe ``X-Forwarded-*`` only from the reverse proxies named in ``trusted_proxies``.

werkzeug's :class:`~werkzeug.middleware.proxy_fix.ProxyFix` rewrites the client
address, scheme, host, port and prefix from the forwarded headers, trusting the
last ``proxy_hops`` values. On its own it trusts whoever connects, so a client
talking to the dashboard directly could claim any address (and dodge the per-address
login ceiling). Here ProxyFix applies only when the connecting peer is inside one of
the configured networks; from anyone else the headers are ignored and the peer's own
address counts.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests whose peer is a trusted proxy."""

    def __init__(self, app: Any, networks: Iterable[Network], hops: int = 1) -> None:
        self.app = app
        self.networks = tuple(networks)
        self._fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops,
                               x_prefix=hops)

    def trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address((peer or "").split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.trusted(environ.get("REMOTE_ADDR")):
            result: Iterable[bytes] = self._fixed(environ, start_response)
            return result
        if "HTTP_X_FORWARDED_FOR" in environ:
            log.debug("ignoring X-Forwarded-For from untrusted peer %s",
                      environ.get("REMOTE_ADDR"))
        result = self.app(environ, start_response)
        return result
