"""Run real Tomcat 10 servers on loopback for integration tests, one CATALINA_BASE each.

`Tomcat` writes a private CATALINA_BASE (server.xml with one HTTP/1.1 and one AJP/1.3
connector bound to a loopback address, the test webapp at ``/app``, an access log that
records the client port and the connection id), starts Tomcat with the system's
CATALINA_HOME, waits until both connectors answer, and stops, kills, pauses or resumes the
one process it started. `build_webapp` compiles the test webapp under
``tests/integration/webapp/`` once per machine, cached by a hash of its sources.

Debian's tomcat10 package has no ``conf/`` in CATALINA_HOME: the configuration templates
live in ``/usr/share/tomcat10/etc`` (world-readable) and ``/etc/tomcat10`` (group tomcat).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ._server import ServerProcess
from .logfiles import parsed_lines, wait_for_entries

CATALINA_HOME = Path(os.environ.get("AJPB_CATALINA_HOME", "/usr/share/tomcat10"))
"""The Tomcat installation (binaries and jars), shared by every node."""

CONFIG_TEMPLATE_DIRS = (
    CATALINA_HOME / "conf",
    CATALINA_HOME / "etc",
    Path("/etc/tomcat10"),
    CATALINA_HOME / "skel" / "conf",
)
"""Where Tomcat's own ``web.xml`` and ``catalina.properties`` are looked for, in order."""

SERVLET_API_JARS = (
    CATALINA_HOME / "lib" / "servlet-api.jar",
    Path("/usr/share/java/tomcat10-servlet-api.jar"),
)

WEBSOCKET_API_JARS = (
    (
        CATALINA_HOME / "lib" / "websocket-api.jar",
        Path("/usr/share/java/tomcat10-websocket-api.jar"),
    ),
    (
        CATALINA_HOME / "lib" / "websocket-client-api.jar",
        Path("/usr/share/java/tomcat10-websocket-client-api.jar"),
    ),
)
"""The Jakarta WebSocket API (2.1 splits it in two: server and client), which the webapp's
echo endpoint is compiled against, each with the places it is looked for; Tomcat ships
its implementation, tomcat-websocket.jar, in the same directory."""

WEBAPP_SOURCE = Path(__file__).resolve().parent / "webapp"
"""The test webapp: ``WEB-INF/web.xml`` and ``src/**/*.java``."""

REPO_ROOT = Path(__file__).resolve().parents[2]

JAVA_OPTS = "-Xmx256m -Xss512k -XX:+UseSerialGC -Djava.security.egd=file:/dev/./urandom"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

ACCESS_LOG_PATTERN = "%a %{remote}p %{peer}a %{local}p %I %{c}L %m %U %q %H %s %b %D"
"""Client address and port (for AJP: as the proxy forwarded them), TCP peer address, local
port (for AJP: the forwarded server port), thread name (tells the connector), connection
id (one per TCP connection, counted per connector), method, path, query ("-" or "?..."),
protocol, status, bytes, microseconds."""

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
"""Node names and jvmRoutes go on the JVM command line, which catalina.sh evals."""

AJP_CPING = bytes.fromhex("123400010a")
AJP_CPONG = bytes.fromhex("4142000109")


class TomcatError(Exception):
    """Tomcat is missing, could not be configured, or did not start or stop as expected."""

    def __init__(self, message: str, *, log_tail: str = "", bind_failed: bool = False) -> None:
        text = message
        if log_tail:
            text = f"{message}\n--- log tail ---\n{log_tail}"
        super().__init__(text)
        self.log_tail = log_tail
        self.bind_failed = bind_failed
        """True when a connector could not bind its port (another process holds it)."""


