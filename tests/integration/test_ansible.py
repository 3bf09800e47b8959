"""Ansible's ``community.general.apache2_mod_proxy``, unmodified, drives the balancer-manager.

The module was written for httpd's page: it checks the version line for 2.4, takes every
link after the first as a member's (``/balancer-manager?b=…&w=URL&nonce=…``), reads the
second table's rows and posts httpd's form fields with the link's Referer. The test runs
the real module (``ansible localhost -m …``) from the ``ansible`` package in an
environment of its own (``.venv-ansible``, made by ``scripts/test``; never the
product's) against a running proxy: list the members, disable one, drain it, enable it
again, each checked through ``/status.json``. A missing Ansible fails, never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .apache import Apache, ajp_balancer
from .conftest import ProxyFactory
from .fleetkit import M1, M2, Admin, admin_port, config

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_VENV = Path(os.environ.get("AJPB_ANSIBLE_VENV", ROOT / ".venv-ansible"))
MODULE = "community.general.apache2_mod_proxy"


def ansible(tmp_path: Path, args: str) -> dict[str, Any]:
    """Run the module once on localhost; its result."""
    binary = ANSIBLE_VENV / "bin" / "ansible"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: scripts/test makes it", pytrace=False)
    env = {
        **os.environ,
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_PYTHON_INTERPRETER": str(ANSIBLE_VENV / "bin" / "python"),
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONWARNINGS": "ignore",
    }
    run = subprocess.run(
        [str(binary), "localhost", "-c", "local", "-o", "-m", MODULE, "-a", args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("localhost |")), "")
    assert run.returncode == 0 and "=>" in line, run.stdout + run.stderr
    result: dict[str, Any] = json.loads(line.split("=>", 1)[1])
    return result


def test_ansible_lists_disables_drains_and_enables_members(
    proxy_factory: ProxyFactory, tmp_path: Path
) -> None:
    port = admin_port()
    admin = Admin(proxy_factory(config(port, None)), port)
    vhost = f"balancer_vhost=127.0.0.1:{port}"

    listed = ansible(tmp_path, vhost)
    members = {m["host"]: m for m in listed["members"]}
    assert set(members) == {"127.0.0.2", "127.0.0.3"}
    one = members["127.0.0.2"]
    assert (one["protocol"], one["port"]) == ("http", "9")
    assert one["attributes"]["Worker URL"] == M1
    assert one["attributes"]["Route"] == "node1"
    assert one["status"] == {
        "disabled": False,
        "drained": False,
        "hot_standby": False,
        "ignore_errors": False,
    }

    changed = ansible(tmp_path, f"{vhost} member_host=127.0.0.2 state=disabled")
    assert changed["changed"] is True
    assert admin.member(M1)["flags"] == "D"
    assert admin.member(M2)["flags"] == ""

    drained = ansible(tmp_path, f"{vhost} member_host=127.0.0.2 state=drained")
    assert drained["member"]["status"]["drained"] is True
    assert admin.member(M1)["flags"] == "N"

    enabled = ansible(tmp_path, f"{vhost} member_host=127.0.0.2 state=present")
    assert enabled["changed"] is True
    assert admin.member(M1)["flags"] == ""
    again = ansible(tmp_path, f"{vhost} member_host=127.0.0.2 state=present")
    assert again["changed"] is False


def test_ansible_reads_our_page_as_it_reads_apaches(
    proxy_factory: ProxyFactory, apache_factory: Callable[..., Apache], tmp_path: Path
) -> None:
    """The oracle: the same module against httpd's own balancer-manager, with the same
    balancer, lists the same members with the same attributes and changes them alike."""
    apache = apache_factory(
        proxy_config=ajp_balancer([(M1, "node1"), (M2, "node2")])
        + '<Location "/balancer-manager">\n    SetHandler balancer-manager\n'
        + "    Require all granted\n</Location>\nProxyPass /balancer-manager !\n"
    )
    port = admin_port()
    proxy_factory(config(port, None))
    theirs = ansible(tmp_path, f"balancer_vhost=127.0.0.1:{apache.port}")["members"]
    ours = ansible(tmp_path, f"balancer_vhost=127.0.0.1:{port}")["members"]
    assert [m["host"] for m in ours] == [m["host"] for m in theirs]
    for mine, apaches in zip(ours, theirs, strict=True):
        for key in ("protocol", "port", "path", "status"):
            assert mine[key] == apaches[key], key
        assert set(apaches["attributes"]) <= set(mine["attributes"])
        for column in ("Worker URL", "Route", "Factor", "Set", "Elected", "Busy", "Load"):
            assert mine["attributes"][column] == apaches["attributes"][column], column
        assert mine["attributes"]["Status"].split() == apaches["attributes"]["Status"].split()
        assert (
            mine["management_url"].split("&nonce=")[0]
            == apaches["management_url"].replace(str(apache.port), str(port)).split("&nonce=")[0]
        )
    for vhost in (f"127.0.0.1:{apache.port}", f"127.0.0.1:{port}"):
        done = ansible(tmp_path, f"balancer_vhost={vhost} member_host=127.0.0.3 state=drained")
        assert done["changed"] is True
        assert done["member"]["status"]["drained"] is True
        assert "Drn" in done["member"]["attributes"]["Status"]
