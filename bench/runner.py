"""`python -m bench`: every server side by side, scenario by scenario.

All servers start first and stay up; each scenario then runs against its
ceiling and every server in turn, so the figures a ratio divides were taken
within a minute of each other. See docs/benchmarks.md.
"""

import argparse
import base64
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import servers, wrk
from bench.ceilings import bcrypt_ceiling
from bench.report import CEILING, DOT, NOP, NOP_CLUSTER, NOP_PG, OURS, Report, Row
from bench.servers import Server

SCENARIOS = (
    "jwks",
    "client_credentials",
    "refresh",
    "code",
    "password",
    "mixed",
    "race",
)
CODES = 2000  # authorization codes minted per run (they live 60 s)
PEERS = {
    NOP: lambda w, r: servers.start_node_peer(w, NOP, r),
    NOP_PG: lambda w, r: servers.start_node_peer(w, NOP_PG, r),
    NOP_CLUSTER: lambda w, r: servers.start_node_peer(w, NOP_CLUSTER, r),
    DOT: servers.start_dot,
}
CEILING_PATHS = {"jwks": "/bytes", "client_credentials": "/sign1", "refresh": "/sign2"}
GRANTS = {
    "client_credentials": "client_credentials",
    "refresh": "refresh_token",
    "code": "authorization_code",
    "password": "password",
    "mixed": "password",
    "race": "refresh_token",
}
VERSIONS = "fastapi uvicorn uvloop httptools sqlalchemy asyncpg joserfc libpass bcrypt"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    add = parser.add_argument
    add("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    add("--peers", default=",".join(PEERS), help="comma-separated subset, or none")
    add("--duration", type=int, default=10, help="measured seconds per run")
    add("--warmup", type=int, default=2, help="unmeasured seconds before each run")
    add("--connections", type=int, default=32, help="per run (password: half)")
    add("--repeat", type=int, default=1, help="rounds; targets use the median")
    add("--workers", type=int, default=2, help="authserver's worker processes")
    add("--bcrypt-rounds", type=int, default=12, help="cost, ours and the peers'")
    add("--race-rounds", type=int, default=3, help="rounds of the refresh race")
    add("--profile", metavar="SCENARIO", help="py-spy one authserver worker in it")
    add("--max-requests", type=int, default=0, help="stop a run after N answers")
    add("--json-out", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.scenario_list = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    peers = [] if args.peers == "none" else args.peers.split(",")
    unknown |= set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    args.peer_list = [p for p in PEERS if p in peers]
    if min(args.duration, args.repeat, args.connections, args.workers) < 1:
        parser.error("--duration, --repeat, --connections, --workers must be >= 1")
    return args


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.servers: list[Server] = []
        self.ceiling: Server | None = None
        self.report = Report(meta=_meta(args))
        self.runs = 0

    def start(self) -> None:
        args, w = self.args, self.workdir
        say(f"starting the ceiling app and authserver ({args.workers} workers)")
        self.ceiling = servers.start_ceiling_app(w, args.workers)
        users = max(args.connections // 2, 1)  # one per password connection
        ours = servers.start_ours(w, args.workers, users, args.bcrypt_rounds)
        self.servers.append(ours)
        # What the defaults sign refresh tokens with, read from a real one.
        auth = wrk.basic_auth(*ours.client)
        (token,) = wrk.refresh_tokens(
            ours.base_url, ours.token_path, auth, ours.users, 1
        )
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        self.report.meta["authserver_refresh_token_alg"] = header.get("alg")
        say(f"  authserver signs refresh tokens with {header.get('alg')}")
        for name in args.peer_list:
            say(f"starting {name}")
            try:
                self.servers.append(PEERS[name](w, args.bcrypt_rounds))
            except (servers.ServerError, OSError, subprocess.SubprocessError) as exc:
                say(f"  {name} not started: {exc}")
                self.report.meta.setdefault("not_started", {})[name] = str(exc)

        self.report.meta["grants"] = {s.name: sorted(s.grants) for s in self.servers}

    def stop(self) -> None:
        for server in [*self.servers, self.ceiling]:
            if server is not None:
                server.stop()

    def run(self) -> Report:
        started = time.monotonic()
        loads = self.report.meta["load_average"]
        for number in range(1, self.args.repeat + 1):
            for scenario in self.args.scenario_list:
                loads.append([scenario, *os.getloadavg()])
                if scenario == "race":
                    if number == 1:
                        self.races()
                    continue
                self.ceiling_row(scenario, number)
                # Every other round in reverse: drift favours no server.
                turn = self.servers if number % 2 else self.servers[::-1]
                for server in turn:
                    self.measure(server, scenario, number)
        loads.append(["end", *os.getloadavg()])
        self.report.meta["elapsed_s"] = round(time.monotonic() - started)
        return self.report

    def ceiling_row(self, scenario: str, number: int) -> None:
        if scenario == "password":
            rps, seconds = bcrypt_ceiling(self.args.bcrypt_rounds)
            cores = f"{len(os.sched_getaffinity(0))} cores"
            self.add(Row("password", CEILING, number, cores, rps, seconds * 1000))
        elif scenario in CEILING_PATHS and self.ceiling is not None:
            method = "GET" if scenario == "jwks" else "POST"
            form = ("grant_type=client_credentials",)
            load = wrk.Load(
                method,
                CEILING_PATHS[scenario],
                self.args.connections,
                bodies=form if method == "POST" else (),
            )
            self.timed(self.ceiling, scenario, number, lambda: load)

    def measure(self, server: Server, scenario: str, number: int) -> None:
        if GRANTS.get(scenario, "") not in server.grants | {""} or (
            scenario == "code" and server.code_client is None
        ):
            self.add(Row(scenario, server.name, number, "-", status="n/a"))
            return
        auth = wrk.basic_auth(*server.client)
        c = self.args.connections
        logins = tuple(wrk.password_form(*u) for u in server.users)
        token = server.token_path
        if scenario == "mixed":
            self.mixed(server, number, auth, logins)
            return

        def make() -> wrk.Load:
            match scenario:
                case "jwks":
                    return wrk.Load("GET", server.jwks_path, c)
                case "client_credentials":
                    form = ("grant_type=client_credentials",)
                    return wrk.Load("POST", token, c, auth, form)
                case "refresh":
                    chains = wrk.refresh_tokens(
                        server.base_url, token, auth, server.users, c
                    )
                    return wrk.Load("POST", token, c, auth, tokens=chains)
                case "code":
                    assert server.code_client is not None
                    cap = self.args.max_requests
                    count = min(CODES, cap + c) if cap else CODES
                    bodies = wrk.code_exchanges(
                        server.base_url, server.code_client[0], server.users[0], count
                    )
                    web = wrk.basic_auth(*server.code_client)
                    # Stop before the codes run out: each is good for one use.
                    return wrk.Load(
                        "POST", token, c, web, once=bodies, max_requests=count - c
                    )
            return wrk.Load("POST", token, c // 2, auth, logins)

        self.timed(server, scenario, number, make)

    def timed(
        self, server: Server, scenario: str, number: int, make: Callable[[], wrk.Load]
    ) -> None:
        """A warm-up run, then the measured one (each with fresh loads)."""
        say(f"  {scenario}: {server.name} ...", end="")
        try:
            self.wait_idle()
            if self.args.warmup:
                self.wrk(server, make(), self.args.warmup).result()
            load = make()
            self.wait_idle()
            profiler = self.profiler(server, scenario)
            before = server.cpu_by_process(with_database=True)
            result = self.wrk(server, load, self.args.duration).result()
            after = server.cpu_by_process(with_database=True)
            if profiler is not None:
                profiler.wait()
        except wrk.LoadError as exc:
            say(f" failed: {exc}")
            self.add(Row(scenario, server.name, number, "-", status="failed"))
            return
        used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        row = _row(scenario, server.name, number, str(load.connections), result)
        if result.requests:
            row.cpu_ms = sum(used.values()) * 1000 / result.requests
        row.busiest_worker_share = _busiest_share(server, used)
        say(
            f" {result.requests_per_second:,.1f}/s, p99 {result.p99_ms:.1f} ms"
            + (f", {result.errors} errors" if result.errors else "")
            + (
                f", busiest worker {row.busiest_worker_share:.0%} of the CPU"
                if row.busiest_worker_share is not None
                else ""
            )
        )
        self.add(row)

    def mixed(
        self, server: Server, number: int, auth: str, logins: tuple[str, ...]
    ) -> None:
        """Logins saturate the CPU while 4 connections fetch the JWKS ~100/s."""
        say(f"  mixed: {server.name} ...", end="")
        c = self.args.connections // 2
        logs = wrk.Load("POST", server.token_path, c, auth, logins)
        jwks = wrk.Load("GET", server.jwks_path, 4, delay_ms=40)
        try:
            self.wait_idle()
            storm = self.wrk(server, logs, self.args.duration + 2)
            time.sleep(1)  # the logins are queued before the JWKS is measured
            paced = self.wrk(server, jwks, self.args.duration)
            fetches, logged = paced.result(), storm.result()
        except wrk.LoadError as exc:
            say(f" failed: {exc}")
            self.add(Row("mixed: jwks", server.name, number, "-", status="failed"))
            return
        say(f" JWKS p99 {fetches.p99_ms:.1f} ms, {logged.requests_per_second:.1f}/s")
        self.add(_row("mixed: jwks", server.name, number, "4 @ 100/s", fetches))
        self.add(_row("mixed: password", server.name, number, str(c), logged))

    def wait_idle(self) -> None:
        """Until every server has finished what earlier runs left in flight.

        Not only the one about to be measured: a peer's run that ended with
        16 logins queued (seconds of bcrypt) would otherwise share the cores
        with the next server's run. Seen on 2026-12-07: the mixed run that
        followed DOT's password run read a JWKS p99 of 30 ms, 6 ms alone.
        """
        for server in [self.ceiling, *self.servers]:
            if server is not None:
                waited = server.wait_idle()
                if waited > 1:  # busy for more than the first few checks
                    self.report.meta.setdefault("waited_for", []).append(
                        [server.name, round(waited, 1)]
                    )

    def wrk(self, server: Server, load: wrk.Load, seconds: int) -> wrk.Run:
        self.runs += 1
        caps = [n for n in (load.max_requests, self.args.max_requests) if n]
        load = dataclasses.replace(load, max_requests=min(caps, default=0))
        return wrk.Run(server.base_url, load, seconds, self.workdir, f"r{self.runs}")

    def profiler(self, server: Server, scenario: str) -> Any:
        if self.args.profile != scenario or server.name != OURS:
            return None
        assert server.popen is not None
        worker = _children(server.popen.pid)[-1]
        out = Path(tempfile.gettempdir()) / f"authbench-profile-{scenario}.txt"
        self.report.meta["profile"] = str(out)
        # --gil: only the thread running Python, i.e. where the CPU goes.
        command = [
            str(Path(sys.executable).with_name("py-spy")),
            *(
                f"record --gil --nonblocking --format raw --pid {worker} "
                f"--duration {self.args.duration} --output {out}"
            ).split(),
        ]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def races(self) -> None:
        """shared/peers/race_refresh.py against each server, in this process."""
        spec = importlib.util.spec_from_file_location(
            "race_refresh", servers.PEERS / "race_refresh.py"
        )
        assert spec is not None and spec.loader is not None
        race = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(race)
        for server in self.servers:
            say(f"  race: {server.name} ...", end="")
            user, password = server.users[0]
            # sys.argv of this process only: the secrets never reach a real argv.
            argv = [
                *("race_refresh", "--token-url", server.base_url + server.token_path),
                *("--client-id", server.client[0], "--client-secret", server.client[1]),
                *("--username", user, "--password", password, "--parallel", "20"),
                *("--rounds", str(self.args.race_rounds)),
            ]
            out = io.StringIO()
            saved, sys.argv = sys.argv, argv
            try:
                with contextlib.redirect_stdout(out):
                    code = race.main()
            except SystemExit as exc:
                code = 2
                out.write(f"{exc}\n")
            finally:
                sys.argv = saved
            rounds = [
                json.loads(x) for x in out.getvalue().splitlines() if x[:1] == "{"
            ]
            verdicts: dict[str, int] = {}
            for r in rounds:
                verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
            summary = ", ".join(f"{n}/{len(rounds)} {v}" for v, n in verdicts.items())
            summary = ("PASS: " if code == 0 else "FAIL: ") + (
                summary or out.getvalue()
            )
            say(" " + summary)
            self.report.race[server.name] = {
                "passed": code == 0,
                "summary": summary,
                "rounds": rounds,
            }

    def add(self, row: Row) -> None:
        self.report.rows.append(row)


def _row(scenario: str, server: str, number: int, conns: str, r: wrk.Result) -> Row:
    if r.requests == 0:
        return Row(scenario, server, number, conns, status="no answer in the window")
    return Row(
        scenario,
        server,
        number,
        conns,
        r.requests_per_second,
        r.p50_ms,
        r.p99_ms,
        r.errors,
        r.requests,
        error_kinds=r.error_kinds,
    )


def _busiest_share(server: Server, used: dict[int, float]) -> float | None:
    """The busiest worker's share of the workers' CPU in `used`, if several."""
    if server.popen is None:
        return None
    workers = [used.get(pid, 0.0) for pid in _children(server.popen.pid)]
    if len(workers) < 2 or sum(workers) <= 0:
        return None
    return round(max(workers) / sum(workers), 3)


def _children(pid: int) -> list[int]:
    """uvicorn's worker processes: the children of `pid` but its resource tracker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if (
                ppid == pid
                and b"resource_tracker" not in stat.with_name("cmdline").read_bytes()
            ):
                found.append(int(stat.parent.name))
    return sorted(found) or [pid]


def say(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    versions = {}
    for name in [*VERSIONS.split(), "authserver"]:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    node = shutil.which("node")
    if node:
        versions["node"] = subprocess.run(
            [node, "--version"], capture_output=True, text=True
        ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "platform": platform.platform(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "versions": versions,
        "settings": {k: v for k, v in vars(args).items() if k != "json_out"}
        | {"json_out": str(args.json_out) if args.json_out else None},
        "load_average": [["start", *os.getloadavg()]],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk.require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="authbench-"))
    bench = Bench(args, workdir)
    try:
        bench.start()
        report = bench.run()
    except (servers.ServerError, wrk.LoadError) as exc:
        say(f"python -m bench: {exc}")
        return 1
    finally:
        bench.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    loads = [x[1] for x in report.meta["load_average"]]
    print(
        f"{report.meta['date']}, 1-min load average {min(loads):.1f}-{max(loads):.1f}"
    )
    print(report.markdown())
    if args.json_out:
        report.write_json(args.json_out)
    failed = [r for r in report.rows if r.status == "failed"]
    return 1 if failed else 0
