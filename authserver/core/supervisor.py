"""Worker processes for `authctl serve`: uvicorn's, each with a socket of its own.

uvicorn's supervisor binds one listening socket and every worker accepts from
it. A worker's event loop accepts every connection waiting when it wakes, so a
burst of new connections to idle workers (a proxy opening its keep-alive pool,
a load test starting) can all land in one of them, which then serves them at
one core's speed for as long as they live while the others idle. Seen here
with 2 workers: 32 of 32 connections in one worker, 654 client-credentials
grants/s instead of 1,230 (docs/benchmarks.md).

So each worker gets a listening socket of its own, all bound to the same
address with SO_REUSEPORT, and the kernel spreads new connections over them by
a hash of the client's address and port. The sockets are made here, in the
supervisor, and outlive a worker: its replacement (after a crash, or on
SIGHUP) listens on the same socket and takes the connections waiting in its
backlog. Where SO_REUSEPORT is missing, uvicorn's own supervisor runs.
"""

import logging
import socket
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("authserver.serve")


def run(app: str, *, host: str, port: int, workers: int | None, **options: Any) -> None:
    """Serve `app` (an import string) as `uvicorn.run` would, workers balanced."""
    if not workers or workers < 2 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = Config(app, host=host, port=port, workers=workers, **options)
    listeners = bind_listeners(host, port, workers)
    try:
        BalancedMultiprocess(config, listeners).run()
    except KeyboardInterrupt:
        pass
    finally:
        for sock in listeners:
            sock.close()


def bind_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to host:port with SO_REUSEPORT (not yet listening:
    each worker's server calls listen)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listeners: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others join the first
            sock.set_inheritable(True)
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


class BalancedMultiprocess(Multiprocess):
    """uvicorn 0.54's supervisor (health checks, restarts, SIGHUP, SIGINT and
    SIGTERM as there), with worker `slot` always serving `listeners[slot]`.

    The number of workers is fixed: SIGTTIN and SIGTTOU are refused, as a new
    worker would need a socket of its own.
    """

    def __init__(self, config: Config, listeners: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        self.listeners = listeners
        self.processes_num = len(listeners)

    def _start(self, slot: int) -> Process:
        process = Process(self.config, [self.listeners[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._start(slot) for slot in range(len(self.listeners))]

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # It never served: the app is broken and a restart would fail
                # the same way.
                logger.error("worker_failed_to_start", extra={"pid": process.pid})
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.warning("worker_died", extra={"pid": process.pid})
            self.processes[slot] = self._start(slot)

    def restart_all(self) -> None:
        """SIGHUP: each worker replaced, the new one serving before the old
        one stops (both accept from the slot's socket meanwhile)."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            ready = new.wait_until_ready(
                self.config.timeout_worker_healthcheck, self.should_exit
            )
            if not ready:
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(
                        "worker_restart_aborted",
                        extra={"pid": new.pid, "kept": old.pid},
                    )
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def handle_ttin(self) -> None:
        logger.warning("worker_count_fixed", extra={"workers": self.processes_num})

    def handle_ttou(self) -> None:
        logger.warning("worker_count_fixed", extra={"workers": self.processes_num})
