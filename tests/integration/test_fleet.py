"""Runtime state shared through a real redis-server by several real proxies.

Each test starts its own ``redis-server`` (no persistence, stopped by PID) and two or three
``twistd -n ajpbalancer`` processes naming it. What they prove: a balancer-manager change
on one proxy applies on all within a second; a proxy that restarts or joins takes the
current state; concurrent changes end the same everywhere; the file wins over a runtime
value once it changes that key; the store's loss of its data does not lose the fleet's
state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .conftest import ProxyFactory
from .fleetkit import M1, M2, Admin, admin_port, config, wait_for
from .redis import RedisServer

RedisFactory = Callable[..., RedisServer]


def fleet(proxy_factory: ProxyFactory, redis: RedisServer, count: int, db: int = 0) -> list[Admin]:
    admins = []
    for _ in range(count):
        port = admin_port()
        proxy = proxy_factory(config(port, f"{redis.url}/{db}"))
        admins.append(Admin(proxy, port))
    for admin in admins:
        wait_for(lambda a=admin: a.status()["state"]["connected"], "connected to the store")
    return admins


def test_a_change_on_one_proxy_applies_on_every_other_within_a_second(
    proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    a, b, c = fleet(proxy_factory, redis_factory(), 3, db=2)
    assert a.post(w=M1, w_status_D="1", w_lf="5") == 200
    started = time.monotonic()
    for other in (b, c):
        m = wait_for(lambda o=other: (x := o.member(M1))["flags"] == "D" and x, "disabled")
        assert m["loadfactor"] == 5.0
        assert m["sources"]["status_D"] == "runtime"
        assert m["runtime"]["status_D"]["value"] is True
        assert m["runtime"]["status_D"]["file"] is False
    assert time.monotonic() - started < 1.0
    assert b.member(M2)["flags"] == ""
    # The balancer's own form too.
    assert c.post(b_lbm="bybusyness", b_max="0") == 200
    for other in (a, b):
        wait_for(lambda o=other: o.status()["balancers"][0]["lbmethod"] == "bybusyness", "lbm")
        assert other.status()["balancers"][0]["maxattempts"] == 0


def test_a_proxy_that_restarts_or_joins_takes_the_current_state(
    proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    redis = redis_factory()
    a, b = fleet(proxy_factory, redis, 2)
    b.proxy.stop()
    assert a.post(w=M2, w_status_N="1", w_wr="two") == 200
    b.proxy.start()
    m = wait_for(lambda: (x := b.member(M2))["flags"] == "N" and x, "drain taken at start")
    assert m["route"] == "two"
    (c,) = fleet(proxy_factory, redis, 1)
    assert c.member(M2)["flags"] == "N"
    assert c.member(M2)["route"] == "two"


def test_concurrent_changes_end_with_the_same_value_everywhere(
    proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    redis = redis_factory()
    admins = fleet(proxy_factory, redis, 3)
    for round_ in range(3):
        threads = [
            threading.Thread(target=admin.post, kwargs={"w": M1, "w_lf": str(10 * round_ + i + 2)})
            for i, admin in enumerate(admins)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)

        def agreed() -> float | None:
            values = {admin.member(M1)["loadfactor"] for admin in admins}
            return values.pop() if len(values) == 1 else None

        final = wait_for(agreed, "every proxy ends with one loadfactor")
        stored = redis.command("HGET", "ajpbalancer:cluster", f"loadfactor {M1}")
        assert isinstance(stored, bytes)
        assert f'"value":{final}' in stored.decode()  # the store's last writer


def test_the_file_wins_over_a_runtime_value_once_it_changes_that_key(
    proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    redis = redis_factory()
    a, b = fleet(proxy_factory, redis, 2)
    assert a.post(w=M1, w_lf="5", w_status_D="1") == 200
    wait_for(lambda: b.member(M1)["loadfactor"] == 5.0, "shared")
    for admin in (a, b):  # the operator edits loadfactor in every proxy's file
        text = config(admin.port, f"{redis.url}/0", factors=("3", "1"))
        admin.proxy.reload(text)
    for admin in (a, b):
        m = wait_for(lambda x=admin: (y := x.member(M1))["loadfactor"] == 3.0 and y, "file wins")
        assert m["sources"]["loadfactor"] == "file"
        assert m["flags"] == "D"  # another key: the runtime value holds
        assert m["sources"]["status_D"] == "runtime"
    logs = a.proxy.log() + b.proxy.log()
    assert "runtime value dropped: balancer://cluster member http://127.0.0.2:9 loadfactor" in logs
    assert "the configuration file now says 3.0" in logs
    assert redis.command("HGET", "ajpbalancer:cluster", f"loadfactor {M1}") is None


def test_a_store_that_lost_its_data_gets_the_fleets_state_back(
    proxy_factory: ProxyFactory, redis_factory: RedisFactory
) -> None:
    redis = redis_factory()
    a, b = fleet(proxy_factory, redis, 2)
    assert a.post(w=M1, w_status_D="1") == 200
    wait_for(lambda: b.member(M1)["flags"] == "D", "shared")
    redis.kill()
    wait_for(lambda: not a.status()["state"]["connected"], "the loss is seen")
    assert a.member(M1)["flags"] == "D" and b.member(M1)["flags"] == "D"
    redis_factory(port=redis.port)  # back, empty
    wait_for(lambda: a.status()["state"]["connected"], "connected again", timeout=15)
    wait_for(
        lambda: redis.command("HGET", "ajpbalancer:cluster", f"status_D {M1}") is not None,
        "the store has the value again",
        timeout=15,
    )
    assert a.member(M1)["flags"] == "D" and b.member(M1)["flags"] == "D"
    assert a.status()["state"]["reconnects"] >= 1
