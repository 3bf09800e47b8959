"""``BalancerPersist`` with ``state = PATH``, no Redis: runtime values survive reload and
restart in a file written atomically; the file wins once it changes a key; a garbled or
newer file is logged and set aside, never a traceback."""

from __future__ import annotations

import json
import time

from .conftest import ProxyFactory
from .fleetkit import M1, M2, Admin, admin_port, config, wait_for


def test_runtime_values_survive_reload_and_restart_until_the_file_changes_that_key(
    proxy_factory: ProxyFactory,
) -> None:
    port = admin_port()
    proxy = proxy_factory(config(port, "state.json"))
    admin = Admin(proxy, port)
    path = proxy.workdir / "state.json"
    assert admin.post(w=M1, w_status_D="1", w_lf="4") == 200
    assert admin.post(b_lbm="bytraffic") == 200
    doc = wait_for(
        lambda: path.exists() and len(json.loads(path.read_text())["entries"]) == 3, "written"
    )
    assert doc
    saved = json.loads(path.read_text())
    assert (saved["format"], saved["version"]) == ("ajpbalancer-runtime-state", 1)
    assert {(e["member"], e["key"], json.dumps(e["value"])) for e in saved["entries"]} == {
        (M1, "status_D", "true"),
        (M1, "loadfactor", "4.0"),
        (None, "lbmethod", '"bytraffic"'),
    }
    assert list(proxy.workdir.glob("state.json.tmp-*")) == []

    proxy.reload(proxy.config_path.read_text())
    time.sleep(0.5)
    assert (admin.member(M1)["flags"], admin.member(M1)["loadfactor"]) == ("D", 4.0)

    proxy.stop()
    proxy.start()
    m = admin.member(M1)
    assert (m["flags"], m["loadfactor"], m["sources"]["status_D"]) == ("D", 4.0, "runtime")
    assert admin.status()["balancers"][0]["lbmethod"] == "bytraffic"
    state = admin.status()["state"]
    assert (state["persist"], state["kind"], state["connected"]) == (True, "file", True)

    proxy.reload(config(port, "state.json", factors=("2", "1")))  # the file changes lf
    wait_for(lambda: admin.member(M1)["loadfactor"] == 2.0, "the file wins")
    assert admin.member(M1)["flags"] == "D"
    assert "the configuration file now says 2.0" in proxy.log()
    wait_for(lambda: len(json.loads(path.read_text())["entries"]) == 2, "dropped from the file")

    assert admin.post(w=M1, w_status_D="0") == 200  # back to the file's value: not kept
    wait_for(lambda: len(json.loads(path.read_text())["entries"]) == 1, "ended")
    page = admin.proxy.get("/app/x")  # the frontend still serves (no member runs here)
    assert page[0].status in (502, 503)


def test_a_garbled_state_file_is_set_aside_with_a_log_line(proxy_factory: ProxyFactory) -> None:
    port = admin_port()
    workdir_config = config(port, "state.json")
    proxy = proxy_factory(workdir_config.replace("state.json", "../state.json"))
    state = proxy.workdir.parent / "state.json"
    proxy.stop()
    for bad, why in (
        (b'{"format": "ajpbalancer-runtime-state", "version": 9, "entries": []}', "newer"),
        (b"\x00garbage{", "not JSON"),
    ):
        state.write_bytes(bad)
        proxy.start()
        admin = Admin(proxy, port)
        assert admin.member(M2)["flags"] == ""
        log = proxy.log()
        assert why in log and "Traceback" not in log
        assert (proxy.workdir.parent / "state.json.invalid").read_bytes() == bad
        assert admin.status()["state"]["error"] is not None
        proxy.stop()
