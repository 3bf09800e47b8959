"""twistd plugin: ``twistd -n ajpbalancer --config etc/lb.ini``. Imports nothing heavy."""

from __future__ import annotations

from twisted.application.service import ServiceMaker

ajpbalancer = ServiceMaker(
    "ajpbalancer",
    "ajpbalancer.tap",
    "Reverse proxy and load balancer for Java application servers (HTTP/1.1 and AJP13).",
    "ajpbalancer",
)
