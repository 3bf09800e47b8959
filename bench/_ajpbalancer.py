"""Starting ajpbalancer for the benchmarks, with directives that may not exist yet.

Some directives the benchmarks want (``KeepAliveTimeout``, ``MaxConnections``,
``LimitRequestBody``) are being added while the benchmarks are written: a config line
for one the installed ajpbalancer does not know makes it refuse to start ("unknown
directive"). `start_proxy` tries with every optional line, and leaves out the ones the
proxy names as unknown, one attempt per line at most.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from tests.integration.proxy import ProxyError, ProxyProcess

_UNKNOWN = re.compile(r"unknown directive '([A-Za-z_]+)'")


def start_proxy(
    config: str,
    optional: Mapping[str, str],
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> tuple[ProxyProcess, list[str]]:
    """Start ``twistd -n ajpbalancer`` with `config` plus the `optional` lines it accepts.

    `config` ends inside the section where the `optional` lines go (directive name ->
    whole line). Returns the started proxy and the names of the optional directives
    left out; raises `ProxyError` if it does not start for another reason. Each attempt
    gets its own directory under `workdir`; the caller stops the proxy. `env`: the
    proxy's whole environment (None: this process's).
    """
    wanted = dict(optional)
    dropped: list[str] = []
    for attempt in range(len(optional) + 1):
        directory = workdir / f"attempt-{attempt}"
        directory.mkdir(parents=True)
        text = config.rstrip("\n") + "\n" + "".join(line + "\n" for line in wanted.values())
        proxy = ProxyProcess(text, directory, env=env)
        try:
            return proxy.start(), dropped
        except ProxyError as exc:
            proxy.stop()
            unknown = [name for name in _UNKNOWN.findall(str(exc)) if name in wanted]
            if not unknown:
                raise
            for name in unknown:
                del wanted[name]
                dropped.append(name)
    raise ProxyError(f"ajpbalancer refused every optional directive: {', '.join(dropped)}")
