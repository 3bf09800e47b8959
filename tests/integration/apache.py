"""Run a real Apache httpd 2.4 on loopback as the reference reverse proxy, one ServerRoot each.

`Apache` writes a private ServerRoot (a temporary directory, or the ``base_dir`` given)
holding ``conf/httpd.conf``, an empty ``conf/mime.types``, ``logs/``, ``run/`` (the
DefaultRuntimeDir: pid file, and any runtime file a module wants) and ``lock/`` (file
mutexes); checks the configuration with ``apache2 -t``; starts ``apache2 -D FOREGROUND``
in a session of its own; waits until ``/server-status?auto`` answers; and stops the one
process group it started. Nothing of ``/etc/apache2``, ``apache2ctl`` or Debian's
``envvars`` is used: modules are loaded by absolute path from `MODULES_DIR`.

One ``VirtualHost`` on the listen address and port holds the directives given as
``proxy_config`` (see `ajp_proxy`, `http_proxy` and `ajp_balancer` for the usual ones);
with ``tls=True`` that virtual host speaks TLS through mod_ssl.

Debian's build (``apache2 -V``, ``apache2 -l``): the MPM is a loadable module,
mod_log_config, mod_logio, mod_unixd, mod_version and mod_watchdog are compiled in (so
every ``LoadModule`` here is wrapped in ``<IfModule !name_module>``), mutexes default to
pthread (no SysV semaphores to leak on SIGKILL), but slotmem_shm and mod_ssl's shmcb
create named POSIX shared memory (``/dev/shm/ShM.*``) that only a clean stop removes:
the SIGKILL path unlinks what the parent had mapped. Started as
root, Apache keeps the parent as root and runs its children as `RUN_USER`; it refuses to
serve as root, so ``User``/``Group`` are always written. The children open no path of
the ServerRoot (listeners, logs, shared memory and mutexes come from the parent), so it
may be private; but the one URL not proxied, ``/server-status``, is mapped under
DocumentRoot, which the children must be able to search: it is ``/``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import grp
import http.client
import ipaddress
import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ._server import ServerProcess
from .certs import make_cert
from .logfiles import parsed_lines, wait_for_entries

APACHE_BIN = Path(os.environ.get("AJPB_APACHE_BIN", "/usr/sbin/apache2"))
"""The httpd binary (Debian names it apache2)."""

MODULES_DIR = Path(os.environ.get("AJPB_APACHE_MODULES", "/usr/lib/apache2/modules"))
"""Where ``mod_*.so`` live (Debian: /usr/lib/apache2/modules)."""

MODULES = (
    "mpm_event",
    "authz_core",
    "mime",
    "log_config",
    "unixd",
    "proxy",
    "proxy_http",
    "proxy_ajp",
    "proxy_balancer",
    "lbmethod_byrequests",
    "slotmem_shm",
    "headers",
    "env",
    "setenvif",
    "status",
)
"""Modules every instance loads (a module compiled in is skipped by ``<IfModule>``).
mod_env and mod_setenvif let a ``proxy_config`` set mod_proxy's environment variables
(``proxy-nokeepalive``, ``force-proxy-request-1.0``, ``ap_trust_cgilike_cl``...)."""

TLS_MODULES = ("socache_shmcb", "ssl")
"""Modules a TLS instance loads as well (shmcb holds mod_ssl's session cache)."""

RUN_USERS = (("www-data", "www-data"), ("nobody", "nogroup"), ("nobody", "nobody"))
"""User and group for the children, the first pair that exists on this machine."""

MPM_CONFIG = """\
<IfModule mpm_event_module>
    StartServers 1
    ServerLimit 2
    ThreadLimit 32
    ThreadsPerChild 32
    MaxRequestWorkers 64
    MinSpareThreads 16
    MaxSpareThreads 64
    MaxConnectionsPerChild 0
</IfModule>"""
"""Sized for a 2-core test box: one child of 32 threads at start, at most two."""

ACCESS_LOG_FORMAT = (
    r"%a %{remote}p %{local}p %k %>s %B %D \"%r\" "
    r"\"%{BALANCER_WORKER_NAME}e\" \"%{BALANCER_WORKER_ROUTE}e\""
)
"""Client address and TCP port, local port, requests already served on this connection
(0 for its first), final status, body bytes, microseconds, request line, and for a
balancer the member (worker URL) and its route ("-" otherwise). See `AccessLogLine`."""

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CHECK_TIMEOUT = 10.0

_SAFE_TOKEN = re.compile(r'^[^\s"\\<>]+$')
"""A value written unquoted into a directive: no blanks, quotes, backslashes or <>."""

_SYNTAX_ERROR_LINE = re.compile(r"Syntax error on line (\d+) of (.+?):$", re.MULTILINE)

_ACCESS_LINE = re.compile(
    r'^(\S+) (\d+|-) (\d+|-) (\d+) (\d{3}|-) (\d+) (\d+) "((?:[^"\\]|\\.)*)" '
    r'"((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$'
)


class ApacheError(Exception):
    """Apache is missing, rejected its configuration, or did not start or stop."""

    def __init__(self, message: str, *, log_tail: str = "", bind_failed: bool = False) -> None:
        text = message
        if log_tail:
            text = f"{message}\n--- log tail ---\n{log_tail}"
        super().__init__(text)
        self.log_tail = log_tail
        self.bind_failed = bind_failed
        """True when the listener could not bind its port (another process holds it)."""


@dataclass(frozen=True, slots=True)
class AccessLogLine:
    """One request in Apache's access log (see `ACCESS_LOG_FORMAT`).

    Quoted fields keep Apache's escaping (``\\"``, ``\\xhh``) as logged.
    """

    remote_addr: str
    remote_port: int | None
    local_port: int | None
    keepalive_count: int
    """Requests served on this connection before this one (Apache's ``%k``)."""
    status: int | None
    bytes_sent: int
    duration_us: int
    request_line: str
    worker: str | None
    """The balancer member (its URL) that served, None when not balanced."""
    route: str | None
    """That member's route, None when not balanced or the member has none."""

    @property
    def method(self) -> str:
        return self.request_line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        """The request target as the client sent it, e.g. ``/app/echo?x=1``."""
        parts = self.request_line.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @classmethod
    def parse(cls, line: str) -> AccessLogLine | None:
        """Parse one log line; None if it does not have the expected fields."""
        match = _ACCESS_LINE.match(line)
        if match is None:
            return None
        addr, rport, lport, keepalive, status, size, duration, request, worker, route = (
            match.groups()
        )
        return cls(
            remote_addr=addr,
            remote_port=_int_or_none(rport),
            local_port=_int_or_none(lport),
            keepalive_count=int(keepalive),
            status=_int_or_none(status),
            bytes_sent=int(size),
            duration_us=int(duration),
            request_line=request,
            worker=None if worker == "-" else worker,
            route=None if route in ("-", "") else route,
        )


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


# --- locating Apache ----------------------------------------------------------------------


def module_path(name: str) -> Path:
    """``MODULES_DIR/mod_<name>.so``."""
    return MODULES_DIR / f"mod_{name}.so"


def check_installation(modules: Sequence[str] = MODULES + TLS_MODULES) -> None:
    """Raise `ApacheError` saying what is missing when httpd or a module is not installed.

    A module whose ``.so`` is absent is accepted when httpd has it compiled in.
    """
    if not APACHE_BIN.is_file() or not os.access(APACHE_BIN, os.X_OK):
        raise ApacheError(f"Apache httpd not installed: {APACHE_BIN} missing (apt install apache2)")
    missing = [
        name
        for name in modules
        if not module_path(name).is_file() and f"mod_{name}.c" not in compiled_in_modules()
    ]
    if missing:
        raise ApacheError(f"Apache modules missing from {MODULES_DIR}: {', '.join(missing)}")


@functools.cache
def compiled_in_modules() -> frozenset[str]:
    """The modules ``apache2 -l`` lists as compiled in (``mod_unixd.c``...)."""
    result = subprocess.run(
        [str(APACHE_BIN), "-l"],
        capture_output=True,
        text=True,
        check=False,
        timeout=CHECK_TIMEOUT,
        env=_environment(),
    )
    return frozenset(line.strip() for line in result.stdout.splitlines()[1:])


def run_user() -> tuple[str, str]:
    """The (user, group) the children run as: www-data, else nobody."""
    for user, group in RUN_USERS:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            grp.getgrnam(group)
            return user, group
    raise ApacheError(f"none of the users/groups {RUN_USERS} exists for Apache's children")


def _environment() -> dict[str, str]:
    """A minimal environment: Apache reads nothing from it but ``${VAR}`` in configs."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C"}


def free_port(address: str = "127.0.0.1") -> int:
    """A port the kernel reports free on `address` right now."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def _host(address: str) -> str:
    """`address` as it goes before ``:port``: IPv6 literals in brackets."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(address).version == 6:
            return f"[{address}]"
    return address


def _token(label: str, value: str) -> str:
    if not _SAFE_TOKEN.match(value):
        raise ValueError(f"{label} must have no blanks, quotes, backslashes or <>: {value!r}")
    return value


# --- configuration builders ---------------------------------------------------------------


def _target(url: str, path: str) -> str:
    """`url` with `path` appended when it has no path of its own (``ajp://h:p`` + ``/app``)."""
    _token("target URL", url)
    if urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + path
    return url


def ajp_proxy(
    target_ajp_url: str, path: str = "/app", secret: str | None = None, extra: str = ""
) -> str:
    """``ProxyPass``/``ProxyPassReverse`` of `path` to one AJP member.

    `target_ajp_url` is the member's ``ajp://host:port`` (as `Tomcat.ajp_url` gives it);
    with no path of its own, `path` is appended, so ``/app`` maps to ``/app`` on Tomcat.
    `secret` becomes the worker's ``secret=``; `extra` is appended to the ``ProxyPass``
    line as further worker parameters (``timeout=5 ping=2``...).
    """
    target = _target(target_ajp_url, path)
    params = f" secret={_token('secret', secret)}" if secret is not None else ""
    extra = f" {extra}" if extra else ""
    return f"ProxyPass {path} {target}{params}{extra}\nProxyPassReverse {path} {target}\n"


def http_proxy(target_http_url: str, path: str = "/app", extra: str = "") -> str:
    """``ProxyPass``/``ProxyPassReverse`` of `path` to one HTTP member (see `ajp_proxy`)."""
    target = _target(target_http_url, path)
    extra = f" {extra}" if extra else ""
    return f"ProxyPass {path} {target}{extra}\nProxyPassReverse {path} {target}\n"


def ajp_balancer(
    members: Sequence[tuple[str, str]],
    path: str = "/app",
    extra_member: str = "",
    proxyset: str = "",
    *,
    name: str = "cluster",
) -> str:
    """A ``<Proxy balancer://NAME>`` of `members` (URL, route) behind `path`.

    Member URLs are used as given (``ajp://host:port``; ``http://`` works the same);
    `extra_member` is appended to every ``BalancerMember`` line, `proxyset` is the
    balancer's ``ProxySet`` parameters (``stickysession=JSESSIONID|jsessionid``...).
    The balancer is mounted with ``ProxyPass PATH balancer://NAME{path}``.
    """
    balancer = f"balancer://{_token('balancer name', name)}"
    extra = f" {extra_member}" if extra_member else ""
    lines = [f"<Proxy {balancer}>"]
    for url, route in members:
        lines.append(
            f"    BalancerMember {_token('member URL', url)} route={_token('route', route)}{extra}"
        )
    if proxyset:
        lines.append(f"    ProxySet {proxyset}")
    lines.append("</Proxy>")
    lines.append(f"ProxyPass {path} {balancer}{path}")
    lines.append(f"ProxyPassReverse {path} {balancer}{path}")
    return "\n".join(lines) + "\n"


# --- the server ---------------------------------------------------------------------------


class Apache(ServerProcess):
    """One real Apache httpd 2.4 with its own ServerRoot, serving one virtual host.

    `start` writes the ServerRoot (first time only), checks the config, launches httpd
    and waits until it serves; `stop` ends it with SIGTERM, then SIGKILL to its process
    group. `close` (and leaving the ``with`` block) stops it and removes a ServerRoot it
    created itself, unless ``AJPB_KEEP_APACHE=1``.
    """

    def __init__(
        self,
        listen: str = "127.0.0.1",
        port: int | None = None,
        *,
        proxy_config: str,
        tls: bool = False,
        cert: tuple[Path, Path] | None = None,
        base_dir: Path | None = None,
    ) -> None:
        """Describe an instance; nothing is written or started until `start`.

        `listen` is the literal IP address of the one listener and virtual host (no name
        to resolve); `port` None means a free port picked now. `proxy_config` is written
        verbatim inside the ``VirtualHost``. With `tls`, `cert` is (key file, certificate file) as
        `certs.make_cert` returns them; None makes a self-signed one for ``localhost``
        and `listen`. `base_dir` is the ServerRoot to use (created if missing, never
        removed); None creates a temporary one.
        """
        if cert is not None and not tls:
            raise ValueError("cert given without tls=True")
        ipaddress.ip_address(listen)  # a literal address: Listen must not resolve names
        self.listen = listen
        self._port = port if port is not None else free_port(listen)
        self.proxy_config = proxy_config
        self.tls = tls
        self.cert = cert
        super().__init__(
            base_dir,
            keep_base=os.environ.get("AJPB_KEEP_APACHE") == "1",
            prefix="ajpb-apache-",
        )
        self._launched_at = 0.0
        self.startup_seconds: float | None = None
        """Seconds from launch to ready, for the last successful start."""

    def __repr__(self) -> str:
        return f"Apache({self.url!r}, pid={self.pid})"

    # -- properties

    @property
    def port(self) -> int:
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """``http(s)://LISTEN:PORT``, no trailing slash."""
        return f"{self.scheme}://{_host(self.listen)}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.base / "conf" / "httpd.conf"

    @property
    def error_log_path(self) -> Path:
        return self.base / "logs" / "error.log"

    @property
    def access_log_path(self) -> Path:
        return self.base / "logs" / "access.log"

    @property
    def console_path(self) -> Path:
        """httpd's own stdout and stderr (what it says before the error log is open)."""
        return self.base / "logs" / "console.log"

    # -- ServerRoot

    def prepare(self) -> None:
        """Write the ServerRoot: the config, an empty mime.types, logs/run/lock dirs.

        Nothing here needs to be reachable by the children's user: they open no path
        (listeners, logs, shared memory and mutexes are inherited from the root parent),
        so the ServerRoot may be private, pytest's ``tmp_path`` included.
        """
        modules = MODULES + (TLS_MODULES if self.tls else ())
        check_installation(modules)
        base = self.base
        for sub in ("conf", "logs", "run", "lock"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        if self.tls and self.cert is None:
            san_ip = sorted({self.listen, "127.0.0.1"})
            self.cert = make_cert(base / "conf", "localhost", san_ip=san_ip, san_dns=["localhost"])
        (base / "conf" / "mime.types").write_text("# no types: Apache only proxies here\n")
        self.config_path.write_text(self.httpd_conf())
        self._prepared = True

    def httpd_conf(self) -> str:
        """The ``conf/httpd.conf`` of this instance."""
        base = self.base
        modules = MODULES + (TLS_MODULES if self.tls else ())
        load = "\n".join(
            f"<IfModule !{name}_module>\n    LoadModule {name}_module {module_path(name)}\n"
            "</IfModule>"
            for name in modules
        )
        user, group = run_user()
        hostport = f"{_host(self.listen)}:{self.port}"
        tls_global = tls_vhost = ""
        if self.tls:
            assert self.cert is not None
            key, cert = self.cert
            tls_global = (
                f'SSLSessionCache "shmcb:{base}/run/ssl_scache(512000)"\n'
                "SSLSessionCacheTimeout 300\n"
            )
            tls_vhost = (
                "    SSLEngine on\n"
                f'    SSLCertificateFile "{cert}"\n'
                f'    SSLCertificateKeyFile "{key}"\n'
            )
        return f"""# Written by tests/integration/apache.py
ServerRoot "{base}"
DefaultRuntimeDir "{base}/run"
PidFile "{base}/run/httpd.pid"
Mutex "file:{base}/lock" default
User {user}
Group {group}
ServerName {self.listen}
ServerAdmin root@localhost

{load}

{MPM_CONFIG}

Listen {hostport}{" https" if self.tls else ""}
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
Timeout 60
HostnameLookups Off

ErrorLog "{base}/logs/error.log"
LogLevel warn
LogFormat "{ACCESS_LOG_FORMAT}" ajpb
CustomLog "{base}/logs/access.log" ajpb

TypesConfig "{base}/conf/mime.types"
# Nothing is served from disk. The one URL not proxied, /server-status, is still mapped
# below DocumentRoot, and the unprivileged children must be able to search that path
# (AH00035 otherwise): "/" is searchable wherever the ServerRoot is.
DocumentRoot "/"
<Directory />
    AllowOverride None
    Require all denied
</Directory>

ProxyStatus On
{tls_global}
<VirtualHost {hostport}>
    ServerName {self.listen}
{tls_vhost}
    <Location "/server-status">
        SetHandler server-status
        Require all granted
    </Location>
    ProxyPass /server-status !

    # --- proxy_config
{self.proxy_config}
</VirtualHost>
"""

    # -- process control

    def check_config(self) -> None:
        """Run ``apache2 -t`` on the config; raise `ApacheError` with its output if rejected."""
        if not self._prepared:
            self.prepare()
        try:
            result = subprocess.run(
                [str(APACHE_BIN), "-t", "-d", str(self.base), "-f", str(self.config_path)],
                capture_output=True,
                text=True,
                check=False,
                timeout=CHECK_TIMEOUT,
                env=_environment(),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise ApacheError(f"apache2 -t did not finish in {CHECK_TIMEOUT:.0f} s") from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ApacheError(
                f"apache2 -t rejected {self.config_path} (exit {result.returncode})"
                f"{self._quote_config_line(output)}",
                log_tail=output,
            )

    def _quote_config_line(self, output: str) -> str:
        """``: line N is '...'`` for the config line httpd's `output` names, else empty."""
        match = _SYNTAX_ERROR_LINE.search(output)
        if match is None or Path(match.group(2)) != self.config_path:
            return ""
        number = int(match.group(1))
        lines = self.config_path.read_text().splitlines()
        if not 0 < number <= len(lines):
            return ""
        return f": line {number} is {lines[number - 1].strip()!r}"

    def launch(self) -> None:
        """Check the config and start httpd; return at once (`wait_ready` waits)."""
        if self.running:
            raise ApacheError(f"Apache already running (pid {self.pid})")
        self.check_config()
        with self.console_path.open("ab") as console:
            self._process = subprocess.Popen(
                [
                    str(APACHE_BIN),
                    "-D",
                    "FOREGROUND",
                    "-d",
                    str(self.base),
                    "-f",
                    str(self.config_path),
                ],
                cwd=self.base,
                env=_environment(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the children go with it
            )
        self._launched_at = time.monotonic()
        _LAUNCHED.add(self)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``GET /server-status?auto`` answers 200 on the listener.

        Raise `ApacheError` with the log tail (after killing the process) if httpd exits
        or is not ready within `timeout` seconds.
        """
        process = self._process
        if process is None:
            raise ApacheError("Apache was not launched")
        deadline = self._launched_at + timeout
        while True:
            code = process.poll()
            if code is not None:
                tail = self.error_log_tail()
                raise ApacheError(
                    f"Apache exited with status {code} while starting",
                    log_tail=tail,
                    bind_failed="could not bind" in tail or "Address already in use" in tail,
                )
            status, last = self._readiness()
            if status == 200:
                self.startup_seconds = time.monotonic() - self._launched_at
                return
            if status is not None:  # serving, but not the status page: no use waiting
                self.kill()
                raise ApacheError(f"Apache serves, but {last}", log_tail=self.error_log_tail())
            if time.monotonic() > deadline:
                self.kill()
                raise ApacheError(
                    f"Apache not ready after {timeout:.0f} s ({last})",
                    log_tail=self.error_log_tail(),
                )
            time.sleep(0.05)

    def _readiness(self) -> tuple[int | None, str]:
        """The status of ``GET /server-status?auto`` (None if no answer) and a description."""
        try:
            status, _ = self.request("GET", "/server-status?auto", timeout=2.0)
        except (OSError, http.client.HTTPException) as exc:
            return None, f"GET {self.url}/server-status failed: {exc!r}"
        return status, f"GET {self.url}/server-status answered {status}"

    def start(self) -> Apache:
        """Launch and wait until ready; return self."""
        self.launch()
        self.wait_ready()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the httpd parent; SIGKILL its process group after `timeout` s."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process group of the parent started (it and its children), reap it.

        This is also what `stop` falls back to and what a failed start does. Named
        shared memory (APR's ``/dev/shm/ShM.*``, of slotmem_shm and mod_ssl's cache) is
        unlinked by httpd only on a clean stop: the objects the parent had mapped are
        unlinked here once it is dead.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return  # reaped: its pid, and so the group id, may belong to another by now
        shm = posix_shm_of(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
        # The children die of the same SIGKILL, but asynchronously: wait (bounded) for them.
        deadline = time.monotonic() + STOP_TIMEOUT
        while group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        for path in shm:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- clients

    def connection(
        self, timeout: float = 30.0, source_address: tuple[str, int] | None = None
    ) -> http.client.HTTPConnection:
        """A new client connection to the listener, from `source_address` if given.

        With `tls` it is an HTTPS connection that accepts any certificate.
        """
        if self.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(
                self.listen,
                self.port,
                timeout=timeout,
                source_address=source_address,
                context=context,
            )
        return http.client.HTTPConnection(
            self.listen, self.port, timeout=timeout, source_address=source_address
        )

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, bytes]:
        """One request on a new connection: the status and the whole body."""
        conn = self.connection(timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    # -- logs

    def error_log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of httpd's console output and of its error log."""
        parts = []
        for path in (self.console_path, self.error_log_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                tail = "\n".join(text.splitlines()[-lines:])
                parts.append(f"[{path.name}]\n{tail}")
        return "\n".join(parts) if parts else "(no output from httpd)"

    def access_log_lines(
        self, min_count: int = 0, timeout: float = 5.0, target_contains: str | None = None
    ) -> list[AccessLogLine]:
        """Parsed access log, oldest first; only targets containing `target_contains`.

        Apache logs a request after the response is sent, which the client may see
        first: with `min_count`, wait up to `timeout` s for at least that many lines.
        """
        return wait_for_entries(
            lambda: parsed_lines(self.access_log_path, AccessLogLine.parse),
            lambda entry: target_contains is None or target_contains in entry.target,
            min_count,
            timeout,
        )


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes in process group `pgid` (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # pid (comm) state ppid pgrp ...: comm may hold blanks, split after the ')'
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def posix_shm_of(pid: int) -> set[Path]:
    """The ``/dev/shm`` objects process `pid` has mapped (empty if it is gone)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return set()
    found = set()
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
            found.add(Path(fields[5]))
    return found


_LAUNCHED: weakref.WeakSet[Apache] = weakref.WeakSet()
"""Every instance launched by this process, for `_kill_leftovers`."""


@atexit.register
def _kill_leftovers() -> None:
    """At interpreter exit, SIGKILL instances still running (a test run interrupted)."""
    for apache in list(_LAUNCHED):
        with contextlib.suppress(OSError):
            apache.kill()
