"""A strict, sans-I/O HTTP/1.1 codec: message heads and body framing, no networking."""

from __future__ import annotations

from ajpbalancer.h1._body import (
    BodyReader,
    ChunkedReader,
    CloseDelimitedReader,
    ContentLengthReader,
    request_body_reader,
    response_body_reader,
)
from ajpbalancer.h1._errors import HTTPProtocolError
from ajpbalancer.h1._head import (
    DEFAULT_LIMITS,
    Headers,
    HeadLimits,
    RequestHead,
    ResponseHead,
    find_head_end,
    header_get,
    header_values,
    parse_request_head,
    parse_request_line,
    parse_response_head,
    serialize_request_head,
    serialize_response_head,
)

__all__ = [
    "DEFAULT_LIMITS",
    "BodyReader",
    "ChunkedReader",
    "CloseDelimitedReader",
    "ContentLengthReader",
    "HTTPProtocolError",
    "HeadLimits",
    "Headers",
    "RequestHead",
    "ResponseHead",
    "find_head_end",
    "header_get",
    "header_values",
    "parse_request_head",
    "parse_request_line",
    "parse_response_head",
    "request_body_reader",
    "response_body_reader",
    "serialize_request_head",
    "serialize_response_head",
]
