"""What an exchange tells an observer (the admin's metrics) as it ends or fails over.

The exchange calls these on its hot path, so an observer does no more than count and
observe a latency; anything that can be read from member state (busy, bytes, errors,
pools) is read at scrape time instead.
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
