"""The running proxy of one configuration: its members, balancers, frontends and checks.

:class:`ProxyRuntime` builds, from a :class:`Config`, a :class:`MemberRuntime` per
member (of a balancer, or the target of a direct ``ProxyPass``), a
:class:`BalancerRuntime` per balancer, a :class:`FrontendContext` per frontend, and a
:class:`HealthChecker` per member with an ``hcmethod``. A reload builds a new one; the
service swaps it in (see :mod:`._reload`).
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ajpbalancer._transport import Outbox
from ajpbalancer.balancer import MemberState
from ajpbalancer.config import URL, Config, MemberParams, Scheme
from ajpbalancer.members import HealthChecker, MemberRuntime
from ajpbalancer.proxy import AccessLog, BalancerRuntime, ExchangeObserver, FrontendContext
from ajpbalancer.rewrite import ReverseMap
from ajpbalancer.routing import Router
from ajpbalancer.shm import SharedMemory, SlotError

log = Logger()


class ProxyRuntime:
    """The members, balancers and frontend contexts of one configuration."""

    def __init__(
        self,
        reactor: IReactorTime,
        config: Config,
        *,
        access_log: AccessLog | None,
        server_name: bytes,
        observer: ExchangeObserver | None = None,
        shared: SharedMemory | None = None,
        configure: bool = False,
        outbox: Outbox | None = None,
    ) -> None:
        """``shared``: the balancer state shared by the processes of ``workers = N`` (a
        member's slot is found by balancer and URL); ``configure``: this runtime comes from
        a reload, so the configured fields of existing slots are updated; ``outbox``: where
        the frontends' and members' writes are coalesced (one per reactor, kept by reloads)."""
        self.config = config
        self.outbox = outbox = outbox if outbox is not None else Outbox()
        self.server_name = server_name
        timeout = config.settings.proxy_timeout

        def state(key: str, url: URL, params: MemberParams) -> MemberState | None:
            if shared is None:
                return None
            try:
                return shared.member(key, str(url), params, configure=configure)
            except SlotError as e:
                log.error("member {key} is not shared: {error}", key=key, error=str(e))
                return None

        self.balancers: dict[str, BalancerRuntime] = {
            b.name: BalancerRuntime(
                b,
                [
                    MemberRuntime(
                        reactor,
                        m.url,
                        m.params,
                        timeout,
                        state=state(f"balancer://{b.name} {m.url}", m.url, m.params),
                        outbox=outbox,
                    )
                    for m in b.members
                ],
                shared=shared,
                configure=configure,
            )
            for b in config.balancers
        }
        self.contexts: dict[str, FrontendContext] = {}
        self.direct_members: list[MemberRuntime] = []
        for fe in config.frontends:
            direct_members: dict[int, MemberRuntime] = {}
            for rule in fe.rules:
                target = rule.target
                if target is not None and target.scheme is not Scheme.BALANCER:
                    origin = URL(target.scheme, target.host, target.port, "")
                    member = MemberRuntime(
                        reactor,
                        origin,
                        rule.params,
                        timeout,
                        state=state(f"direct {origin}", origin, rule.params),
                        outbox=outbox,
                    )
                    direct_members[id(rule)] = member
                    self.direct_members.append(member)
            rewrites = fe.reverse or fe.cookie_domain or fe.cookie_path
            self.contexts[fe.name] = FrontendContext(
                reactor=reactor,
                frontend=fe,
                router=Router(fe.rules),
                balancers=self.balancers,
                direct_members=direct_members,
                server_name=server_name,
                access_log=access_log,
                reverse=ReverseMap.for_frontend(fe, config.balancers) if rewrites else None,
                observer=observer,
                outbox=outbox,
            )
        self.health_checkers = [
            HealthChecker(reactor, m) for m in self.members() if m.params.hcmethod is not None
        ]

    def members(self) -> list[MemberRuntime]:
        """Every member: the balancers' in order, then the direct ``ProxyPass`` targets."""
        out = [m for b in self.balancers.values() for m in b.members]
        return out + self.direct_members

    def start_health_checks(self) -> None:
        """Start probing every member that has an ``hcmethod`` (see :class:`HealthChecker`)."""
        for checker in self.health_checkers:
            checker.start()

    def close(self) -> None:
        for checker in self.health_checkers:
            checker.stop()
        for member in self.members():
            member.close()
