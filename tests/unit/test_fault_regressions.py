"""Regressions found by fault injection and the soak benchmark, in the in-memory proxy."""

from __future__ import annotations

from tests.unit.proxyharness import Harness, response


def test_member_backpressure_left_at_the_end_of_a_body_does_not_stall_the_next_request() -> None:
    """The member transport paused the client's body and the request ended before it
    resumed (its producer was unregistered with the body's end): the next request on the
    kept-alive client connection is still read and forwarded, not left unread until
    KeepAliveTimeout closes the connection (found by ``bench/soak.py``)."""
    h = Harness()
    proto, client = h.client()
    proto.dataReceived(b"POST /direct/up HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
    member = h.accept_member()
    producer = member.transport.producer
    assert producer is not None
    producer.pauseProducing()  # the member's write buffer is full
    proto.dataReceived(b"body")
    assert member.sent().endswith(b"body")
    member.reply(response(b"done"))
    assert b"done" in client.value()
    client.clear()
    proto.dataReceived(b"GET /direct/next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"GET /d/next " in member.sent()
    assert client.producerState == "producing"
