"""The servers under test: started side by side, each in its own process group.

Ours is the product as deployed (`authctl serve`, set up with `authctl`), the
ceiling app runs under the same uvicorn, and each peer from
`shared/peers/` is copied to a cache outside the repository and installed
there (`npm ci`; the DOT peer's own run.sh makes its venv), keyed by its
lockfile, so a second run installs nothing.
"""

import asyncio
import atexit
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from bench.wrk import REDIRECT_URI

ROOT = Path(__file__).resolve().parents[1]


def _peers_dir() -> Path:
    """BENCH_PEERS_DIR, else the workplace's shared/peers beside the checkout
    (or at /work, for a clone made elsewhere, such as CI's)."""
    if "BENCH_PEERS_DIR" in os.environ:
        return Path(os.environ["BENCH_PEERS_DIR"])
    beside = ROOT.parent / "shared/peers"
    return beside if beside.is_dir() else Path("/work/shared/peers")


PEERS = _peers_dir()
CACHE = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache/authserver-bench"))
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
PEER_CLIENT = ("bench-client", "bench-secret")  # the peers' defaults (READMEs)
PEER_USER = ("alice", "wonderland")
USER_PASSWORD = "bench-password-0"
START_TIMEOUT = 180.0  # the DOT peer's first start installs its venv


class ServerError(Exception):
    """A server could not be installed or started."""


@dataclass
class Server:
    """A running server and what the scenarios need to talk to it."""

    name: str
    base_url: str
    token_path: str
    jwks_path: str
    client: tuple[str, str]
    users: list[tuple[str, str]]
    popen: subprocess.Popen[bytes] | None = None
    database: str | None = None
    grants: set[str] = field(default_factory=set)
    code_client: tuple[str, str] | None = None  # for the code exchange

    def cpu_seconds(self, with_database: bool = False) -> float:
        """CPU time used so far by the server's process group, and optionally by
        the PostgreSQL backends serving its database (its share of the DB)."""
        return sum(self.cpu_by_process(with_database).values())

    def cpu_by_process(self, with_database: bool = False) -> dict[int, float]:
        """`cpu_seconds`, process by process."""
        found = {}
        backends = set(_backends(self.database)) if with_database else set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            mine = self.popen is not None and int(fields[2]) == self.popen.pid
            if mine or int(stat.parent.name) in backends:
                ticks = int(fields[11]) + int(fields[12])  # utime, stime
                found[int(stat.parent.name)] = ticks / os.sysconf("SC_CLK_TCK")
        return found

    def wait_idle(self, timeout: float = 20.0) -> float:
        """Until the work a previous run left in flight (queued logins) is done;
        how long that took, in seconds."""
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            before = self.cpu_seconds()
            time.sleep(0.25)
            if self.cpu_seconds() - before < 0.02:
                break
        return time.monotonic() - started

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            # Its own process group: a worker cannot outlive its parent.
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        if self.database:
            drop_database(self.database)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _AdminConnection:
    """One connection to the `postgres` database, kept for the whole run.

    Opened at the first database a server gets, before any server runs: the
    servers' pools can fill `max_connections` during a run (the cluster peer
    alone opens 40, and idle ones linger), and the CPU accounting must still
    find their backends then. Servers start in threads, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runner: asyncio.Runner | None = None
        self._connection: Any = None

    def fetch(self, sql: str, *args: str) -> list[Any]:
        with self._lock:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(self._fetch(sql, *args))

    async def _fetch(self, sql: str, *args: str) -> list[Any]:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(f"{POSTGRES}/postgres")
        return list(await self._connection.fetch(sql, *args))

    def close(self) -> None:
        with self._lock:
            if self._runner is None:
                return
            if self._connection is not None:
                self._runner.run(self._connection.close())
                self._connection = None
            self._runner.close()
            self._runner = None


_ADMIN = _AdminConnection()
atexit.register(_ADMIN.close)


def _admin(sql: str, *args: str) -> list[Any]:
    return _ADMIN.fetch(sql, *args)


def _backends(database: str | None) -> list[int]:
    if database is None:
        return []
    query = "SELECT pid FROM pg_stat_activity WHERE datname = $1"
    return [row["pid"] for row in _admin(query, database)]


def create_database(name: str) -> str:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES}/{name}"


def drop_database(name: str) -> None:
    try:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"  could not drop database {name}: {exc}", file=sys.stderr)


def _spawn(command: list[str], log: Path, cwd: Path, env: dict[str, str]) -> Any:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_up(server: Server, path: str, log: Path) -> None:
    assert server.popen is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.popen.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:]
            raise ServerError(f"{server.name} exited: {tail}")
        try:
            if http_get(server.base_url + path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    raise ServerError(f"{server.name} did not answer {path} in {START_TIMEOUT:.0f} s")


def _discover(server: Server, path: str) -> None:
    """Token endpoint, JWKS and grants from the server's discovery document."""
    document = json.loads(http_get(server.base_url + path)[1])
    split = len(server.base_url)
    server.token_path = document["token_endpoint"][split:]
    server.jwks_path = document["jwks_uri"][split:]
    server.grants = set(document.get("grant_types_supported", ()))


