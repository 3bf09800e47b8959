"""``tunnel.SwitchedConnection``, the one tunnel end, on a memory transport: what it
holds before a peer is attached, how it pauses, half-closes, closes and reports."""

from __future__ import annotations

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol

from ajpbalancer._transport import Outbox
from ajpbalancer.tunnel import EARLY_LIMIT, Switchable, SwitchedConnection
from tests.unit.proxyharness import HalfCloseTransport, Transport


class Peer:
    def __init__(self) -> None:
        self.got: list[object] = []

    def received(self, data: bytes) -> None:
        self.got.append(data)

    def read_closed(self) -> None:
        self.got.append("FIN")

    def lost(self, clean: bool) -> None:
        self.got.append(("lost", clean))


def test_what_comes_before_a_peer_is_held_and_handed_over_in_order() -> None:
    end = SwitchedConnection(Transport(), Outbox(), b"early", half_close=False)
    end.received(b" more")
    end.read_lost()
    end.connection_lost(False)
    peer = Peer()
    end.attach(peer)
    assert peer.got == [b"early", b" more", "FIN", ("lost", False)]


def test_too_much_before_a_peer_pauses_reading_until_one_is_attached() -> None:
    transport = Transport()
    end = SwitchedConnection(transport, Outbox(), half_close=False)
    end.received(b"x" * EARLY_LIMIT)
    assert transport.producerState == "producing"
    end.received(b"y")
    assert transport.producerState == "paused"
    end.attach(Peer())
    assert transport.producerState == "producing"


def test_the_tunnels_pause_outlasts_the_end_of_holding() -> None:
    transport = Transport()
    end = SwitchedConnection(transport, Outbox(), half_close=False)
    end.received(b"x" * (EARLY_LIMIT + 1))

    class Pausing(Peer):
        def received(self, data: bytes) -> None:
            super().received(data)
            end.pause_reading()  # the other end is full already

    end.attach(Pausing())
    assert transport.producerState == "paused"
    end.resume_reading()
    assert transport.producerState == "producing"


def test_no_reading_again_after_the_fin() -> None:
    transport = Transport()
    end = SwitchedConnection(transport, Outbox(), half_close=True)
    end.attach(Peer())
    end.pause_reading()
    end.read_lost()
    transport.producerState = "paused by the reactor's end of input"
    end.resume_reading()
    assert transport.producerState == "paused by the reactor's end of input"


def test_close_write_half_closes_where_the_transport_can() -> None:
    transport = HalfCloseTransport()
    end = SwitchedConnection(transport, Outbox(), half_close=True)
    end.register_producer(Peer())  # type: ignore[arg-type]  # any producer
    assert end.close_write()
    assert transport.write_closed and transport.producer is None
    end.write(b"too late")
    assert transport.value() == b""
    assert not SwitchedConnection(Transport(), Outbox(), half_close=False).close_write()


def test_close_flushes_what_the_outbox_holds_and_abort_drops_it() -> None:
    outbox = Outbox()
    closing, aborting = Transport(), Transport()
    outbox.hold()
    SwitchedConnection(closing, outbox, half_close=False).write(b"kept")
    SwitchedConnection(aborting, outbox, half_close=False).write(b"dropped")
    SwitchedConnection(closing, outbox, half_close=False).close()
    SwitchedConnection(aborting, outbox, half_close=False).abort()
    outbox.release()
    assert closing.value() == b"kept" and closing.closed
    assert aborting.value() == b"" and aborting.aborted


def test_a_gone_connection_is_reported_once_and_written_to_no_more() -> None:
    transport = Transport()
    end = SwitchedConnection(transport, Outbox(), half_close=False)
    peer = Peer()
    end.attach(peer)
    end.connection_lost(True)
    end.connection_lost(False)
    end.write(b"x")
    end.close()
    assert peer.got == [("lost", True)]
    assert transport.value() == b"" and not transport.closed


def test_a_connection_hears_half_close_only_once_switched_over_a_transport_that_can() -> None:
    # Twisted asks IHalfCloseableProtocol(protocol, None) when a FIN arrives: an HTTP
    # connection must end there, a switched one keep writing.
    protocol = Switchable()
    assert IHalfCloseableProtocol(protocol, None) is None
    protocol.become_tunnel_end(Transport(), Outbox(), b"")  # TLS-like: cannot half-close
    assert IHalfCloseableProtocol(protocol, None) is None
    other = Switchable()
    other.become_tunnel_end(HalfCloseTransport(), Outbox(), b"")
    assert IHalfCloseableProtocol(other, None) is other


def test_half_close_reaches_an_endpoint_wrapper_too() -> None:
    protocol, wrapper = Switchable(), Protocol()
    wrapper.readConnectionLost = lambda: None  # type: ignore[attr-defined]  # a forwarder
    transport = HalfCloseTransport()
    transport.protocol = wrapper
    protocol.become_tunnel_end(transport, Outbox(), b"")
    assert IHalfCloseableProtocol.providedBy(wrapper)
