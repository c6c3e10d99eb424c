"""`python -m bench.profile`: where the time goes in a refresh-grant request.

Runs the token server as one uvicorn process (one worker, so one process holds
every request), drives refresh-grant chains at it with the benchmark's load
generator, and samples the server with py-spy for the measured window.

py-spy samples from outside the process: nothing in the server changes, every
thread is seen (aiosqlite runs its queries on a thread of its own), and the
overhead lands on the profiler, not on the server. It needs ptrace rights over
the server process (root, or CAP_SYS_PTRACE, or kernel.yama.ptrace_scope=0).

The window's samples are aggregated over thousands of identical requests, so
the summary reads as the cost breakdown of one request at saturation:
  - inclusive share of the project's own functions (what a request does),
  - self time by library (where the CPU goes).
The raw folded stacks are kept for a flame graph (speedscope.app or
flamegraph.pl read them as they are).
"""

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench import database, servers
from bench.loadgen import Group, Plan, run_plan
from bench.runner import _discover, _endpoint

PACKAGES = (
    ("authserver", "authserver (project code)"),
    ("joserfc", "joserfc (JWT encode/decode)"),
    ("cryptography", "cryptography (RSA sign/verify)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("asyncpg", "asyncpg"),
    ("aiosqlite", "aiosqlite"),
    ("sqlite3", "sqlite3"),
    ("fastapi", "FastAPI"),
    ("starlette", "Starlette"),
    ("pydantic", "pydantic"),
    ("uvicorn", "uvicorn"),
    ("httptools", "httptools"),
    ("anyio", "anyio"),
    ("greenlet", "greenlet"),
    ("json", "json"),
    ("asyncio", "asyncio"),
    ("logging", "logging"),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description="Profile the token server under refresh-grant load (py-spy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="sqlite, postgres or an async SQLAlchemy URL (as python -m bench); "
        "PostgreSQL shows the whole path on one thread",
    )
    parser.add_argument(
        "--scenario",
        choices=("refresh", "password", "client_credentials", "jwks"),
        default="refresh",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--bcrypt-rounds", type=int, default=12)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument(
        "--output-dir", type=Path, default=Path("bench-profile"), help="results"
    )
    return parser.parse_args(argv)


def find_py_spy() -> str:
    candidates = [Path(sys.executable).with_name("py-spy"), shutil.which("py-spy")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit(
        "py-spy is not installed: `.venv/bin/pip install py-spy` (a dev tool)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    py_spy = find_py_spy()
    workdir = Path(tempfile.mkdtemp(prefix="authbench-profile-"))
    try:
        return asyncio.run(_profile(args, py_spy, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _profile(args: argparse.Namespace, py_spy: str, workdir: Path) -> int:
    url = database.resolve_database_url(args.database_url)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    folded = (args.output_dir / f"{args.scenario}.folded").resolve()
    async with database.fresh_database(url, workdir, keep=False) as db_url:
        port = servers.free_port()
        settings = database.server_settings(
            db_url, workdir / "keys", f"http://127.0.0.1:{port}", args.bcrypt_rounds
        )
        credentials = await database.populate(settings, args.concurrency)
        proc = servers.start_uvicorn(
            "authserver-profiled",
            "authserver.main:app",
            workers=1,
            env=database.server_env(settings),
            workdir=workdir,
            ready_path="/.well-known/jwks.json",
            port=port,
        )
        try:
            document = _discover(proc.base_url) or {}
            endpoint = _endpoint(
                proc.base_url,
                document,
                (credentials.client_id, credentials.client_secret),
                credentials.users,
            )
            action = {"jwks": "get"}.get(args.scenario, args.scenario)
            path = endpoint.jwks_path if args.scenario == "jwks" else ""
            plan = Plan(
                endpoint=endpoint,
                groups=(Group(args.scenario, action, args.concurrency, path=path),),
                warmup=args.warmup,
                duration=args.duration,
                max_requests=10_000_000,
                timeout=30.0,
                processes=1,
            )
            recorder: list[subprocess.Popen[bytes]] = []

            def start_recording(start: float) -> None:
                # Sample the window only: not the logins, not the warm-up.
                def launch() -> None:
                    recorder.append(
                        subprocess.Popen(
                            [
                                py_spy,
                                "record",
                                "--pid",
                                str(proc.pid),
                                "--duration",
                                str(max(1, int(args.duration))),
                                "--rate",
                                str(args.rate),
                                "--format",
                                "raw",
                                "--threads",
                                "--idle",
                                "--nonblocking",
                                "--output",
                                str(folded),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                        )
                    )

                delay = max(0.0, start + args.warmup - time.monotonic())
                threading.Timer(delay, launch).start()

            result = run_plan(plan, on_start=start_recording)[0]
            time.sleep(0.5)
            if not recorder:
                raise SystemExit("py-spy did not start")
            _, stderr = recorder[0].communicate(timeout=args.duration + 60)
            if recorder[0].returncode != 0 or not folded.exists():
                raise SystemExit(f"py-spy failed: {stderr.decode(errors='replace')}")
        finally:
            proc.stop()
    p50 = result.percentile(0.5)
    header = (
        f"{args.scenario} grant, {database.database_label(url)}, 1 worker, "
        f"{args.concurrency} VUs, {args.duration:g} s: "
        f"{result.requests_per_second:,.1f} req/s, "
        f"p50 {(p50 or 0) * 1000:.1f} ms, {result.errors} errors"
    )
    summary = summarise(
        folded.read_text(),
        main_tid=proc.pid,
        rate=args.rate,
        requests=result.completed,
    )
    text = f"{header}\n\n{summary}"
    (args.output_dir / f"{args.scenario}-summary.txt").write_text(text + "\n")
    print(text)
    print(f"\nfolded stacks: {folded} (open in speedscope.app or flamegraph.pl)")
    return 0


# Leaf frames where a thread waits rather than works. The event loop's own
# frame is on top both while uvloop polls and while it does socket I/O in C.
LOOP_FRAMES = ("Runner.run", "run_until_complete", "run_forever", "asyncio_run")
WAIT_FRAMES = ("Condition.wait", "Event.wait", "Queue.get", "Thread.join", "select")


def summarise(folded: str, *, main_tid: int, rate: int, requests: int) -> str:
    """Milliseconds per request: the event-loop thread, then the other threads.

    Stacks come from `py-spy record --threads --idle`, so every thread has a
    sample at every tick and a thread's samples add up to wall-clock time.
    """
    if requests <= 0:
        return "no requests completed: nothing to attribute"
    per_request = 1000.0 / rate / requests  # ms per request for one sample
    main_total = main_loop = 0
    main_inclusive: Counter[str] = Counter()
    main_self: Counter[str] = Counter()
    other_busy: Counter[str] = Counter()
    other_threads: dict[str, set[str]] = {}
    sql_wait_line = _aiosqlite_wait_line()
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        if not frames:
            continue
        leaf = frames[-1]
        leaf_name = leaf.partition(" (")[0]
        # py-spy names a thread "thread (TID): NAME" (the main thread's TID is
        # the process id).
        if thread.startswith((f"thread ({main_tid})", f"thread ({main_tid:#x})")):
            main_total += count
            if leaf_name in LOOP_FRAMES:
                main_loop += count
                continue
            for frame in {f for f in frames if "authserver/" in f}:
                main_inclusive[_short(frame)] += count
            main_self[_package(leaf)] += count
            continue
        kind = _thread_kind(thread, frames)
        other_threads.setdefault(kind, set()).add(thread)
        waiting = leaf_name in WAIT_FRAMES or (
            leaf_name == "_connection_worker_thread"
            and sql_wait_line is not None
            and leaf.endswith(f":{sql_wait_line})")
        )
        if not waiting:
            what = _package(leaf)
            if leaf_name == "_connection_worker_thread":
                # Inside the sqlite3 C call: running SQL, or sleeping in
                # SQLite's busy handler until another connection's write ends.
                what = "sqlite3 (SQL, or waiting for the write lock)"
            other_busy[f"{kind}: {what}"] += count
    if main_total == 0:
        return "no samples of the server's main thread (py-spy rights?)"

    def ms(samples: int) -> str:
        return f"{samples * per_request:7.3f} ms"

    busy = main_total - main_loop
    lines = [
        f"Event-loop thread: {ms(main_total).strip()} of wall time per request "
        f"= {ms(busy).strip()} running Python + {ms(main_loop).strip()} in uvloop "
        "(polling, socket I/O in C, or idle)",
        "",
        "  Inclusive, per request, project functions on the event loop:",
    ]
    lines += [f"  {ms(n)}  {name}" for name, n in main_inclusive.most_common(TOP_ROWS)]
    lines += ["", "  Self time, per request, by library (top of the stack):"]
    lines += [f"  {ms(n)}  {name}" for name, n in main_self.most_common(TOP_ROWS)]
    if other_threads:
        lines += ["", "Other threads, working (waiting excluded), per request:"]
        for kind, threads in sorted(other_threads.items()):
            lines.append(f"  {kind}: {len(threads)} thread(s)")
        lines += [f"  {ms(n)}  {name}" for name, n in other_busy.most_common(TOP_ROWS)]
    return "\n".join(lines)


TOP_ROWS = 20


def _thread_kind(thread: str, frames: list[str]) -> str:
    text = thread + ";".join(frames[:8])
    if "aiosqlite" in text:
        return "aiosqlite connection thread"
    if "AnyIO" in text or "anyio" in text or "concurrent/futures" in text:
        return "anyio worker thread (to_thread: bcrypt, key store)"
    return "other thread"


def _aiosqlite_wait_line() -> int | None:
    """The line where aiosqlite's thread waits for work (it varies by version)."""
    try:
        import inspect

        from aiosqlite import core

        lines, first = inspect.getsourcelines(core._connection_worker_thread)
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    for offset, text in enumerate(lines):
        if ".get(" in text and "tx" in text:
            return first + offset
    return None


def _short(frame: str) -> str:
    """`func (path/to/authserver/x.py:12)` -> `func (authserver/x.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("authserver/", "bench/"):
        if marker in path:
            path = marker + path.split(marker, 1)[1]
    return f"{name} ({path})"


def _package(frame: str) -> str:
    _, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.replace("\\", "/").split("/")
    for key, label in PACKAGES:
        if key in parts or any(p.startswith(key) for p in parts[-3:]):
            return label
    return f"other ({parts[-1] if parts else frame})"


if __name__ == "__main__":
    sys.exit(main())