# --- ours --------------------------------------------------------------------


def _authctl(env: dict[str, str], cwd: Path, command: str, stdin: str = "") -> str:
    args = shlex.split(command)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("authctl")), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=120,
    )
    if done.returncode != 0:
        raise ServerError(f"authctl {args[0]} {args[1]}: {done.stderr.strip()}")
    return done.stdout


def start_ours(workdir: Path, workers: int, users: int, rounds: int) -> Server:
    """A fresh PostgreSQL database set up with authctl, then `authctl serve`."""
    port = free_port()
    name = f"authbench_ours_{port}"
    env = {
        "AUTH_DATABASE_URL": create_database(name).replace(
            "postgresql://", "postgresql+asyncpg://"
        ),
        "AUTH_ISSUER": f"http://127.0.0.1:{port}",
        "AUTH_KEYS_DIR": str(workdir / "keys"),
        "AUTH_BCRYPT_ROUNDS": str(rounds),
        "AUTH_LOG_LEVEL": "WARNING",  # no access line per request
        # All servers share PostgreSQL's 100 connections, and a SQLAlchemy pool
        # never closes an idle one: at the default 20 per worker, ours idle
        # (40) plus the cluster peer's 40, the single peer's 20 not yet timed
        # out and DOT's 8 exceeded it, and the cluster answered errors.
        # 10 (+5 overflow) per worker: refresh batches use two per worker;
        # only the code exchange holds one per request in flight (16 per
        # worker) and may wait for one, which costs ours, not the peers.
        "AUTH_DB_POOL_SIZE": "10",
    }
    server = Server("authserver", env["AUTH_ISSUER"], "", "", ("", ""), [])
    server.database = name
    try:
        _authctl(env, workdir, "db upgrade")
        made = json.loads(
            _authctl(
                env,
                workdir,
                "client create Benchmark --client-id bench-client --json --grant "
                "password --grant refresh_token --grant client_credentials "
                "--scope 'api:read api:write' --audience urn:bench:api",
            )
        )
        server.client = (made["client_id"], made["client_secret"])
        # One user per connection: logins of one account are serialised.
        server.users = [(f"bench-user-{i}", USER_PASSWORD) for i in range(users)]
        create = "user create {} --password-stdin"
        with ThreadPoolExecutor(4) as pool:  # each is mostly a process start
            list(
                pool.map(
                    lambda n: _authctl(env, workdir, create.format(n), USER_PASSWORD),
                    [name for name, _ in server.users],
                )
            )
        log = workdir / "authserver.log"
        authctl = str(Path(sys.executable).with_name("authctl"))
        serve = [authctl, "serve", "--port", str(port), "--workers", str(workers)]
        server.popen = _spawn(serve, log, workdir, env)
        _wait_up(server, "/.well-known/openid-configuration", log)
        _discover(server, "/.well-known/openid-configuration")
        if "authorization_code" in server.grants:
            web = json.loads(
                _authctl(
                    env,
                    workdir,
                    "client create 'Bench web' --client-id bench-web --json --grant "
                    "authorization_code --grant refresh_token --scope 'openid "
                    f"api:read' --redirect-uri {REDIRECT_URI}",
                )
            )
            server.code_client = (web["client_id"], web["client_secret"])
    except BaseException:
        server.stop()
        raise
    return server