@dataclass(frozen=True, slots=True)
class AccessLogLine:
    """One request in a node's access log (see `ACCESS_LOG_PATTERN`)."""

    remote_addr: str
    remote_port: int | None
    peer_addr: str
    local_port: int | None
    thread: str
    connection_id: str
    method: str
    path: str
    """Path and query, e.g. ``/app/echo?x=1``."""
    protocol: str
    status: int | None
    bytes_sent: int
    duration_us: int | None

    @property
    def connector(self) -> str:
        """``"ajp"`` or ``"http"``: which connector served the request."""
        return "ajp" if self.thread.startswith("ajp-") else "http"

    @property
    def connection(self) -> tuple[str, str]:
        """Identifies the TCP connection: (connector, connection id)."""
        return self.connector, self.connection_id

    @classmethod
    def parse(cls, line: str) -> AccessLogLine | None:
        """Parse one log line; None if it does not have the expected fields."""
        fields = line.split()
        if len(fields) != 13:
            return None
        (
            remote_addr,
            remote_port,
            peer_addr,
            local_port,
            thread,
            connection_id,
            method,
            path,
            query,
            protocol,
            status,
            size,
            duration,
        ) = fields
        return cls(
            remote_addr=remote_addr,
            remote_port=_int_or_none(remote_port),
            peer_addr=peer_addr,
            local_port=_int_or_none(local_port),
            thread=thread,
            connection_id=connection_id,
            method=method,
            path=path if query == "-" else path + query,
            protocol=protocol,
            status=_int_or_none(status),
            bytes_sent=_int_or_none(size) or 0,
            duration_us=_int_or_none(duration),
        )


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


# --- locating Tomcat ----------------------------------------------------------------------


def find_config_template(name: str) -> Path:
    """Tomcat's own copy of conf file `name` (``web.xml``, ``catalina.properties``...)."""
    for directory in CONFIG_TEMPLATE_DIRS:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.R_OK):
            return candidate
    searched = ", ".join(str(d) for d in CONFIG_TEMPLATE_DIRS)
    raise TomcatError(f"Tomcat config template {name} not found in {searched}")


def servlet_api_jar() -> Path:
    """The jakarta servlet API jar to compile the test webapp against."""
    for candidate in SERVLET_API_JARS:
        if candidate.is_file():
            return candidate.resolve()
    raise TomcatError(f"servlet API jar not found: {', '.join(map(str, SERVLET_API_JARS))}")


def websocket_api_jars() -> list[Path]:
    """The Jakarta WebSocket API jars to compile the test webapp's endpoint against."""
    found: list[Path] = []
    for candidates in WEBSOCKET_API_JARS:
        jar = next((c for c in candidates if c.is_file()), None)
        if jar is None:
            raise TomcatError(f"WebSocket API jar not found: {', '.join(map(str, candidates))}")
        found.append(jar.resolve())
    return found


def check_installation() -> None:
    """Raise `TomcatError` saying what is missing when Tomcat or a JDK is not installed."""
    catalina_sh = CATALINA_HOME / "bin" / "catalina.sh"
    if not catalina_sh.is_file():
        raise TomcatError(f"Tomcat not installed: {catalina_sh} missing (apt install tomcat10)")
    if not (CATALINA_HOME / "bin" / "bootstrap.jar").is_file():
        raise TomcatError(f"Tomcat not installed: {CATALINA_HOME}/bin/bootstrap.jar missing")
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            raise TomcatError(f"{tool} not on PATH (apt install openjdk-17-jdk-headless)")
    servlet_api_jar()
    websocket_api_jars()
    find_config_template("web.xml")


# --- the test webapp ----------------------------------------------------------------------


def _cache_root() -> Path:
    override = os.environ.get("AJPB_TEST_CACHE")
    return Path(override) if override else REPO_ROOT / "tests" / ".cache"


def _webapp_sources() -> list[Path]:
    return sorted(p for p in WEBAPP_SOURCE.rglob("*") if p.is_file())


