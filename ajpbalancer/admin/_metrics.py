"""``/metrics``: the proxy in Prometheus' text format, from a registry of its own.

:class:`ProxyMetrics` is the exchanges' observer (it has the methods of the request
path's ``ExchangeObserver``): on the hot path it only counts a request, observes its
latencies and counts failovers, in a :class:`~ajpbalancer.shm.CounterTable` (with
``workers = N`` the workers write the supervisor's shared one and
:class:`CounterCollector` sums them at scrape time). Everything that member state
already holds (busy, elected, errors, bytes, flags, pools, health checks) is read by
:class:`StateCollector` when Prometheus scrapes, so requests pay nothing for it. Each
:class:`ProxyMetrics` has its own ``CollectorRegistry``; the process-wide default
registry is never used.

Label ``balancer`` is ``""`` for a direct ``ProxyPass`` target; ``member`` is ``""`` for a
request no member served (404, 503 …); ``frontend`` is the ``[frontend:NAME]`` name
(``""`` for ``[frontend]``). The metric names are listed in the README.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from ajpbalancer.admin._running import RunningMember, RuntimeSource, RuntimeValues
from ajpbalancer.admin._snapshot import TunnelView
from ajpbalancer.balancer import STATUS_LETTERS, Status
from ajpbalancer.shm import LATENCY_BUCKETS, CounterTable, CountingObserver, TunnelCells

MEMBER = ("balancer", "member")

LE = tuple("+Inf" if math.isinf(bound) else repr(bound) for bound in LATENCY_BUCKETS)
"""The buckets' ``le`` labels, as prometheus-client writes them."""

SERIES_ENTRIES = 4096
"""Series a single process's private :class:`CounterTable` has room for."""


class ProxyMetrics:
    """The registry, the hot-path observer and the scrape-time collectors of one proxy.

    ``table``: the counters the workers of ``workers = N`` write (the supervisor passes
    the shared one); without it, a private table that this object's observer writes.
    """

    def __init__(
        self,
        runtime: RuntimeSource,
        table: CounterTable | None = None,
        values: Callable[[], RuntimeValues | None] | None = None,
    ) -> None:
        """``values``: where the runtime state is read (its store's health)."""
        if table is None:
            table = CounterTable.create(SERIES_ENTRIES, 1, shared=False)
        self.table = table
        self.observer = CountingObserver(table, table.claim(os.getpid()))
        self.registry = CollectorRegistry()
        self.registry.register(CounterCollector(table))
        self.registry.register(StateCollector(runtime))
        if values is not None:
            self.registry.register(StoreCollector(values))

    # -- ExchangeObserver (the hot path) -----------------------------------------------

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
        self.observer.request_done(
            frontend,
            balancer,
            member,
            status=status,
            seconds=seconds,
            member_seconds=member_seconds,
        )

    def failover(self, balancer: str, member: str) -> None:
        self.observer.failover(balancer, member)

    def tunnel_opened(self, balancer: str | None, member: str) -> TunnelCells:
        return self.observer.tunnel_opened(balancer, member)

    def tunnels(self) -> dict[tuple[str, str], TunnelView]:
        """The members' tunnel counts, summed over the table's columns."""
        counts: dict[tuple[str, str], list[int]] = {}
        for key, numbers, _total in self.table.read():
            kind = key[0]
            if kind in ("tunnels", "open_tunnels", "tunnel_bytes"):
                entry = counts.setdefault((key[1], key[2]), [0, 0, 0, 0])
                if kind == "open_tunnels":
                    entry[0] = numbers[0]
                elif kind == "tunnels":
                    entry[1] = numbers[0]
                else:
                    entry[2], entry[3] = numbers[0], numbers[1]
        return {key: TunnelView(*entry) for key, entry in counts.items()}

    # -- exposition ----------------------------------------------------------------------

    def expose(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (text format by default)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class CounterCollector:
    """The request counters and latency histograms, summed over the table's columns."""

    def __init__(self, table: CounterTable) -> None:
        self._table = table

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "ajpbalancer_requests",
            "Requests answered, by frontend, member and status class.",
            labels=("frontend", "balancer", "member", "status_class"),
        )
        latency = HistogramMetricFamily(
            "ajpbalancer_request_duration_seconds",
            "Time from a request's head to the end of its answer, by frontend.",
            labels=("frontend",),
        )
        member_latency = HistogramMetricFamily(
            "ajpbalancer_member_request_duration_seconds",
            "Time from choosing the member (of the last attempt) to the end of the answer.",
            labels=MEMBER,
        )
        failovers = CounterMetricFamily(
            "ajpbalancer_member_failovers",
            "Requests that left this member for another attempt.",
            labels=MEMBER,
        )
        tunnels = CounterMetricFamily(
            "ajpbalancer_member_tunnels",
            "Requests that switched protocols with the member (a 101): tunnels opened.",
            labels=MEMBER,
        )
        open_tunnels = GaugeMetricFamily(
            "ajpbalancer_member_open_tunnels", "Tunnels open to the member now.", labels=MEMBER
        )
        tunnel_sent = CounterMetricFamily(
            "ajpbalancer_member_tunnel_sent_bytes",
            "Bytes sent to the member through tunnels (from the clients).",
            labels=MEMBER,
        )
        tunnel_received = CounterMetricFamily(
            "ajpbalancer_member_tunnel_received_bytes",
            "Bytes received from the member through tunnels (to the clients).",
            labels=MEMBER,
        )
        histograms = {"latency": latency, "member_latency": member_latency}
        for key, counts, total in self._table.read():
            kind, labels = key[0], list(key[1:])
            if kind == "requests":
                requests.add_metric(labels, counts[0])
            elif kind == "failovers":
                failovers.add_metric(labels, counts[0])
            elif kind == "tunnels":
                tunnels.add_metric(labels, counts[0])
            elif kind == "open_tunnels":
                open_tunnels.add_metric(labels, counts[0])
            elif kind == "tunnel_bytes":
                tunnel_sent.add_metric(labels, counts[0])
                tunnel_received.add_metric(labels, counts[1])
            elif kind in histograms:
                cumulative, buckets = 0, []
                for le, count in zip(LE, counts, strict=False):
                    cumulative += count
                    buckets.append((le, cumulative))
                histograms[kind].add_metric(labels, buckets, total)
        yield from (requests, latency, member_latency, failovers)
        yield from (tunnels, open_tunnels, tunnel_sent, tunnel_received)


