"""The client side: the HTTP/1.1 server protocol that streams requests into exchanges."""

from __future__ import annotations

from ajpbalancer.frontend._protocol import (
    REASONS,
    Exchange,
    ExchangeFactory,
    FrontendProtocol,
    http_date,
)

__all__ = ["REASONS", "Exchange", "ExchangeFactory", "FrontendProtocol", "http_date"]