def webapp_hash() -> str:
    """Hash of the webapp sources, the API jars and the compiler used."""
    digest = hashlib.sha256()
    javac = shutil.which("javac")
    digest.update(f"javac={Path(javac).resolve() if javac else None}\0".encode())
    digest.update(f"api={servlet_api_jar()}\0ws={websocket_api_jars()}\0".encode())
    for path in _webapp_sources():
        digest.update(str(path.relative_to(WEBAPP_SOURCE)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def build_webapp(cache_root: Path | None = None) -> Path:
    """Compile the test webapp if not cached yet; return the exploded webapp directory.

    The result holds ``WEB-INF/web.xml`` and ``WEB-INF/classes``; it is built in a
    scratch directory and renamed into place, so concurrent builders never see half of it.
    """
    root = cache_root or _cache_root()
    target = root / f"webapp-{webapp_hash()}"
    if (target / "WEB-INF" / "web.xml").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="webapp-build-", dir=root))
    try:
        classes = scratch / "WEB-INF" / "classes"
        classes.mkdir(parents=True)
        shutil.copy2(WEBAPP_SOURCE / "WEB-INF" / "web.xml", scratch / "WEB-INF" / "web.xml")
        sources = [str(p) for p in _webapp_sources() if p.suffix == ".java"]
        cmd = [
            "javac",
            "--release",
            "17",
            "-encoding",
            "UTF-8",
            "-Xlint:all,-serial",
            "-cp",
            ":".join(map(str, [servlet_api_jar(), *websocket_api_jars()])),
            "-d",
            str(classes),
            *sources,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TomcatError(f"javac failed:\n{result.stdout}{result.stderr}")
        try:
            scratch.rename(target)
        except OSError:
            if not (target / "WEB-INF" / "web.xml").is_file():
                raise
        return target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- ports and probes ---------------------------------------------------------------------


def port_is_free(address: str, port: int) -> bool:
    """True if a listener could bind `address`:`port` (SO_REUSEADDR, as Tomcat binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
        return True


def find_free_ports(
    addresses: Sequence[str],
    preferred: Sequence[int] = (18080, 18009),
    exclude: Iterable[int] = (),
) -> tuple[int, ...]:
    """Ports, one per entry of `preferred`, free on every address in `addresses`.

    Tries `preferred` as given, then the same ports shifted by 1, 2, ... 200, then
    ports the kernel picks. Ports in `exclude` are never returned.
    """
    excluded = set(exclude)

    def usable(ports: Sequence[int]) -> bool:
        return (
            len(set(ports)) == len(ports)
            and not excluded.intersection(ports)
            and all(0 < p < 65536 for p in ports)
            and all(port_is_free(a, p) for a in addresses for p in ports)
        )

    for shift in range(201):
        ports = tuple(p + shift for p in preferred)
        if usable(ports):
            return ports
    for _ in range(50):
        ports = tuple(_kernel_port(addresses[0]) for _ in preferred)
        if usable(ports):
            return ports
    raise TomcatError(f"no free ports on {', '.join(addresses)}")


def _kernel_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def ajp_cping(address: str, port: int, timeout: float = 2.0) -> bool:
    """Send an AJP CPING on a new connection; True if the answer is exactly CPONG."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.sendall(AJP_CPING)
            answer = b""
            while len(answer) < len(AJP_CPONG):
                chunk = sock.recv(len(AJP_CPONG) - len(answer))
                if not chunk:
                    break
                answer += chunk
            return answer == AJP_CPONG
    except OSError:
        return False


def _http_probe(address: str, port: int, timeout: float) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/app/")
        resp = conn.getresponse()
        return resp.status, resp.getheader("X-Node"), resp.read()
    finally:
        conn.close()


# --- the server ---------------------------------------------------------------------------


class Tomcat(ServerProcess):
    """One real Tomcat 10 with its own CATALINA_BASE, bound to one loopback address.

    `start` writes the base (first time only), launches Tomcat and waits until it serves;
    `stop` ends it gracefully, `kill` abruptly; `pause`/`resume` freeze and thaw the JVM
    (a hung member: the kernel still accepts connections, nothing answers). A stopped or
    killed node can be started again on the same base and ports. `close` (and leaving the
    ``with`` block) stops it and removes a base it created itself, unless
    ``AJPB_KEEP_TOMCAT=1``.
    """

    def __init__(
        self,
        name: str,
        address: str,
        http_port: int,
        ajp_port: int,
        *,
        jvm_route: str | None = None,
        ajp_secret: str | None = None,
        ajp_packet_size: int = 8192,
        base_dir: Path | str | None = None,
        ajp_tomcat_authentication: bool = False,
        start_timeout: float = START_TIMEOUT,
        keep_base: bool | None = None,
    ) -> None:
        """Describe a node; nothing is written or started until `start`.

        `base_dir` is the CATALINA_BASE to use (created if missing, never removed); when
        None a temporary one is created by `start`. `ajp_tomcat_authentication=False`
        (the default) lets the remote user forwarded over AJP reach the webapp.
        """
        for label, value in (("name", name), ("jvm_route", jvm_route or name)):
            if not _SAFE_NAME.match(value):
                raise ValueError(f"{label} must match {_SAFE_NAME.pattern}, not {value!r}")
        if not 8192 <= ajp_packet_size <= 65536:
            raise ValueError(f"ajp_packet_size must be 8192..65536, not {ajp_packet_size}")
        self.name = name
        self.address = address
        self.http_port = http_port
        self.ajp_port = ajp_port
        self.jvm_route = jvm_route if jvm_route is not None else name
        self.ajp_secret = ajp_secret
        self.ajp_packet_size = ajp_packet_size
        self.ajp_tomcat_authentication = ajp_tomcat_authentication
        self.start_timeout = start_timeout
        if keep_base is None:
            keep_base = os.environ.get("AJPB_KEEP_TOMCAT") == "1"
        super().__init__(base_dir, keep_base=keep_base, prefix=f"ajpb-tomcat-{name}-")
        self._paused = False
        self._launched_at = 0.0
        self.startup_seconds: float | None = None
        """Seconds from launch to ready, for the last successful start."""

    def __repr__(self) -> str:
        return (
            f"Tomcat({self.name!r}, http={self.address}:{self.http_port}, "
            f"ajp={self.address}:{self.ajp_port}, pid={self.pid})"
        )

    # -- properties

    @property
    def http_url(self) -> str:
        """``http://ADDRESS:HTTP_PORT``, no trailing slash."""
        return f"http://{self.address}:{self.http_port}"

    @property
    def ajp_url(self) -> str:
        """``ajp://ADDRESS:AJP_PORT``, no trailing slash."""
        return f"ajp://{self.address}:{self.ajp_port}"

    @property
    def log_path(self) -> Path:
        """Tomcat's stdout and stderr (all its logging goes to the console)."""
        return self.base / "logs" / "catalina.out"

    @property
    def access_log_path(self) -> Path:
        return self.base / "logs" / "access.log"

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    # -- base directory

    def prepare(self) -> None:
        """Write the CATALINA_BASE: conf files, the webapp, empty logs/temp/work."""
        check_installation()
        webapp = build_webapp()
        base = self.base
        for sub in ("conf", "logs", "temp", "webapps", "work"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        conf = base / "conf"
        shutil.copy2(find_config_template("web.xml"), conf / "web.xml")
        properties = find_config_template("catalina.properties").read_text()
        properties += (
            "\n# ajpbalancer tests: no jar scanning, for a fast start\n"
            "tomcat.util.scan.StandardJarScanFilter.jarsToSkip=*.jar\n"
        )
        (conf / "catalina.properties").write_text(properties)
        (conf / "server.xml").write_text(self.server_xml())
        (conf / "context.xml").write_text(CONTEXT_XML)
        (conf / "logging.properties").write_text(LOGGING_PROPERTIES)
        app = base / "webapps" / "app"
        if app.exists():
            shutil.rmtree(app)
        shutil.copytree(webapp, app)
        self._prepared = True

    def server_xml(self) -> str:
        """The ``conf/server.xml`` of this node."""
        if self.ajp_secret is None:
            secret = 'secretRequired="false"'
        else:
            secret = f'secretRequired="true" secret={quoteattr(self.ajp_secret)}'
        auth = "true" if self.ajp_tomcat_authentication else "false"
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by tests/integration/tomcat.py for node {self.name} -->
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector protocol="HTTP/1.1"
               address={quoteattr(self.address)} port="{self.http_port}"
               connectionTimeout="20000" keepAliveTimeout="60000"
               maxKeepAliveRequests="-1" allowTrace="true" />
    <Connector protocol="AJP/1.3"
               address={quoteattr(self.address)} port="{self.ajp_port}"
               {secret}
               allowedRequestAttributesPattern=".*"
               packetSize="{self.ajp_packet_size}"
               tomcatAuthentication="{auth}" allowTrace="true" />
    <Engine name="Catalina" defaultHost="localhost" jvmRoute={quoteattr(self.jvm_route)}>
      <Host name="localhost" appBase="webapps" unpackWARs="false"
            autoDeploy="false" deployOnStartup="true">
        <Valve className="org.apache.catalina.valves.AccessLogValve"
               directory="logs" prefix="access" suffix=".log"
               rotatable="false" buffered="false"
               pattern={quoteattr(ACCESS_LOG_PATTERN)} />
      </Host>
    </Engine>
  </Service>
</Server>
"""

    # -- process control

    def _environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CATALINA_", "JAVA_OPTS", "JPDA_")) and k != "CLASSPATH"
        }
        env.update(
            CATALINA_HOME=str(CATALINA_HOME),
            CATALINA_BASE=str(self.base),
            CATALINA_TMPDIR=str(self.base / "temp"),
            JAVA_OPTS=JAVA_OPTS,
            CATALINA_OPTS=" ".join(
                [
                    "-XX:-UsePerfData",
                    "-XX:TieredStopAtLevel=1",
                    "-Dorg.apache.catalina.startup.EXIT_ON_INIT_FAILURE=true",
                    f"-Dajpb.node={self.name}",
                    f"-Dajpb.jvmRoute={self.jvm_route}",
                ]
            ),
        )
        return env

    def launch(self) -> None:
        """Start the Tomcat process and return at once; `wait_ready` waits for it."""
        if self.running:
            raise TomcatError(f"{self.name} already running (pid {self.pid})")
        if not self._prepared:
            self.prepare()
        self._paused = False
        with self.log_path.open("ab") as log:
            log.write(f"=== ajpb: starting {self.name} at {time.ctime()} ===\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [str(CATALINA_HOME / "bin" / "catalina.sh"), "run"],
                cwd=self.base,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._launched_at = time.monotonic()
        _LAUNCHED.add(self)

    def wait_ready(self) -> None:
        """Wait until both connectors answer and ``GET /app/`` is 200 from this node.

        Raise `TomcatError` with the log tail (after killing the process) if Tomcat exits
        or is not ready within `start_timeout` seconds.
        """
        process = self._process
        if process is None:
            raise TomcatError(f"{self.name} was not launched")
        deadline = self._launched_at + self.start_timeout
        last = "nothing tried yet"
        while True:
            code = process.poll()
            if code is not None:
                tail = self.log_tail()
                raise TomcatError(
                    f"Tomcat {self.name} exited with status {code} while starting",
                    log_tail=tail,
                    bind_failed="BindException" in tail or "Address already in use" in tail,
                )
            last = self._readiness()
            if not last:
                self.startup_seconds = time.monotonic() - self._launched_at
                return
            if time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
                process.wait()
                raise TomcatError(
                    f"Tomcat {self.name} not ready after {self.start_timeout:.0f} s ({last})",
                    log_tail=self.log_tail(),
                )
            time.sleep(0.1)

    def _readiness(self) -> str:
        """Empty if ready, else what is not ready yet."""
        if not ajp_cping(self.address, self.ajp_port, timeout=1.0):
            return f"no CPONG from AJP {self.address}:{self.ajp_port}"
        try:
            status, node, _ = _http_probe(self.address, self.http_port, timeout=2.0)
        except (OSError, http.client.HTTPException) as exc:
            return f"GET {self.http_url}/app/ failed: {exc!r}"
        if status != 200 or node != self.jvm_route:
            return f"GET {self.http_url}/app/ answered {status}, X-Node {node!r}"
        return ""

    def start(self) -> Tomcat:
        """Launch and wait until ready (see `wait_ready`); return self."""
        self.launch()
        self.wait_ready()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process (resumed first if paused), SIGKILL it after `timeout` s."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        if self._paused:
            self.resume()
        self._signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL the process and reap it (a crashed member)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._signal(signal.SIGKILL)
        process.wait()
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP the JVM: connections are still accepted by the kernel, none answered.

        A stop reaches each of the JVM's threads in its own time (a thread running on
        another core runs on briefly): this returns once every thread is stopped."""
        self._signal(signal.SIGSTOP)
        self._paused = True
        assert self._process is not None
        deadline = time.monotonic() + PAUSE_TIMEOUT
        while time.monotonic() < deadline and not _all_threads_stopped(self._process.pid):
            time.sleep(0.01)

    def resume(self) -> None:
        """SIGCONT the JVM after `pause`."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def _signal(self, signum: signal.Signals) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            raise TomcatError(f"Tomcat {self.name} is not running")
        os.kill(process.pid, signum)

    # -- logs

    def log_tail(self, lines: int = 60) -> str:
        """The last `lines` lines of Tomcat's console log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def access_log_lines(
        self, min_count: int = 0, timeout: float = 5.0, path_contains: str | None = None
    ) -> list[AccessLogLine]:
        """Parsed access log, oldest first; only paths containing `path_contains` if given.

        Tomcat logs a request after the response is complete, which the client may see
        first: with `min_count`, wait up to `timeout` s for at least that many lines.
        """
        return wait_for_entries(
            lambda: parsed_lines(self.access_log_path, AccessLogLine.parse),
            lambda entry: path_contains is None or path_contains in entry.path,
            min_count,
            timeout,
        )


_LAUNCHED: weakref.WeakSet[Tomcat] = weakref.WeakSet()
"""Every node launched by this process, for `_kill_leftovers`."""


@atexit.register
def _kill_leftovers() -> None:
    """At interpreter exit, SIGKILL nodes still running (a test run interrupted)."""
    for tomcat in list(_LAUNCHED):
        with contextlib.suppress(TomcatError, OSError):
            tomcat.kill()


def start_all(tomcats: Sequence[Tomcat]) -> None:
    """Start several nodes in parallel: launch them all, then wait for each.

    If one fails, the ones launched are stopped and its `TomcatError` is raised.
    """
    try:
        for tomcat in tomcats:
            tomcat.launch()
        for tomcat in tomcats:
            tomcat.wait_ready()
    except BaseException:
        for tomcat in tomcats:
            with contextlib.suppress(TomcatError, OSError):
                tomcat.kill()
        raise


CONTEXT_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Default context of every webapp of a test node (tests/integration/tomcat.py).
     useRelativeRedirects="false": sendRedirect() answers an absolute Location built
     from the request's scheme, host and port, as mod_proxy's ProxyPassReverse expects.
     Manager pathname="": no session persistence across restarts. -->
<Context useRelativeRedirects="false">
  <WatchedResource>WEB-INF/web.xml</WatchedResource>
  <JarScanner scanClassPath="false" scanManifest="false" />
  <Manager pathname="" />
</Context>
"""

LOGGING_PROPERTIES = """# Written by tests/integration/tomcat.py: all logging to the console
# (catalina.out in the base)
handlers = java.util.logging.ConsoleHandler
.handlers = java.util.logging.ConsoleHandler
.level = INFO
java.util.logging.ConsoleHandler.level = FINE
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
java.util.logging.ConsoleHandler.encoding = UTF-8
"""


PAUSE_TIMEOUT = 5.0
"""Seconds `Tomcat.pause` waits for every thread of the JVM to be stopped."""


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped (state ``T`` in ``/proc/PID/task/*/stat``)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] not in ("T", "t"):
            return False
    return True
