"""The composition root: the proxy service built from a configuration, and its processes.

:class:`ProxyService` listens, builds a :class:`ProxyRuntime` (members, balancers,
frontends, health checks) from the configuration, opens the admin listener, reloads on
``SIGHUP`` and, with ``workers = N``, supervises the worker processes. It is the only
place that wires the rooms below it together; the tap module and the worker entry point
(:mod:`ajpbalancer.worker`) start it.
"""

from __future__ import annotations

from ajpbalancer.service._endpoint import check_admin_users, check_endpoint, load_config
from ajpbalancer.service._errors import StartError
from ajpbalancer.service._runtime import ProxyRuntime
from ajpbalancer.service._service import FrontendFactory, ProxyService, WorkerSetup

__all__ = [
    "FrontendFactory",
    "ProxyRuntime",
    "ProxyService",
    "StartError",
    "WorkerSetup",
    "check_admin_users",
    "check_endpoint",
    "load_config",
]
