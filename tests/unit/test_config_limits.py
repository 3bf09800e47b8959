"""What the configuration refuses before anything starts: absurd numbers, endpoints that
cannot listen, files that cannot be used.

Every number a directive or parameter takes has a finite range, read from the parser's
tables; every endpoint is checked for what its text alone can tell (port, backlog,
socket path); ``access_log`` and ``admin_users`` name files that the start can use.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from functools import partial

import pytest

from ajpbalancer.config import (
    DEFAULT_BACKLOG,
    ConfigError,
    endpoint_spec,
    parse,
)
from ajpbalancer.config import _directives as directives
from ajpbalancer.config import _values as values
from ajpbalancer.config._values import InvalidValueError

FRONT = "[frontend]\nlisten = tcp:8080\n"


def problems(text: str, **checks: Callable[[str], str | None]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "lb.ini", **checks)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


def member(params: str) -> str:
    return (
        FRONT + "ProxyPass = / balancer://c/\n[balancer://c]\n"
        f"BalancerMember = http://127.0.0.1:8001 {params}\n"
    )


# -- values found absurd from outside ----------------------------------------------------------


def test_workers_99999_is_refused() -> None:
    assert problems("[ajpbalancer]\nworkers = 99999\n" + FRONT) == [
        "lb.ini:2: workers: workers must be an integer from 1 to 256, got '99999'"
    ]


def test_workers_auto_is_capped_at_the_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1024)
    config = parse("[ajpbalancer]\nworkers = auto\n" + FRONT, "lb.ini")
    assert config.settings.workers == values.MAX_WORKERS == 256


def test_an_hcinterval_of_1e20_seconds_is_refused() -> None:
    assert problems(member("hcmethod=GET hcinterval=" + "1" + "0" * 20)) == [
        "lb.ini:5: BalancerMember: hcinterval must be at most 86400 seconds (one day), "
        "got '100000000000000000000'"
    ]


def test_a_retry_of_1e23_seconds_is_refused() -> None:
    assert problems(member("retry=1" + "0" * 23)) == [
        "lb.ini:5: BalancerMember: retry must be at most 86400 seconds (one day), "
        "got '100000000000000000000000'"
    ]


def test_a_number_too_long_for_a_float_is_refused_too() -> None:
    assert "timeout must be at most 86400 seconds" in problems(member("timeout=" + "9" * 400))[0]


@pytest.mark.parametrize("text", ["0.0001", "0.9ms", "0.0000001"])
def test_a_time_that_must_be_positive_is_at_least_one_millisecond(text: str) -> None:
    assert problems(member(f"connectiontimeout={text}")) == [
        f"lb.ini:5: BalancerMember: connectiontimeout must be at least 1 ms, got {text!r}"
    ]


def test_one_millisecond_and_one_day_are_accepted() -> None:
    params = parse(member("connectiontimeout=1ms timeout=86400"), "lb.ini").balancers[0]
    assert (params.members[0].params.connectiontimeout, params.members[0].params.timeout) == (
        0.001,
        86400.0,
    )


# -- every number of the tables ---------------------------------------------------------------


def numeric_params() -> list[tuple[str, directives.Param]]:
    found = []
    for table, params in (
        ("member", directives.MEMBER_PARAMS),
        ("balancer", directives.BALANCER_PARAMS),
    ):
        for param in params.values():
            parse_ = param.parse
            if isinstance(parse_, partial) and parse_.func in (
                values.integer,
                values.decimal,
                values.seconds,
            ):
                found.append((f"{table} {param.name}", param))
    return found


NUMERIC = numeric_params()


def test_the_numeric_parameters_are_found() -> None:
    names = {name for name, _ in NUMERIC}
    assert {"member retry", "member hcinterval", "member max", "balancer maxattempts"} <= names


@pytest.mark.parametrize(("name", "param"), NUMERIC, ids=[n for n, _ in NUMERIC])
def test_every_numeric_parameter_has_a_finite_maximum_it_enforces(
    name: str, param: directives.Param
) -> None:
    """The largest value is accepted, the next one refused with a message saying so."""
    assert isinstance(param.parse, partial)
    keywords = param.parse.keywords
    if param.parse.func is values.seconds:
        high: float = keywords.get("high", values.MAX_SECONDS)
        assert high <= values.MAX_SECONDS
        over = f"{high + 1:g}"
    else:
        high = keywords["high"]
        assert high is not None and high <= 2**31 - 1  # what Apache's atoi reads, at most
        over = str(int(high) + 1)
    assert param.parse(param.name, f"{high:g}") == high
    with pytest.raises(InvalidValueError, match=f"{param.name} must .*{high:g}"):
        param.parse(param.name, over)


def test_proxy_timeout_has_the_same_maximum() -> None:
    assert problems("[ajpbalancer]\nProxyTimeout = 86401\n" + FRONT) == [
        "lb.ini:2: ProxyTimeout: ProxyTimeout must be at most 86400 seconds (one day), got '86401'"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("KeepAliveTimeout = 86401", "KeepAliveTimeout must be at most 86400 seconds (one day)"),
        ("RequestReadTimeout = header=86401", "a timeout must be at most 86400 seconds"),
        ("RequestReadTimeout = body=5-86401,MinRate=1", "a timeout must be at most 86400 seconds"),
        ("MaxConnections = 1048577", "MaxConnections must be an integer from 0 to 1048576"),
    ],
)
def test_frontend_numbers_have_a_maximum(line: str, message: str) -> None:
    found = problems(FRONT + line + "\n")
    assert len(found) == 1 and message in found[0], found


def test_max_connections_is_1000_unless_set() -> None:
    assert parse(FRONT, "lb.ini").frontends[0].limits.max_connections == 1000
    unlimited = parse(FRONT + "MaxConnections = 0\n", "lb.ini").frontends[0].limits
    assert unlimited.max_connections == 0


# -- endpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("tcp:70000", "port must be an integer from 0 to 65535, got '70000'"),
        ("tcp:x", "port must be an integer from 0 to 65535, got 'x'"),
        ("tcp:", "the port is missing"),
        ("ssl:99999:privateKey=k.pem", "port must be an integer from 0 to 65535"),
        ("tcp6:-1", "port must be an integer from 0 to 65535, got '-1'"),
        ("unix:", "a unix: endpoint needs a socket path"),
        ("unix:/" + "s" * 107, "a socket path has at most 107 bytes"),
        ("tcp:8081:backlog=0", "backlog must be an integer from 1 to 65535, got '0'"),
        ("tcp:8081:backlog=65536", "backlog must be an integer from 1 to 65535, got '65536'"),
        ("tcp:8081:backlog=lots", "backlog must be an integer from 1 to 65535, got 'lots'"),
        ("tcp:8081:127.0.0.1:0", "backlog must be an integer from 1 to 65535, got '0'"),
        ("tcp:8081:127.0.0.1:50:backlog=60", "backlog given twice"),
        (":8081", "it must start with a type"),
    ],
)
def test_an_endpoint_that_cannot_listen_is_a_problem_of_its_line(
    endpoint: str, message: str
) -> None:
    found = problems(f"[frontend]\nlisten = {endpoint}\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"lb.ini:2: listen: invalid endpoint {endpoint!r}: "), found
    assert message in found[0], found


def test_the_admin_endpoint_is_checked_the_same_way() -> None:
    assert problems("[ajpbalancer]\nadmin = tcp:70000:interface=127.0.0.1\n" + FRONT) == [
        "lb.ini:2: admin: invalid endpoint 'tcp:70000:interface=127.0.0.1': port must be an "
        "integer from 0 to 65535, got '70000'"
    ]


def test_a_unix_socket_in_a_missing_directory_is_a_problem(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nowhere" / "lb.sock"
    assert problems(f"[frontend]\nlisten = unix:{path}\n") == [
        f"lb.ini:2: listen: invalid endpoint 'unix:{path}': no directory "
        f"'{path.parent}' for the socket"
    ]


def test_a_unix_socket_in_an_existing_directory_is_fine(tmp_path: pathlib.Path) -> None:
    config = parse(f"[frontend]\nlisten = unix:{tmp_path}/lb.sock\n", "lb.ini")
    assert config.frontends[0].listen[0].description == f"unix:{tmp_path}/lb.sock"


def test_the_same_address_with_another_backlog_is_a_duplicate() -> None:
    assert problems(FRONT + "[frontend:b]\nlisten = tcp:8080:backlog=1024\n") == [
        "lb.ini:4: listen: duplicate endpoint 'tcp:8080:backlog=1024' (first at line 2)"
    ]


@pytest.mark.parametrize(
    ("description", "endpoint", "backlog"),
    [
        ("tcp:8080", f"tcp:8080:backlog={DEFAULT_BACKLOG}", 511),
        ("tcp:8080:interface=127.0.0.1", "tcp:8080:interface=127.0.0.1:backlog=511", 511),
        ("tcp:8080:backlog=1024", "tcp:8080:backlog=1024", 1024),
        ("tcp:8080:127.0.0.1:64", "tcp:8080:127.0.0.1:64", 64),
        ("tcp6:8080", "tcp6:8080:backlog=511", 511),
        ("ssl:8443:privateKey=k.pem", "ssl:8443:privateKey=k.pem:backlog=511", 511),
        ("unix:/run/lb.sock", "unix:/run/lb.sock:backlog=511", 511),
        ("unix:/run/lb.sock:660:32", "unix:/run/lb.sock:660:32", 32),
        ("systemd:domain=INET:index=0", "systemd:domain=INET:index=0", None),
    ],
)
def test_an_endpoint_listens_with_apaches_backlog_unless_it_sets_one(
    description: str, endpoint: str, backlog: int | None
) -> None:
    spec = endpoint_spec(description)
    assert (spec.endpoint(), spec.listen_backlog) == (endpoint, backlog)


def test_the_address_of_an_endpoint_leaves_the_backlog_out() -> None:
    """What identifies the socket: kind, arguments and options, in any order."""
    address = endpoint_spec("tcp:8080:interface=127.0.0.1").address
    assert endpoint_spec("tcp:8080:backlog=1024:interface=127.0.0.1").address == address
    assert endpoint_spec("tcp:8080:interface=127.0.0.1:backlog=7").address == address
    assert endpoint_spec("tcp:8080:127.0.0.1:7").address != address  # positional interface
    assert endpoint_spec("tcp:8081:interface=127.0.0.1").address != address


def test_escaped_colons_are_read_as_twisted_reads_them() -> None:
    spec = endpoint_spec("tcp6:8080:interface=\\:\\:1:backlog=9")
    assert (spec.args, dict(spec.options), spec.backlog) == (("8080",), {"interface": "::1"}, 9)


# -- files ------------------------------------------------------------------------------------


def test_an_access_log_in_a_missing_directory_is_a_problem(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "nodir" / "access.log"
    assert problems(f"[ajpbalancer]\naccess_log = {path}\n" + FRONT) == [
        f"lb.ini:2: access_log: cannot create '{path}': there is no directory '{path.parent}'"
    ]


def test_an_access_log_that_is_a_directory_is_a_problem(tmp_path: pathlib.Path) -> None:
    assert problems(f"[ajpbalancer]\naccess_log = {tmp_path}\n" + FRONT) == [
        f"lb.ini:2: access_log: '{tmp_path}' is a directory, not a file"
    ]


def test_an_access_log_in_an_existing_directory_is_fine(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "access.log"
    assert parse(f"[ajpbalancer]\naccess_log = {path}\n" + FRONT, "x").settings.access_log == str(
        path
    )


USERS = "[ajpbalancer]\nadmin = tcp:8081:interface=127.0.0.1\nadmin_users = {path}\n" + FRONT


def test_admin_users_is_read_by_the_injected_check_and_its_problem_named() -> None:
    seen: list[str] = []

    def check(path: str) -> str | None:
        seen.append(path)
        return f"cannot read {path!r}: No such file or directory"

    found = problems(USERS.format(path="etc/none"), check_admin_users=check)
    assert seen == ["etc/none"]
    assert found == ["lb.ini:3: admin_users: cannot read 'etc/none': No such file or directory"]


def test_admin_users_is_not_read_without_the_check() -> None:
    config = parse(USERS.format(path="etc/none"), "lb.ini")
    assert config.settings.admin_users == "etc/none"


def write(path: pathlib.Path, text: str) -> str:
    path.write_text(text)
    return str(path)


SHA_USER = "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"  # password "password"
BCRYPT_USER = "dave:$2y$05$" + "a" * 53 + "\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "missing"), "cannot read '{d}/missing': No such file or directory"),
        (str, "cannot read '{d}': Is a directory"),
        (lambda d: write(d / "empty", ""), "{d}/empty: no users"),
        (lambda d: write(d / "comments", "# none\n\n"), "{d}/comments: no users"),
        (
            lambda d: write(d / "apr1", "alice:$apr1$xyz$0123456789abcdefghijkl\n"),
            "{d}/apr1:1: user 'alice': unsupported password hash ($apr1$, Apache's MD5)",
        ),
    ],
    ids=["missing", "directory", "empty", "only-comments", "apr1"],
)
def test_the_services_admin_users_check_names_what_is_wrong(
    tmp_path: pathlib.Path, make: Callable[[pathlib.Path], str], message: str
) -> None:
    from ajpbalancer.service import check_admin_users  # noqa: PLC0415

    found = check_admin_users(make(tmp_path))
    assert found is not None and found.startswith(message.format(d=tmp_path)), found


def test_the_services_admin_users_check_accepts_bcrypt_and_sha(tmp_path: pathlib.Path) -> None:
    from ajpbalancer.service import check_admin_users  # noqa: PLC0415

    assert check_admin_users(write(tmp_path / "users", SHA_USER + BCRYPT_USER)) is None


def test_load_config_checks_admin_users(tmp_path: pathlib.Path) -> None:
    from ajpbalancer.service import load_config  # noqa: PLC0415

    config = tmp_path / "lb.ini"
    config.write_text(USERS.format(path=tmp_path / "missing"))
    with pytest.raises(ConfigError) as info:
        load_config(str(config))
    assert [p.directive for p in info.value.problems] == ["admin_users"]


def test_a_reload_does_not_read_admin_users(tmp_path: pathlib.Path) -> None:
    """A reload keeps the admin listener (and its users) and may run as twistd's ``-u``
    user, who may not read the file: it is read at start only."""
    from ajpbalancer.service import load_config  # noqa: PLC0415

    config = tmp_path / "lb.ini"
    config.write_text(USERS.format(path=tmp_path / "missing"))
    assert load_config(str(config), starting=False).settings.admin_users == str(
        tmp_path / "missing"
    )