class StateCollector:
    """Reads member state at scrape time (see the module docstring)."""

    def __init__(self, runtime: RuntimeSource) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime()
        if runtime is None:
            return
        members: list[tuple[str, RunningMember]] = [
            (name, m) for name, b in runtime.balancers.items() for m in b.members
        ]
        members += [("", m) for m in runtime.direct_members]
        busy = GaugeMetricFamily("ajpbalancer_member_busy", "Requests in flight.", labels=MEMBER)
        elected = CounterMetricFamily(
            "ajpbalancer_member_elected", "Times chosen for a request (Elected).", labels=MEMBER
        )
        errors = CounterMetricFamily(
            "ajpbalancer_member_errors", "Times put in error state (Errors).", labels=MEMBER
        )
        sent = CounterMetricFamily(
            "ajpbalancer_member_sent_bytes", "Bytes sent to the member (To).", labels=MEMBER
        )
        received = CounterMetricFamily(
            "ajpbalancer_member_received_bytes",
            "Bytes received from the member (From).",
            labels=MEMBER,
        )
        lbfactor = GaugeMetricFamily(
            "ajpbalancer_member_loadfactor", "Loadfactor (Factor), 1-100.", labels=MEMBER
        )
        lbstatus = GaugeMetricFamily(
            "ajpbalancer_member_lbstatus", "The lbmethod's count (Load).", labels=MEMBER
        )
        usable = GaugeMetricFamily(
            "ajpbalancer_member_usable",
            "1 when none of the flags D S E C U is set, else 0.",
            labels=MEMBER,
        )
        flags = GaugeMetricFamily(
            "ajpbalancer_member_status",
            "1 when the member has the status flag, else 0.",
            labels=(*MEMBER, "flag"),
        )
        pool_open = GaugeMetricFamily(
            "ajpbalancer_pool_open_connections",
            "Connections open to the member, idle or in use.",
            labels=MEMBER,
        )
        pool_idle = GaugeMetricFamily(
            "ajpbalancer_pool_idle_connections",
            "Open connections waiting in the pool for a request.",
            labels=MEMBER,
        )
        health = GaugeMetricFamily(
            "ajpbalancer_member_health_check_passing",
            "1 while the member passes its health check (no C flag), else 0.",
            labels=(*MEMBER, "hcmethod"),
        )
        for balancer, member in members:
            state = member.lb
            labels = (balancer, member.name)
            busy.add_metric(labels, state.busy)
            elected.add_metric(labels, state.elected)
            errors.add_metric(labels, state.errors)
            sent.add_metric(labels, state.transferred)
            received.add_metric(labels, state.read)
            lbfactor.add_metric(labels, state.lbfactor / 100)
            lbstatus.add_metric(labels, state.lbstatus)
            usable.add_metric(labels, 1 if state.usable else 0)
            for letter, flag in STATUS_LETTERS.items():
                flags.add_metric((*labels, letter), 1 if state.has(flag) else 0)
            pool_open.add_metric(labels, member.pool.open)
            pool_idle.add_metric(labels, len(member.pool.idle))
            hcmethod = member.params.hcmethod
            if hcmethod is not None:
                passing = not state.has(Status.HC_FAIL)
                health.add_metric((*labels, hcmethod), 1 if passing else 0)
        yield from (busy, elected, errors, sent, received, lbfactor, lbstatus, usable, flags)
        yield from (pool_open, pool_idle, health)


class StoreCollector:
    """The runtime state's store: connected (a file: last write worked), last sync, changes
    not yet in the store, reconnections; and how many values were set at run time."""

    def __init__(self, values: Callable[[], RuntimeValues | None]) -> None:
        self._values = values

    def collect(self) -> Iterator[Metric]:
        values = self._values()
        health = None if values is None else values.health()
        if health is None:
            return
        labels = ("store",)
        kind = (health.kind,)
        connected = GaugeMetricFamily(
            "ajpbalancer_state_store_connected",
            "1 while the runtime state's store is reachable and in step (a file: written).",
            labels=labels,
        )
        connected.add_metric(kind, 1 if health.connected else 0)
        last_sync = GaugeMetricFamily(
            "ajpbalancer_state_store_last_sync_timestamp_seconds",
            "When the store last answered (a file: was last written), seconds since the epoch.",
            labels=labels,
        )
        if health.last_sync is not None:
            last_sync.add_metric(kind, health.last_sync)
        pending = GaugeMetricFamily(
            "ajpbalancer_state_store_pending_changes",
            "Runtime changes made here and not yet in the store.",
            labels=labels,
        )
        pending.add_metric(kind, health.pending)
        reconnects = CounterMetricFamily(
            "ajpbalancer_state_store_reconnects",
            "Times the connection to the store was made again.",
            labels=labels,
        )
        reconnects.add_metric(kind, health.reconnects)
        yield from (connected, last_sync, pending, reconnects)