def start_ceiling_app(workdir: Path, workers: int) -> Server:
    """bench.ceilings:app under uvicorn's defaults, run as `authctl serve` runs
    the token server: through authserver.core.supervisor (a socket per worker)."""
    port = free_port()
    server = Server(
        "ceiling app", f"http://127.0.0.1:{port}", "/sign1", "/bytes", ("", ""), []
    )
    run = (
        "from authserver.core import supervisor; supervisor.run('bench.ceilings:app', "
        f"host='127.0.0.1', port={port}, workers={workers}, access_log=False, "
        "log_level='warning')"
    )
    command = [sys.executable, "-c", run]
    log = workdir / "ceilings.log"
    server.popen = _spawn(command, log, workdir, {"PYTHONPATH": str(ROOT)})
    _wait_up(server, "/bytes", log)
    return server


# --- peers -------------------------------------------------------------------


def install(peer: str, lockfile: str) -> Path:
    """A writable copy of shared/peers/PEER, reused while its lockfile is."""
    source = PEERS / peer
    if not (source / lockfile).is_file():
        raise ServerError(f"no peer at {source}")
    digest = hashlib.sha256((source / lockfile).read_bytes()).hexdigest()[:12]
    target = CACHE / f"{peer}-{digest}"
    if (target / ".installed").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules"))
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)  # the source is read-only
    if lockfile == "package-lock.json":
        npm = shutil.which("npm")
        if npm is None:
            raise ServerError("npm is not installed")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise ServerError(f"npm ci in {target}: {done.stderr[-800:]}")
    (target / ".installed").write_text(digest + "\n")
    return target


def start_node_peer(workdir: Path, name: str, rounds: int) -> Server:
    """oidc-provider: in memory, or on PostgreSQL as one process or a cluster."""
    if shutil.which("node") is None:
        raise ServerError("node is not installed")
    in_memory = name == "oidc-provider"
    directory = install(
        "oidc-provider" if in_memory else "oidc-provider-pg", "package-lock.json"
    )
    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "BCRYPT_COST": str(rounds)}
    server = Server(name, f"http://127.0.0.1:{port}", "", "", PEER_CLIENT, [PEER_USER])
    if in_memory:
        # The stock LRU of 1000 entries drops live chains under load (README).
        env["MEMORY_STORE_MAX"] = "1000000"
    else:
        server.database = f"authbench_nop_{port}"
        env["PG_URL"] = create_database(server.database)
    script = "cluster.js" if name.endswith("cluster") else "server.js"
    log = workdir / f"{name}.log"
    server.popen = _spawn(["node", script], log, directory, env)
    _wait_up(server, "/.well-known/openid-configuration", log)
    if script == "cluster.js":
        time.sleep(1.0)  # the second worker may start listening a moment later
    _discover(server, "/.well-known/openid-configuration")
    return server


def start_dot(workdir: Path, rounds: int) -> Server:
    """django-oauth-toolkit on PostgreSQL under gunicorn (its run.sh)."""
    directory = install("dot", "requirements.txt")
    port = free_port()
    server = Server(
        "django-oauth-toolkit",
        f"http://127.0.0.1:{port}",
        "",
        "",
        PEER_CLIENT,
        [PEER_USER],
    )
    server.database = f"authbench_dot_{port}"
    env = {
        "PORT": str(port),
        "PG_URL": f"{POSTGRES}/{server.database}",
        "RESET_DB": "1",
        "DOT_BCRYPT_ROUNDS": str(rounds),
        "PYTHON": shutil.which("python3") or "python3",
        "VIRTUAL_ENV": "",
    }
    log = workdir / "dot.log"
    server.popen = _spawn(["bash", "run.sh"], log, directory, env)
    _wait_up(server, "/o/.well-known/openid-configuration", log)
    _discover(server, "/o/.well-known/openid-configuration")
    # DOT lists only OIDC grants; it serves these three (README).
    server.grants |= {"password", "refresh_token", "client_credentials"}
    return server
