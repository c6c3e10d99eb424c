"""Starting, probing and stopping the processes under test.

Every server runs as a real process in its own session (process group), so a
stop can end its workers too without touching anything we did not start.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEER_SOURCE = Path(__file__).resolve().parents[1].parent / "shared/peers/oidc-provider"
START_TIMEOUT = 60.0


class ServerError(Exception):
    """A server did not start, or answered nonsense when it had to answer."""


@dataclass
class Process:
    """A started server: its process, where it listens and where it logs."""

    name: str
    popen: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn and the peer shut down cleanly), then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Our own process group: catches a worker that outlived its parent.
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            status: int = answer.status
            return status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(proc: Process, path: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `path` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout
    url = proc.base_url + path
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise ServerError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        try:
            status, _ = http_get(url, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ServerError(f"{proc.name} not answering {url}:\n{proc.log_tail()}")


def start_uvicorn(
    name: str,
    app: str,
    *,
    workers: int,
    env: dict[str, str],
    workdir: Path,
    ready_path: str,
    port: int | None = None,
    access_log: bool = False,
) -> Process:
    """`python -m uvicorn APP --workers N` with uvloop + httptools, pinned.

    The same command serves the token server and the ceiling app, so their
    figures differ only by the application. `--loop uvloop --http httptools`
    makes a missing uvicorn[standard] fail loudly instead of falling back to
    asyncio + h11, which is several times slower (see shared/STACK.md).
    """
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--access-log" if access_log else "--no-access-log",
    ]
    log_path = workdir / f"{name}.log"
    # The workdir is the cwd so a developer's ./.env never leaks into a run.
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            command,
            cwd=workdir,
            env={**os.environ, **env, "PYTHONPATH": _pythonpath()},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Process(name, popen, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_up(proc, ready_path)
    except BaseException:
        proc.stop()
        raise
    return proc


def _pythonpath() -> str:
    # The repository root, so `bench.ceilings` imports from any cwd.
    root = str(Path(__file__).resolve().parents[1])
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root


# --- worker memory -----------------------------------------------------------


def worker_pids(pid: int) -> list[int]:
    """The processes that serve requests: the children of uvicorn's supervisor,
    or the process itself when it runs alone (--workers 1)."""
    children = [
        child for child in _children(pid) if "resource_tracker" not in _cmdline(child)
    ]
    return children or [pid]


def rss_bytes(pid: int) -> int | None:
    """VmRSS from /proc (psutil is not a dependency)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The comm field may contain spaces: the ppid follows its last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- the peer ----------------------------------------------------------------


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def install_peer(source: Path, cache_root: Path) -> Path:
    """A writable copy of the peer with its node_modules, reused between runs.

    The copy is keyed by the lockfile's content, so a changed lockfile gets a
    fresh `npm ci` and an unchanged one costs nothing.
    """
    import hashlib

    lock = source / "package-lock.json"
    if not lock.is_file():
        raise ServerError(f"no peer at {source} (package-lock.json missing)")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    target = cache_root / f"oidc-provider-{digest}"
    marker = target / ".bench-installed"
    if marker.exists():
        for name in ("server.js", "package.json"):
            shutil.copy2(source / name, target / name)  # pick up local edits
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules"))
    npm = shutil.which("npm")
    if npm is None:
        raise ServerError("npm not found: cannot install the peer")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise ServerError(f"npm ci failed in {target}:\n{result.stderr[-2000:]}")
    marker.write_text(digest + "\n")
    return target


def start_peer(
    directory: Path, *, bcrypt_rounds: int, workdir: Path, env: dict[str, str]
) -> Process:
    node = shutil.which("node")
    if node is None:
        raise ServerError("node not found")
    port = free_port()
    log_path = workdir / "peer.log"
    peer_env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "BCRYPT_COST": str(bcrypt_rounds),
        **env,
    }
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [node, "server.js"],
            cwd=directory,
            env=peer_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Process("oidc-provider", popen, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_up(proc, "/.well-known/openid-configuration")
    except BaseException:
        proc.stop()
        raise
    # server.js prints one JSON line with its versions and settings.
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                proc.meta = json.loads(line)
            except ValueError:
                continue
    return proc


# --- quiet between scenarios -------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(pids: list[int], *, timeout: float = 15.0, busy: float = 0.05) -> bool:
    """Wait until the server stops working off the previous scenario.

    Requests a scenario left in flight (a password grant's hash, say) go on
    after the client hung up; starting the next scenario on top of them would
    charge it for their work. True when idle, False on timeout.
    """
    deadline = time.monotonic() + timeout
    interval = 0.2
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        time.sleep(interval)
        if cpu_seconds(pids) - before < busy * interval:
            return True
    return False
