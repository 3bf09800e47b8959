"""Coverage-guided fuzzing of the AJP13 codec and the request front end with atheris.

    python bench/fuzz_atheris.py ajp-client -max_total_time=60
    python bench/fuzz_atheris.py ajp-container -max_total_time=60
    python bench/fuzz_atheris.py frontend -max_total_time=60

The target name comes first; every other argument goes to libFuzzer (``-max_total_time``
bounds the run; ``-runs=N`` bounds the inputs; a corpus directory may follow). Each input
is fed in random pieces. What may come out is fixed: the codec raises only
``AJPProtocolError`` and buffers at most one packet; the front end raises nothing, answers
a 4xx (closing the connection) or passes a request on, and buffers no more than its head
limit plus one read. Anything else is a crash that libFuzzer reports with the input that
caused it. Not part of the test suite (the Hypothesis tests in ``tests/unit/test_fuzz.py``
are): this runs for as long as it is given.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports():
    from ajpbalancer.ajp import (
        AJPProtocolError,
        ClientConnection,
        ForwardRequest,
        ServerConnection,
    )
    from ajpbalancer.h1 import DEFAULT_LIMITS
    from tests.unit.proxyharness import Harness

PACKET = 8192
GET = ForwardRequest(
    method=b"GET",
    uri=b"/app/echo",
    remote_addr=b"127.0.0.1",
    server_name=b"localhost",
    server_port=8080,
    is_ssl=False,
    headers=((b"Host", b"localhost"),),
)


def _pieces(data: bytes, fdp: atheris.FuzzedDataProvider) -> list[bytes]:
    out: list[bytes] = []
    while data:
        n = fdp.ConsumeIntInRange(1, max(1, len(data)))
        out.append(data[:n])
        data = data[n:]
    return out


def ajp_client(raw: bytes) -> None:
    """The web-server end, waiting for an answer, fed arbitrary container bytes."""
    fdp = atheris.FuzzedDataProvider(raw)
    conn = ClientConnection(PACKET)
    conn.send(GET)
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        for piece in _pieces(payload, atheris.FuzzedDataProvider(raw[:64])):
            conn.receive_data(piece)
    except AJPProtocolError:
        return


def ajp_container(raw: bytes) -> None:
    """The container end fed arbitrary web-server bytes."""
    fdp = atheris.FuzzedDataProvider(raw)
    conn = ServerConnection(PACKET)
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    try:
        for piece in _pieces(payload, atheris.FuzzedDataProvider(raw[:64])):
            conn.receive_data(piece)
    except AJPProtocolError:
        return


def frontend(raw: bytes) -> None:
    """The client side of the proxy, in memory, fed arbitrary request bytes."""
    fdp = atheris.FuzzedDataProvider(raw)
    harness = Harness()
    proto, client = harness.client()
    limit = DEFAULT_LIMITS.max_head
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    for piece in _pieces(payload, atheris.FuzzedDataProvider(raw[:64])):
        proto.dataReceived(piece)
        if len(proto._buf) > limit + len(piece):  # bounded buffering, whatever arrives
            raise AssertionError(f"front end buffered {len(proto._buf)} bytes")
        if client.closed:
            break
    answer = client.value()
    if answer and not answer.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"not an HTTP answer: {answer[:80]!r}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ajp-client": ajp_client,
    "ajp-container": ajp_container,
    "frontend": frontend,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
