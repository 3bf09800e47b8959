"""ajpbalancer: a reverse proxy and load balancer for Java application servers.

HTTP(S) frontends route requests to balancers of members reached over HTTP/1.1 or AJP13,
as Apache httpd's mod_proxy, mod_proxy_balancer and mod_proxy_ajp do. Run it with
``twistd -n ajpbalancer --config etc/lb.ini``.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
