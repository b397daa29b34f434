"""Imported lazily by lazy_app.py: probes the network while it is imported, as urllib3 does
(``HAS_IPV6 = _has_ipv6("::1")``). build-python imports it at build time, when there is no
network: it must see none, not leave the build's network in the component."""

import socket


def _has_ipv6(host):
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind((host, 0))
            return True
    except Exception:
        return False


HAS_IPV6 = _has_ipv6("::1")
