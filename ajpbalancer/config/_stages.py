"""Which configuration features are built yet: one table from feature to the stage it lands with.

A feature whose stage has not landed is still validated in full, then rejected with
``… is not supported yet (lands with STAGE)``; it is never accepted and ignored. When a
stage lands, add it to :data:`LANDED` (or delete its rows); nothing else changes.

Keys name the feature as the parser looks it up:

* a directive by its canonical name (``"ProxyPassReverse"``);
* a URL scheme as ``"scheme ajp"``;
* a member parameter (``BalancerMember`` or a ``ProxyPass`` line) as ``"member NAME"``;
* a ``ProxySet`` parameter as ``"ProxySet NAME"``, one of its values as ``"ProxySet NAME=VALUE"``;
* ``"workers != 1"`` for more than one worker process.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType


class Stage(Enum):
    """Stages of the build, named as the plan names them."""

    FOUNDATION = "foundation"
    AJP13 = "AJP13"
    BALANCER = "balancer"
    HEALTH_CHECKS = "health checks"
    ADMIN = "admin"
    OPERATIONS = "operations"


LANDED: frozenset[Stage] = frozenset(
    {
        Stage.FOUNDATION,
        Stage.AJP13,
        Stage.BALANCER,
        Stage.HEALTH_CHECKS,
        Stage.ADMIN,
        Stage.OPERATIONS,
    }
)

WORKERS_OTHER_THAN_ONE = "workers != 1"

LANDS_WITH: Mapping[str, Stage] = MappingProxyType(
    {
        # AJP13 members and their parameters.
        "scheme ajp": Stage.AJP13,
        "member secret": Stage.AJP13,
        "member packetsize": Stage.AJP13,
        "member ping": Stage.AJP13,
        # Admin interface: balancer-manager, status.json, metrics.
        "admin": Stage.ADMIN,
        "admin_users": Stage.ADMIN,
        # Operations: several worker processes.
        WORKERS_OTHER_THAN_ONE: Stage.OPERATIONS,
        # Balancer: reverse rewriting, member states, failover, health checks, stickiness.
        "ProxyPassReverse": Stage.BALANCER,
        "ProxyPassReverseCookieDomain": Stage.BALANCER,
        "ProxyPassReverseCookiePath": Stage.BALANCER,
        "member lbset": Stage.BALANCER,
        "member status": Stage.BALANCER,
        "member retry": Stage.BALANCER,
        "member redirect": Stage.BALANCER,
        "member hcmethod": Stage.HEALTH_CHECKS,
        "member hcuri": Stage.HEALTH_CHECKS,
        "member hcinterval": Stage.HEALTH_CHECKS,
        "member hcpasses": Stage.HEALTH_CHECKS,
        "member hcfails": Stage.HEALTH_CHECKS,
        "ProxySet lbmethod=bytraffic": Stage.BALANCER,
        "ProxySet lbmethod=bybusyness": Stage.BALANCER,
        "ProxySet stickysession": Stage.BALANCER,
        "ProxySet stickysessionsep": Stage.BALANCER,
        "ProxySet scolonpathdelim": Stage.BALANCER,
        "ProxySet nofailover": Stage.BALANCER,
        "ProxySet maxattempts": Stage.BALANCER,
        "ProxySet failonstatus": Stage.BALANCER,
        "ProxySet failontimeout": Stage.BALANCER,
        "ProxySet forcerecovery": Stage.BALANCER,
        "ProxySet timeout": Stage.BALANCER,
    }
)


def pending(feature: str) -> Stage | None:
    """The stage ``feature`` lands with if that stage has not landed yet, else None."""
    stage = LANDS_WITH.get(feature)
    if stage is None or stage in LANDED:
        return None
    return stage


def not_yet(feature: str, what: str) -> str | None:
    """The problem message for using ``feature`` (described as ``what``), or None if built."""
    stage = pending(feature)
    if stage is None:
        return None
    return f"{what} is not supported yet (lands with {stage.value})"
