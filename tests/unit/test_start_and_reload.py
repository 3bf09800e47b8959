"""Starting and reloading when the configuration is valid but the system says no, and the
settings a reload applies or refuses, on a memory reactor.

A start that cannot listen or open a file raises :class:`StartError`, one line naming
the directive's line, the listener or file and the reason; the tap prints just that line.
A reload that cannot apply is refused with such a line and changes nothing. A reload
that changes only a listener's backlog keeps its socket; one that changes ``access_log``
moves the log; one that changes ``workers``, ``admin``, ``admin_users`` or ``demo`` is
refused, naming the key.
"""

from __future__ import annotations

import errno
import io
import os
import pathlib
import re
import shutil
import socket
import sys
from collections.abc import Callable
from typing import Any

import pytest
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher

from ajpbalancer.config import Config, parse
from ajpbalancer.service import ProxyService, StartError
from ajpbalancer.service._service import relisten
from ajpbalancer.tap import one_line_start_errors
from tests.unit.test_reload import GET, Rig

IN_USE = OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))


class RefusingReactor(MemoryReactorClock):
    """A memory reactor on which some TCP ports are already in use."""

    def __init__(self, in_use: set[int] | None = None) -> None:
        super().__init__()
        self.in_use = in_use if in_use is not None else set()

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        if port in self.in_use:
            raise CannotListenError(interface, port, IN_USE)
        listening = super().listenTCP(port, factory, backlog, interface)
        listening.stopReading = listening.startReading = lambda: None  # a supervisor's port
        return listening


class LogRig(Rig):
    """A reload rig whose reactor may refuse ports and whose loader may be replaced."""

    def __init__(self, text: str, reactor: MemoryReactorClock | None = None) -> None:
        self.loader: Callable[[str], Config] = lambda t: parse(t, "lb.ini")
        self.reactor = reactor if reactor is not None else RefusingReactor()
        self.text = text
        self.service = ProxyService(self.reactor, self.load(), loader=self.load)
        self.service.privilegedStartService()
        self.service.startService()
        self.accepted = 0

    def load(self) -> Config:
        return self.loader(self.text)


