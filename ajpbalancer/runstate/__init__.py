"""Runtime state: what balancer-manager changed, kept over reloads and restarts
(``BalancerPersist``) in a file or shared through Redis by every proxy naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ajpbalancer.config import Settings
from ajpbalancer.runstate._file import FileStore, StateFileError, decode, encode, threaded
from ajpbalancer.runstate._model import Entry, field_name, overlay, parse_field, verdict
from ajpbalancer.runstate._redis import RedisStore
from ajpbalancer.runstate._state import RunningProxy, RuntimeState, Store, StoreHealth


def open_runtime_state(
    reactor: Any,
    settings: Settings,
    running: Callable[[], RunningProxy | None],
    hostname: str,
) -> RuntimeState:
    """The runtime state ``settings`` ask for, with a file's values read back (blocking:
    at start); a Redis store connects at :meth:`RuntimeState.start`."""
    store: FileStore | RedisStore | None = None
    restored: tuple[list[Any], int] = ([], 0)
    if settings.balancer_persist and settings.state is not None:
        if settings.state.path is None:
            store = RedisStore(reactor, settings.state, settings.state_prefix)
        else:
            store = FileStore(reactor, settings.state.path, threaded(reactor))
            restored = store.load()
    state = RuntimeState(
        persist=settings.balancer_persist, running=running, store=store, hostname=hostname
    )
    state.restore(*restored)
    return state


__all__ = [
    "Entry",
    "FileStore",
    "RedisStore",
    "RuntimeState",
    "StateFileError",
    "Store",
    "StoreHealth",
    "decode",
    "encode",
    "field_name",
    "open_runtime_state",
    "overlay",
    "parse_field",
    "threaded",
    "verdict",
]
