"""``upgrade=``, ``upgradeurl=`` and ``ProxyWebsocketIdleTimeout``: parsed, checked with
``file:line`` problems, and the protocol match Apache's ``upgrade=`` makes."""

from __future__ import annotations

import pytest

from ajpbalancer.config import ConfigError, MemberParams, parse, summary
from ajpbalancer.config._values import URL, Scheme

FRONT = "[frontend]\nlisten = tcp:8080\nProxyPass = / balancer://c\n"


def with_member(line: str, front: str = FRONT) -> str:
    return front + "[balancer://c]\nBalancerMember = " + line + "\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "lb.ini")
    return [str(p) for p in info.value.problems]


def params(line: str) -> MemberParams:
    return parse(with_member(line), "lb.ini").balancers[0].members[0].params


def test_upgrade_is_a_list_of_protocols_lower_cased() -> None:
    assert params("http://h upgrade=WebSocket,chat/2").upgrade == ("websocket", "chat/2")
    assert params("https://h upgrade=*").upgrade == ("*",)
    assert params("http://h").upgrade == ()


@pytest.mark.parametrize("value", ["*,websocket", "web socket", "a,,b", "a/", "/b"])
def test_a_malformed_upgrade_list_is_refused(value: str) -> None:
    found = problems(with_member(f"http://h 'upgrade={value}'"))
    assert len(found) == 1
    assert found[0].startswith("lb.ini:5: BalancerMember: upgrade must be protocol names")


def test_an_ajp_member_upgrades_over_its_upgradeurl() -> None:
    p = params("ajp://h:8009 upgrade=websocket upgradeurl=http://h:8080/")
    assert p.upgradeurl == URL(Scheme.HTTP, "h", 8080, "")


def test_upgrade_on_an_ajp_member_without_upgradeurl_is_an_error() -> None:
    assert problems(with_member("ajp://h:8009 route=n1 upgrade=websocket")) == [
        "lb.ini:5: BalancerMember: upgrade on an ajp:// member needs "
        "upgradeurl=http://HOST:PORT (the node's HTTP connector): AJP13 cannot carry an upgrade"
    ]


def test_upgradeurl_without_upgrade_is_an_error() -> None:
    assert problems(with_member("ajp://h:8009 upgradeurl=http://h:8080")) == [
        "lb.ini:5: BalancerMember: upgradeurl has no effect without upgrade=…"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "ajp://h upgrade=websocket upgradeurl=http://h:8080/app",
            "upgradeurl must be http://HOST:PORT or https://HOST:PORT (no path)",
        ),
        (
            "ajp://h upgrade=websocket upgradeurl=ajp://h:8009",
            "upgradeurl must be http://HOST:PORT or https://HOST:PORT (no path)",
        ),
        ("http://h upgradeurl=http://h:8080", "upgradeurl is only for ajp:// URLs, not http://"),
    ],
)
def test_a_wrong_upgradeurl_is_reported_once(line: str, message: str) -> None:
    found = problems(with_member(line))
    assert len(found) == 1 and message in found[0], found


def test_a_direct_target_takes_upgrade() -> None:
    config = parse(
        "[frontend]\nlisten = tcp:8080\nProxyPass = /ws http://h:8080/ws upgrade=websocket\n",
        "lb.ini",
    )
    assert config.frontends[0].rules[0].params.upgrade == ("websocket",)


def test_proxywebsocketidletimeout_is_a_frontend_duration() -> None:
    config = parse(
        FRONT + "ProxyWebsocketIdleTimeout = 1500ms\n" + with_member("http://h", ""), "x"
    )
    assert config.frontends[0].websocket_idle_timeout == 1.5
    assert parse(with_member("http://h"), "x").frontends[0].websocket_idle_timeout is None
    found = problems(FRONT + "ProxyWebsocketIdleTimeout = soon\n" + with_member("http://h", ""))
    assert found[0].startswith("lb.ini:4: ProxyWebsocketIdleTimeout: ")


def test_check_shows_the_upgrades() -> None:
    text = summary(
        parse(with_member("ajp://h:8009 upgrade=websocket upgradeurl=http://h:8080"), "x")
    )
    assert "  member ajp://h:8009 route - loadfactor 1 upgrade websocket via http://h:8080" in text


@pytest.mark.parametrize(
    ("allowed", "offer", "switches"),
    [
        (("websocket",), b"websocket", True),
        (("websocket",), b"WebSocket", True),
        (("websocket",), b"h2c, websocket", True),
        (("websocket",), b"websocket/13", True),
        (("websocket",), b"h2c", False),
        (("websocket",), b"", False),
        (("*",), b"anything", True),
        ((), b"websocket", False),
    ],
)
def test_which_offers_a_member_may_switch_to(
    allowed: tuple[str, ...], offer: bytes, switches: bool
) -> None:
    assert MemberParams(upgrade=allowed).can_upgrade(offer) is switches