def logged(action: Callable[[], object]) -> list[str]:
    events: list[dict[str, object]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        action()
    finally:
        globalLogPublisher.removeObserver(events.append)
    return [formatEvent(e) for e in events]


def settings(extra: str = "", listen: str = "tcp:8080:interface=127.0.0.1") -> str:
    return (
        f"[ajpbalancer]\naccess_log = off\n{extra}"
        f"[frontend]\nlisten = {listen}\nProxyPass = / http://127.0.0.2:8080/\n"
    )


def start(text: str, reactor: MemoryReactorClock | None = None) -> ProxyService:
    service = ProxyService(reactor or RefusingReactor(), parse(text, "lb.ini"))
    service.privilegedStartService()
    return service


# -- the backlog -------------------------------------------------------------------------------


def test_frontends_and_admin_listen_with_apaches_backlog_of_511() -> None:
    reactor = RefusingReactor()
    service = start(settings("admin = tcp:8081:interface=127.0.0.1\n"), reactor)
    try:
        assert sorted((port, backlog) for port, _f, backlog, _i in reactor.tcpServers) == [
            (8080, 511),
            (8081, 511),
        ]
    finally:
        service.stopService()


def test_a_backlog_given_on_the_line_is_used() -> None:
    reactor = RefusingReactor()
    start(settings(listen="tcp:8080:interface=127.0.0.1:backlog=2048"), reactor)
    assert [(p, b) for p, _f, b, _i in reactor.tcpServers] == [(8080, 2048)]


class RecordingSocket(socket.socket):
    def __init__(self) -> None:
        super().__init__()
        self.backlogs: list[int] = []

    def listen(self, backlog: int = 0) -> None:
        self.backlogs.append(backlog)


def test_a_reload_that_changes_only_the_backlog_keeps_the_socket_and_relistens() -> None:
    rig = LogRig(settings())
    listener = rig.service.ports[0]
    sock = RecordingSocket()
    listener.port.socket = sock  # type: ignore[union-attr]
    try:
        assert rig.reload(settings(listen="tcp:8080:interface=127.0.0.1:backlog=1024"))
        assert len(rig.reactor.tcpServers) == 1  # nothing listened anew
        assert rig.service.ports == [listener]
        assert listener.description == "tcp:8080:interface=127.0.0.1:backlog=1024"
        assert sock.backlogs == [1024]
        assert rig.reload(settings(listen="tcp:8080:backlog=1024:interface=127.0.0.1"))
        assert sock.backlogs == [1024]  # the same backlog: nothing to do
    finally:
        sock.close()


def test_relisten_changes_the_backlog_of_a_real_listening_socket() -> None:
    """Linux takes a second listen() on a listening socket as its new backlog."""

    class Port:
        socket = socket.socket()

    with Port.socket as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        relisten(Port(), 100)
        peers = [socket.create_connection(sock.getsockname(), timeout=5) for _ in range(8)]
        for peer in peers:  # more than 1 + 1 waiting connections were taken into the queue
            peer.close()


def test_a_reload_that_changes_only_the_admin_backlog_applies_it() -> None:
    rig = LogRig(settings("admin = tcp:8081:interface=127.0.0.1\n"))
    admin = rig.service.admin
    assert admin is not None
    sock = RecordingSocket()
    admin.port.socket = sock  # type: ignore[attr-defined]
    try:
        assert rig.reload(settings("admin = tcp:8081:interface=127.0.0.1:backlog=64\n"))
        assert (sock.backlogs, admin.description) == (
            [64],
            "tcp:8081:interface=127.0.0.1:backlog=64",
        )
        assert rig.service.admin is admin
    finally:
        sock.close()
        rig.service.stopService()


# -- start failures ----------------------------------------------------------------------------


def test_a_port_in_use_stops_the_start_with_one_line_naming_it() -> None:
    text = settings() + "[frontend:www]\nlisten = tcp:8090:interface=127.0.0.1\n"
    with pytest.raises(StartError) as raised:
        start(text, RefusingReactor({8090}))
    assert str(raised.value) == (
        "lb.ini:7: listen: cannot listen on tcp:8090:interface=127.0.0.1 for "
        "[frontend:www]: Address already in use"
    )


def test_an_admin_port_in_use_stops_the_start_with_one_line_naming_it() -> None:
    with pytest.raises(StartError) as raised:
        start(settings("admin = tcp:8081:interface=127.0.0.1\n"), RefusingReactor({8081}))
    assert str(raised.value) == (
        "lb.ini:3: admin: cannot listen on tcp:8081:interface=127.0.0.1: Address already in use"
    )


def test_a_demo_port_in_use_stops_the_start_with_one_line_naming_it() -> None:
    text = settings("demo = http://127.0.0.1:18081 route=d1\n")
    with pytest.raises(StartError) as raised:
        start(text, RefusingReactor({18081}))
    assert str(raised.value) == (
        "lb.ini:3: demo: cannot listen on http://127.0.0.1:18081: Address already in use"
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_an_access_log_that_cannot_be_opened_stops_the_start(
    tmp_path: pathlib.Path, workers: int
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    text = settings().replace("access_log = off", f"access_log = {folder}/a.log")
    config = parse(text.replace("[ajpbalancer]\n", f"[ajpbalancer]\nworkers = {workers}\n"), "x")
    folder.rmdir()  # gone between the check and the start
    with pytest.raises(StartError) as raised:
        ProxyService(RefusingReactor(), config).privilegedStartService()
    assert str(raised.value) == (
        f"x: access_log: cannot open '{folder}/a.log': No such file or directory"
    )


def test_an_admin_users_file_gone_before_the_start_stops_it(tmp_path: pathlib.Path) -> None:
    users = tmp_path / "users"
    users.write_text("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    config = parse(
        settings(f"admin = tcp:8081:interface=127.0.0.1\nadmin_users = {users}\n"), "lb.ini"
    )
    users.unlink()
    with pytest.raises(StartError) as raised:
        ProxyService(RefusingReactor(), config).privilegedStartService()
    assert str(raised.value) == (
        f"lb.ini: admin_users: cannot read '{users}': No such file or directory"
    )


def test_the_tap_prints_a_start_error_as_its_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    passed: list[object] = []
    hook = one_line_start_errors(lambda *a: passed.append(a), StartError)
    hook(StartError, StartError("lb.ini:4: listen: cannot listen on tcp:80: in use"), None)
    # (Twisted echoes critical log events to stderr until logging begins, as twistd does.)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == "lb.ini:4: listen: cannot listen on tcp:80: in use"
    assert passed == []
    other = ValueError("a bug")
    hook(ValueError, other, None)
    assert passed == [(ValueError, other, None)]  # a bug keeps its traceback


def test_the_tap_installs_the_hook(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    from ajpbalancer import tap  # noqa: PLC0415

    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    monkeypatch.setattr(tap.signal, "signal", lambda *a: None)
    tap.makeService({"config_object": parse(settings(), str(tmp_path / "lb.ini"))})
    stream = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", stream)
    sys.excepthook(StartError, StartError("one line"), None)
    assert stream.getvalue() == "one line\n"


def test_the_taps_reload_does_not_read_admin_users(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """After ``-u`` the file may not be readable; a reload keeps the users read at start."""
    from ajpbalancer import tap  # noqa: PLC0415

    users = tmp_path / "users"
    users.write_text("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    path = tmp_path / "lb.ini"
    path.write_text(settings(f"admin = tcp:8081:interface=127.0.0.1\nadmin_users = {users}\n"))
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    monkeypatch.setattr(tap.signal, "signal", lambda *a: None)
    options = tap.Options()
    options.parseOptions(["--config", str(path)])  # the start reads the file
    service = tap.makeService(options)
    users.unlink()
    assert isinstance(service, ProxyService) and service.loader is not None
    assert service.loader().settings.admin_users == str(users)


# -- reloads that fail or need a restart --------------------------------------------------------


def test_a_reload_whose_new_listener_cannot_listen_is_refused_with_one_line() -> None:
    rig = LogRig(settings(), RefusingReactor({9090}))
    text = settings() + "[frontend:b]\nlisten = tcp:9090:interface=127.0.0.1\nProxyPass = / !\n"
    lines = logged(lambda: rig.reload(text))
    assert (
        "reload refused: lb.ini:7: listen: cannot listen on tcp:9090:interface=127.0.0.1 for "
        "[frontend:b]: Address already in use; the running configuration stays"
    ) in lines, lines
    assert rig.service.reloads == 0 and list(rig.service.factories) == [""]


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ("workers = 1\n", "workers = 2\n", "workers: changed from 1 to 2; takes a restart"),
        (
            "admin = tcp:8081:interface=127.0.0.1\n",
            "admin = tcp:8082:interface=127.0.0.1\n",
            "admin: changed from 'tcp:8081:interface=127.0.0.1' to "
            "'tcp:8082:interface=127.0.0.1'; takes a restart "
            "(a reload may change only its backlog)",
        ),
        (
            "",
            "admin = tcp:8081:interface=127.0.0.1\n",
            "admin: changed from 'unset' to 'tcp:8081:interface=127.0.0.1'; takes a restart",
        ),
        (
            "demo = http://127.0.0.1:18081 route=d1\n",
            "demo = http://127.0.0.1:18082 route=d1\n",
            "demo: the demo backends changed; takes a restart",
        ),
        (
            "",
            "BalancerPersist = on\nstate = {tmp}/a.state\n",
            "BalancerPersist: changed from off to on; takes a restart",
        ),
        (
            "BalancerPersist = on\nstate = {tmp}/a.state\n",
            "BalancerPersist = on\nstate = {tmp}/b.state\n",
            "state: changed from '{tmp}/a.state' to '{tmp}/b.state'; takes a restart",
        ),
        (
            "BalancerPersist = on\nstate = redis://127.0.0.1:1/0\n",
            "BalancerPersist = on\nstate = redis://127.0.0.1:1/0\nstate_prefix = shop:\n",
            "state_prefix: changed from 'ajpbalancer:' to 'shop:'; takes a restart",
        ),
    ],
    ids=["workers", "admin", "admin-added", "demo", "persist", "state", "state_prefix"],
)
def test_a_reload_that_changes_a_process_setting_is_refused_naming_it(
    before: str, after: str, message: str, tmp_path: pathlib.Path
) -> None:
    before, after, message = (t.replace("{tmp}", str(tmp_path)) for t in (before, after, message))
    rig = LogRig(settings(before))
    runtime = rig.service.runtime
    lines = logged(lambda: rig.reload(settings(after).replace("127.0.0.2:8080", "127.0.0.3:1")))
    assert any(line.startswith(f"reload refused: lb.ini: {message}") for line in lines), lines
    assert any(
        re.fullmatch(
            r"reload refused: \d setting\(s\) need a restart; the running configuration stays", line
        )
        for line in lines
    )
    assert rig.service.runtime is runtime and rig.service.reloads == 0
    rig.service.stopService()


def test_a_reload_applies_admin_hosts() -> None:
    rig = LogRig(settings("admin = tcp:8081:interface=127.0.0.1\n"))
    admin = rig.service.admin
    assert admin is not None and "lb.example.org" not in admin.site.hosts  # type: ignore[attr-defined]
    text = "admin = tcp:8081:interface=127.0.0.1\nadmin_hosts = lb.example.org\n"
    assert rig.reload(settings(text))
    assert admin.site.hosts == frozenset({"lb.example.org"})  # type: ignore[attr-defined]
    rig.service.stopService()


def test_a_reload_that_changes_admin_users_is_refused_naming_it(tmp_path: pathlib.Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_text("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    admin = "admin = tcp:8081:interface=127.0.0.1\nadmin_users = {}\n"
    rig = LogRig(settings(admin.format(tmp_path / "a")))
    lines = logged(lambda: rig.reload(settings(admin.format(tmp_path / "b"))))
    assert any(
        line.startswith("reload refused: lb.ini: admin_users: changed from") for line in lines
    )
    assert rig.service.reloads == 0
    rig.service.stopService()


# -- access_log on reload -----------------------------------------------------------------------


def request(rig: Rig) -> None:
    proto, _client = rig.client()
    proto.dataReceived(GET)  # type: ignore[attr-defined]
    member = rig.accept_member()
    member.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def with_log(path: object) -> str:
    return settings().replace("access_log = off", f"access_log = {path}")


def test_a_reload_that_changes_access_log_moves_the_log(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    rig = LogRig(with_log(first))
    log = rig.service.access_log
    request(rig)
    assert rig.reload(with_log(second))
    request(rig)
    assert rig.service.access_log is log  # the same log, writing elsewhere
    assert [len(p.read_text().splitlines()) for p in (first, second)] == [1, 1]
    assert rig.reload(settings())  # off
    request(rig)
    assert rig.service.access_log is None
    assert len(second.read_text().splitlines()) == 1
    assert rig.reload(with_log(first))  # on again
    request(rig)
    assert len(first.read_text().splitlines()) == 2


def test_a_reload_whose_access_log_cannot_be_opened_is_refused(tmp_path: pathlib.Path) -> None:
    first, folder = tmp_path / "first.log", tmp_path / "gone"
    folder.mkdir()
    rig = LogRig(with_log(first))
    log = rig.service.access_log

    def load_then_remove(text: str) -> Config:
        config = parse(text, "lb.ini")
        shutil.rmtree(folder)  # gone between the check and the reload's open
        return config

    rig.loader = load_then_remove
    lines = logged(lambda: rig.reload(with_log(folder / "second.log")))
    assert (
        f"reload refused: lb.ini: access_log: cannot open '{folder}/second.log': No such file "
        "or directory; the running configuration stays"
    ) in lines, lines
    rig.loader = lambda t: parse(t, "lb.ini")
    request(rig)
    assert rig.service.access_log is log and len(first.read_text().splitlines()) == 1


def test_a_refused_reload_closes_the_access_log_it_opened(tmp_path: pathlib.Path) -> None:
    rig = LogRig(with_log(tmp_path / "first.log"), RefusingReactor({9090}))
    text = with_log(tmp_path / "second.log") + "[frontend:b]\nlisten = tcp:9090\nProxyPass = / !\n"
    before = set(os.listdir("/proc/self/fd"))
    assert not rig.reload(text)
    assert set(os.listdir("/proc/self/fd")) <= before
    request(rig)
    assert len((tmp_path / "first.log").read_text().splitlines()) == 1


def test_a_supervisor_hands_a_moved_access_log_to_new_workers(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    text = with_log(first).replace("[ajpbalancer]\n", "[ajpbalancer]\nworkers = 2\n")
    service = ProxyService(
        RefusingReactor(), parse(text, "lb.ini"), loader=lambda: parse(text, "lb.ini")
    )
    service.privilegedStartService()  # no startService: no worker process is spawned
    spawner = service.spawner
    assert spawner is not None and isinstance(spawner.access_log, int)
    old_fd = spawner.access_log
    text = text.replace(str(first), str(second))
    replaced: list[bool] = []
    assert service.supervisor is not None
    service.supervisor.replace_all = lambda: replaced.append(True)  # type: ignore[method-assign]
    results: list[bool] = []
    service.reload().addCallback(results.append)
    assert results == [True] and replaced == [True]
    assert isinstance(spawner.access_log, int) and spawner.access_log != old_fd
    assert os.readlink(f"/proc/self/fd/{spawner.access_log}") == str(second)
    with pytest.raises(OSError):
        os.fstat(old_fd)  # the supervisor's copy of the old file is closed
    service.stopService()
