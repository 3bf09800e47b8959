"""The request counters shared by the workers of ``workers = N``: two "workers" in one
process write their columns of one table, the supervisor's collector sums them."""

from __future__ import annotations

import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ajpbalancer.admin import ProxyMetrics
from ajpbalancer.shm._counters import (
    COLUMN,
    KEY,
    LATENCY_BUCKETS,
    CounterTable,
    CountingObserver,
)

M1 = "http://127.0.0.1:8080"


def samples(metrics: ProxyMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    body, _ = metrics.expose(None)
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def metric(metrics: ProxyMetrics, name: str, **labels: str) -> float:
    return samples(metrics, name).get(tuple(sorted(labels.items())), 0.0)


def done(observer: CountingObserver, status: int, seconds: float, member: str | None = M1) -> None:
    observer.request_done(
        "", "c", member, status=status, seconds=seconds, member_seconds=seconds / 2
    )


@pytest.fixture
def shared() -> CounterTable:
    return CounterTable.create(64, 5, shared=True)


def worker(table: CounterTable, pid: int) -> CountingObserver:
    """A worker: it attaches the inherited descriptor (its own mapping) and claims a column."""
    assert table.fd is not None
    attached = CounterTable.attach(table.fd)
    return CountingObserver(attached, attached.claim(pid))


def test_two_workers_columns_are_summed_by_the_supervisors_collector(
    shared: CounterTable,
) -> None:
    supervisor = ProxyMetrics(lambda: None, shared)
    first, second = worker(shared, 101), worker(shared, 102)
    assert first.column != second.column
    for _ in range(3):
        done(first, 200, 0.003)
    done(second, 200, 0.2)
    done(second, 503, 0.02, member=None)
    labels = {"frontend": "", "balancer": "c", "member": M1}
    assert metric(supervisor, "ajpbalancer_requests_total", status_class="2xx", **labels) == 4
    assert (
        metric(
            supervisor,
            "ajpbalancer_requests_total",
            frontend="",
            balancer="c",
            member="",
            status_class="5xx",
        )
        == 1
    )
    assert metric(supervisor, "ajpbalancer_request_duration_seconds_count", frontend="") == 5
    total = metric(supervisor, "ajpbalancer_request_duration_seconds_sum", frontend="")
    assert total == pytest.approx(3 * 0.003 + 0.2 + 0.02)


def test_histogram_buckets_of_both_workers_add_up_cumulatively(shared: CounterTable) -> None:
    supervisor = ProxyMetrics(lambda: None, shared)
    first, second = worker(shared, 101), worker(shared, 102)
    for seconds in (0.001, 0.005, 0.07):
        done(first, 200, seconds)
    for seconds in (0.005, 0.3, 1000.0):
        done(second, 200, seconds)
    buckets = {
        dict(k)["le"]: v
        for k, v in samples(supervisor, "ajpbalancer_request_duration_seconds_bucket").items()
    }
    assert list(buckets) == ["+Inf" if b == float("inf") else repr(b) for b in LATENCY_BUCKETS]
    assert buckets["0.005"] == 3  # le is inclusive, as prometheus-client's
    assert buckets["0.1"] == 4
    assert buckets["0.5"] == 5
    assert buckets["300.0"] == 5
    assert buckets["+Inf"] == 6
    assert metric(supervisor, "ajpbalancer_request_duration_seconds_count", frontend="") == 6
    member = {"balancer": "c", "member": M1}
    assert metric(supervisor, "ajpbalancer_member_request_duration_seconds_count", **member) == 6


def test_failovers_are_summed_too(shared: CounterTable) -> None:
    supervisor = ProxyMetrics(lambda: None, shared)
    worker(shared, 101).failover("c", M1)
    worker(shared, 102).failover("c", M1)
    assert metric(supervisor, "ajpbalancer_member_failovers_total", balancer="c", member=M1) == 2


def test_a_replacement_takes_a_released_column_and_the_sum_never_goes_down(
    shared: CounterTable,
) -> None:
    supervisor = ProxyMetrics(lambda: None, shared)
    first, second = worker(shared, 101), worker(shared, 102)
    done(first, 200, 0.01)
    done(second, 200, 0.01)
    done(second, 200, 0.01)
    name, labels = "ajpbalancer_requests_total", {"frontend": "", "balancer": "c", "member": M1}
    assert metric(supervisor, name, status_class="2xx", **labels) == 3
    shared.release(102)  # the supervisor saw it die
    assert metric(supervisor, name, status_class="2xx", **labels) == 3
    replacement = worker(shared, 103)
    done(replacement, 200, 0.01)
    assert metric(supervisor, name, status_class="2xx", **labels) == 4
    assert sorted(p for p in shared.owners() if p) == [101, 103, os.getpid()]


def test_no_free_column_counts_nothing_but_serves(shared: CounterTable) -> None:
    supervisor = ProxyMetrics(lambda: None, shared)
    observers = [worker(shared, 200 + i) for i in range(4)]  # 4 + the supervisor: all taken
    assert all(o.column is not None for o in observers)
    extra = worker(shared, 300)
    assert extra.column is None
    done(extra, 200, 0.01)
    assert set(samples(supervisor, "ajpbalancer_requests_total").values()) <= {0.0}


def test_a_full_table_drops_new_series_only() -> None:
    table = CounterTable.create(2, 1, shared=False)
    metrics = ProxyMetrics(lambda: None, table)
    done(metrics.observer, 200, 0.01, member=None)  # two series: requests and latency
    done(metrics.observer, 404, 0.01, member=None)  # a third: not counted
    done(metrics.observer, 200, 0.01, member=None)
    assert (
        metric(
            metrics,
            "ajpbalancer_requests_total",
            frontend="",
            balancer="c",
            member="",
            status_class="2xx",
        )
        == 2
    )
    assert len(samples(metrics, "ajpbalancer_requests_total")) == 1


def test_series_appended_by_one_process_are_found_by_another(shared: CounterTable) -> None:
    first, second = worker(shared, 101), worker(shared, 102)
    done(first, 200, 0.01)
    done(second, 200, 0.01)
    keys = [key for key, _, _ in CounterTable.attach(shared.fd or -1).read()]
    assert len(keys) == len(set(keys)) == 3  # requests, latency, member latency: once each
    assert shared._entry == KEY + 5 * COLUMN


def test_tunnels_of_both_workers_are_summed(shared: CounterTable) -> None:
    supervisor = ProxyMetrics(lambda: None, shared)
    first, second = worker(shared, 101), worker(shared, 102)
    one = first.tunnel_opened("c", M1)
    two = second.tunnel_opened("c", M1)
    one.traffic(10, 0)
    two.traffic(5, 7)
    labels = {"balancer": "c", "member": M1}
    assert metric(supervisor, "ajpbalancer_member_open_tunnels", **labels) == 2
    assert metric(supervisor, "ajpbalancer_member_tunnel_sent_bytes_total", **labels) == 15
    assert metric(supervisor, "ajpbalancer_member_tunnel_received_bytes_total", **labels) == 7
    one.closed()
    assert metric(supervisor, "ajpbalancer_member_open_tunnels", **labels) == 1
    assert metric(supervisor, "ajpbalancer_member_tunnels_total", **labels) == 2


def test_a_dead_workers_open_tunnels_are_not_counted_open_any_more(shared: CounterTable) -> None:
    """Open tunnels are a gauge: those of a worker that died died with it; what it had
    counted (tunnels opened, bytes) stays."""
    supervisor = ProxyMetrics(lambda: None, shared)
    first, second = worker(shared, 101), worker(shared, 102)
    first.tunnel_opened("c", M1)
    second.tunnel_opened("c", M1).traffic(3, 4)
    shared.release(102)
    labels = {"balancer": "c", "member": M1}
    assert metric(supervisor, "ajpbalancer_member_open_tunnels", **labels) == 1
    assert metric(supervisor, "ajpbalancer_member_tunnels_total", **labels) == 2
    assert metric(supervisor, "ajpbalancer_member_tunnel_sent_bytes_total", **labels) == 3
    replacement = worker(shared, 103)
    replacement.tunnel_opened("c", M1)
    assert metric(supervisor, "ajpbalancer_member_open_tunnels", **labels) == 2
