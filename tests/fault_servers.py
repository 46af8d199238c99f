"""Real parts a fault test may break, each the test's own (fixtures imported by conftest.py).

Never the shared services other tests and CI use: ``own_redis`` is a ``redis-server`` on a free
port that the test may kill and restart; ``own_database`` is a database of this test session on
the PostgreSQL server, reached by the site through ``database_proxy``, a TCP proxy the test can
cut (new connections refused, open ones closed) without touching the server; ``fault_site`` is
gunicorn serving the demo with production settings (``tests/settings_fault.py``) over those two.
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("MICROADJUST_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
START_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited ({process.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port} in {START_TIMEOUT} s")


def _stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class RedisServer:
    """A ``redis-server`` of the test's own on a free port: ``kill()`` (SIGKILL) and ``start()``
    again on the same port, as an outage and a recovery."""

    def __init__(self, directory: Path, *, aof: bool = False) -> None:
        #: ``appendonly yes`` with ``appendfsync always``: a restart keeps every acknowledged write.
        self.aof = aof
        self.binary = shutil.which("redis-server")
        if self.binary is None:  # never a skip: the fault tests are required
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.directory / "redis.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 *(["--appendonly", "yes", "--appendfsync", "always"] if self.aof
                   else ["--appendonly", "no"]), "--dir", str(self.directory)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for_port(self.port, self.process, "redis-server", log)
        self._wait_until_loaded(log)

    def _wait_until_loaded(self, log: Path) -> None:
        """Listening is not ready: while it reads its AOF back, Redis answers every command
        with LOADING. Wait for a PING (a slow disk made the first command after a restart fail)."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                client.ping()
                client.close()
                return
            except redis.exceptions.BusyLoadingError:
                time.sleep(0.05)
        pytest.fail(f"redis-server was still loading after {START_TIMEOUT} s:\n"
                    f"{log.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL)


class TcpProxy:
    """Forwards a free local port to ``target``. ``cut()`` closes every open connection and
    refuses new ones (accepted, then closed at once: "server closed the connection"), as a
    database that went away; ``restore()`` forwards again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.is_cut = False
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refused = self.is_cut
            if refused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                refused = self.is_cut  # cut while connecting: this one must not survive it
                if not refused:
                    self.open.update((client, upstream))
            if refused:
                client.close()
                upstream.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (client, upstream):
                with self.lock:
                    self.open.discard(sock)
                sock.close()

    def cut(self) -> None:
        with self.lock:
            self.is_cut = True
            sockets, self.open = list(self.open), set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self) -> None:
        with self.lock:
            self.is_cut = False

    def close(self) -> None:
        self.closed = True
        self.cut()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()


def _admin_connection():
    import psycopg

    return psycopg.connect(POSTGRES.replace("postgres://", "postgresql://", 1), autocommit=True,
                           connect_timeout=5)


def _postgres_or_fail() -> None:
    try:
        _admin_connection().close()
    except Exception as exc:  # never a skip: the fault tests are required
        pytest.fail(f"PostgreSQL at {POSTGRES} is not reachable ({exc}); the fault tests need it")


DATABASE_PREFIX = "microadjust_fault_"


#: A fault-test database older than this is a leftover of a run killed before its teardown (a
#: pid check cannot tell: another machine or container may share the PostgreSQL server).
LEFTOVER_SECONDS = 6 * 3600


def _drop_databases_of_dead_runs() -> None:
    """Drop fault-test databases created more than LEFTOVER_SECONDS ago (their names hold the
    time they were made)."""
    with _admin_connection() as connection:
        names = [row[0] for row in connection.execute("SELECT datname FROM pg_database")]
        for name in names:
            if not name.startswith(DATABASE_PREFIX):
                continue
            try:
                created = int(name[len(DATABASE_PREFIX):].split("_", 1)[0])
            except ValueError:
                continue
            if time.time() - created > LEFTOVER_SECONDS:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database_url: str, redis_url: str, *args: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_fault",
           "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr[-4000:]}"


@pytest.fixture(scope="session")
def own_database(tmp_path_factory) -> Iterator[str]:
    """The URL of a database of this test session's own, migrated, with the demo loaded."""
    _postgres_or_fail()
    _drop_databases_of_dead_runs()
    name = f"{DATABASE_PREFIX}{int(time.time())}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with _admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    # Loading the demo clears Wagtail's site cache: a redis-server of its own for the setup.
    setup_redis = RedisServer(tmp_path_factory.mktemp("setup-redis"))
    try:
        setup_redis.start()
        manage(url, setup_redis.url, "migrate", "--noinput")
        manage(url, setup_redis.url, "load_demo")
        setup_redis.kill()
        yield url
    finally:
        setup_redis.kill()
        with _admin_connection() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(database_url: str, sql: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class FaultSite:
    """gunicorn serving the demo over the test's own Redis and (proxied) database."""

    port: int
    redis: RedisServer
    proxy: TcpProxy
    database_url: str
    log_path: Path
    process: subprocess.Popen
    statuses: list[tuple[str, int]] = field(default_factory=list)
    #: The site's environment (settings, proxied database, own Redis): loaders run with it.
    env: dict[str, str] = field(default_factory=dict)
    loaders: list[subprocess.Popen] = field(default_factory=list)

    def start_loader(self, name: str) -> subprocess.Popen:
        """``manage.py microadjust_load_events`` as its own process (and process group), with
        the site's settings; stopped with the site."""
        log = self.log_path.parent / f"loader-{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "microadjust_load_events", "--consumer", name,
                 "--progress", "1", "--claim-idle", "2"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.loaders.append(process)
        return process

    def loader_log(self, name: str) -> str:
        return (self.log_path.parent / f"loader-{name}.log").read_text(errors="replace")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def fault_site(own_database, tmp_path) -> Iterator[FaultSite]:
    """A fresh gunicorn (2 workers, 4 threads each), own redis-server and database proxy."""
    yield from serve_site(own_database, tmp_path)


@pytest.fixture
def stream_site(own_database, tmp_path) -> Iterator[FaultSite]:
    """``fault_site`` on the Redis Streams sink, its redis-server with AOF (``appendfsync
    always``); ``start_loader`` runs loaders against it."""
    yield from serve_site(own_database, tmp_path, aof=True, env={"FAULT_EVENT_SINK": "stream"})


def serve_site(own_database: str, tmp_path: Path, *, aof: bool = False,
               env: dict[str, str] | None = None) -> Iterator[FaultSite]:
    redis = RedisServer(tmp_path, aof=aof)
    parts = urlsplit(own_database)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxied = urlunsplit(parts._replace(netloc=parts.netloc.replace(
        f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")))
    assert proxied != own_database, "the site must reach the database through the proxy"
    site_port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_fault",
           "DATABASE_URL": proxied, "REDIS_URL": redis.url, **(env or {})}
    process = site = None
    try:
        redis.start()
        with open(log_path, "wb") as out:
            # --preload: the app is imported once, before the workers fork, so neither worker
            # is still importing (seconds on a loaded machine) when the test's requests come.
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "project.wsgi", "--preload",
                 "--bind", f"127.0.0.1:{site_port}", "--workers", "2", "--threads", "4",
                 "--worker-class", "gthread", "--timeout", "60", "--graceful-timeout", "5"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        site = FaultSite(site_port, redis, proxy, own_database, log_path, process, env=env)
        _wait_for_port(site_port, process, "gunicorn", log_path)
        _warm_up(site)
        yield site
    finally:
        for loader in site.loaders if site else ():
            _stop(loader)
        _stop(process)
        proxy.close()
        redis.kill()


def _warm_up(site: FaultSite) -> None:
    """Each worker answers a page (and has read the demo's state) before the test begins."""
    for _ in range(4):
        status, _, _ = Visitor(site, "Mozilla/5.0 (warm-up)").get("/")
        assert status == 200, f"the fault site answered {status}:\n{site.log()[-3000:]}"


class Visitor:
    """One browser's worth of HTTP: its own keep-alive connection and the visitor cookie."""

    def __init__(self, site: FaultSite, user_agent: str) -> None:
        self.site = site
        self.user_agent = user_agent
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None
        #: Requests sent again on a new connection after a kept-alive one was found closed.
        self.retries = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"User-Agent": self.user_agent, **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        while True:
            reused = self.connection is not None
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.site.port, timeout=30)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                content = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                # Only a kept-alive connection the server had closed meanwhile (as a browser
                # does); a fresh connection failing is a failure of the site.
                if not reused:
                    raise
                self.retries += 1
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, content

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path)

    def collect(self, events: list[dict]) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"v": 1, "events": events}).encode()
        return self.request("POST", "/microadjust/collect/", body,
                            {"Content-Type": "application/json", "Origin": self.site.origin})
