"""What an exchange tells an observer (the admin's metrics) as it ends or fails over, and
what a tunnel tells it while it is open.

The exchange calls these on its hot path, so an observer does no more than count and
observe a latency; anything that can be read from member state (busy, bytes, errors,
pools) is read at scrape time instead. A tunnel counts its bytes per read, through the
:class:`TunnelMeter` it got when it opened.
"""

from __future__ import annotations

from typing import Protocol


class ExchangeObserver(Protocol):
    """Receives the end of every proxied request and every failover."""

    def request_done(
        self,
        frontend: str,
        balancer: str | None,
        member: str | None,
        *,
        status: int,
        seconds: float,
        member_seconds: float | None,
    ) -> None:
        """A request ended with ``status`` after ``seconds``; ``member`` (of ``balancer``,
        None for a direct ``ProxyPass`` target) served its last attempt, which took
        ``member_seconds``; both None when no member was involved."""

    def failover(self, balancer: str, member: str) -> None:
        """A request left ``member`` of ``balancer`` for another attempt."""

    def tunnel_opened(self, balancer: str | None, member: str) -> TunnelMeter:
        """A tunnel to ``member`` (of ``balancer``, None for a direct target) opened: it
        counts its bytes and its end with the meter returned."""
        ...


class TunnelMeter(Protocol):
    """The bytes and the end of one open tunnel."""

    def traffic(self, to_member: int, to_client: int) -> None:
        """Bytes moved through the tunnel, each way."""

    def closed(self) -> None:
        """The tunnel closed (called once)."""
