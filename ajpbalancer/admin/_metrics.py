"""``/metrics``: the proxy in Prometheus' text format, from a registry of its own.

:class:`ProxyMetrics` is the exchanges' observer (:class:`~ajpbalancer.proxy._observer.
ExchangeObserver`): on the hot path it only counts a request, observes its latencies and
counts failovers. Everything that member state already holds (busy, elected, errors,
bytes, flags, pools, health checks) is read by :class:`StateCollector` when Prometheus
scrapes, so requests pay nothing for it. Each :class:`ProxyMetrics` has its own
``CollectorRegistry``; the process-wide default registry is never used.

Label ``balancer`` is ``""`` for a direct ``ProxyPass`` target; ``member`` is ``""`` for a
request no member served (404, 503 …); ``frontend`` is the ``[frontend:NAME]`` name
(``""`` for ``[frontend]``). The metric names are listed in the README.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from ajpbalancer.balancer import STATUS_LETTERS, Status

if TYPE_CHECKING:
    from ajpbalancer.proxy import ProxyRuntime, Worker

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    float("inf"),
)
"""Seconds; up to ``ProxyTimeout``'s default (300 s)."""

MEMBER = ("balancer", "member")


def status_class(status: int) -> str:
    """``2xx`` for 200 …: the ``status_class`` label."""
    return f"{status // 100}xx"


class ProxyMetrics:
    """The registry, the hot-path instruments and the scrape-time collector of one proxy."""

    def __init__(self, runtime: Callable[[], ProxyRuntime | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ajpbalancer_requests",
            "Requests answered, by frontend, member and status class.",
            ("frontend", "balancer", "member", "status_class"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "ajpbalancer_request_duration_seconds",
            "Time from a request's head to the end of its answer, by frontend.",
            ("frontend",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.member_latency = Histogram(
            "ajpbalancer_member_request_duration_seconds",
            "Time from choosing the member (of the last attempt) to the end of the answer.",
            MEMBER,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failovers = Counter(
            "ajpbalancer_member_failovers",
            "Requests that left this member for another attempt.",
            MEMBER,
            registry=self.registry,
        )
        self.registry.register(StateCollector(runtime))
        # Children by label values: one dict lookup per request instead of labels().
        self._requests: dict[tuple[str, str, str, str], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._member_latency: dict[tuple[str, str], Histogram] = {}

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
        key = (frontend, balancer or "", member or "", status_class(status))
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(*key)
        counter.inc()
        histogram = self._latency.get(frontend)
        if histogram is None:
            histogram = self._latency[frontend] = self.latency.labels(frontend)
        histogram.observe(seconds)
        if member is not None and member_seconds is not None:
            mkey = (balancer or "", member)
            member_histogram = self._member_latency.get(mkey)
            if member_histogram is None:
                member_histogram = self._member_latency[mkey] = self.member_latency.labels(*mkey)
            member_histogram.observe(member_seconds)

    def failover(self, balancer: str, member: str) -> None:
        self.failovers.labels(balancer, member).inc()

    # -- exposition ----------------------------------------------------------------------

    def expose(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (text format by default)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class StateCollector:
    """Reads member state at scrape time (see the module docstring)."""

    def __init__(self, runtime: Callable[[], ProxyRuntime | None]) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime()
        if runtime is None:
            return
        members: list[tuple[str, Worker]] = [
            (name, w) for name, b in runtime.balancers.items() for w in b.workers
        ]
        members += [("", w) for w in runtime.direct]
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
        for balancer, worker in members:
            state = worker.lb
            labels = (balancer, worker.name)
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
            pool_open.add_metric(labels, worker.pool.open)
            pool_idle.add_metric(labels, len(worker.pool.idle))
            hcmethod = worker.params.hcmethod
            if hcmethod is not None:
                passing = not state.has(Status.HC_FAIL)
                health.add_metric((*labels, hcmethod), 1 if passing else 0)
        yield from (busy, elected, errors, sent, received, lbfactor, lbstatus, usable, flags)
        yield from (pool_open, pool_idle, health)
