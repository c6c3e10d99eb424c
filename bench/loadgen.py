"""The load generator: separate processes driving virtual users over HTTP.

Each virtual user (VU) owns one keep-alive connection and sends its next
request when the previous answer arrives (closed loop), or on a fixed schedule
(paced, used for the JWKS side of the mixed scenario). VUs are spread over one
or more generator processes, each running its own uvloop event loop, so the
generator runs beside the server rather than inside it.

A scenario runs in three phases with one clock (CLOCK_MONOTONIC is system-wide
on Linux, so all processes agree on it):
  prepare  logins a VU needs before it can start (refresh, introspection);
           the parent waits until every process is ready
  warm-up  closed-loop VUs start one by one; nothing recorded but failures
  window   completions and their latencies are recorded
A request still in flight when the window closes is not counted. Failures are
counted over all three phases: a request that fails anywhere is a failure.

This module imports nothing from the server, so spawning a generator is cheap.
"""

import array
import asyncio
import base64
import json
import multiprocessing
import multiprocessing.connection
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from bench.httpclient import Connection, HTTPClientError, Response, build_request

FORM = "application/x-www-form-urlencoded"
READY_TIMEOUT = 300.0  # logins at bcrypt cost 12+ for many VUs take a while
MAX_ERROR_SAMPLES = 5


class LoadError(Exception):
    """The generator could not run the scenario at all."""


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom the VUs talk: one host, paths, credentials."""

    host: str
    port: int
    token_path: str
    jwks_path: str
    discovery_path: str
    introspection_path: str | None
    client_id: str
    client_secret: str
    users: tuple[tuple[str, str], ...]  # (username, password); VU i uses i % len

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def basic_auth(self) -> str:
        # RFC 6749 §2.3.1: form-urlencode id and secret before Basic encoding.
        pair = f"{_form_quote(self.client_id)}:{_form_quote(self.client_secret)}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class Group:
    """One kind of VU in a scenario (the mixed scenario has two groups)."""

    label: str
    action: str  # one of ACTIONS
    vus: int
    path: str = ""  # for "get" and "post"
    body: bytes = b""  # for "post"
    expect: bytes = b""  # a substring a 200 answer must contain
    rate: float | None = None  # requests/s of the whole group when paced


ACTIONS = (
    "get",
    "post",
    "password",
    "refresh",
    "client_credentials",
    "introspect",
)


@dataclass(frozen=True)
class Plan:
    endpoint: Endpoint
    groups: tuple[Group, ...]
    warmup: float
    duration: float
    max_requests: int  # for the whole scenario, over every process
    timeout: float
    processes: int
    client: str = "raw"  # "raw" or "httpx2"


@dataclass
class GroupResult:
    label: str
    vus: int
    completed: int = 0  # successful answers inside the window
    errors: int = 0  # failures in any phase
    window: float = 0.0  # seconds actually measured (shorter if capped)
    latencies: "array.array[float]" = field(default_factory=lambda: array.array("d"))
    error_samples: Counter[str] = field(default_factory=Counter)

    def merge(self, other: "GroupResult") -> None:
        self.vus += other.vus
        self.completed += other.completed
        self.errors += other.errors
        self.latencies.extend(other.latencies)
        self.error_samples.update(other.error_samples)

    @property
    def requests_per_second(self) -> float:
        return self.completed / self.window if self.window > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Latency quantile in seconds (nearest rank), None without data."""
        if not self.latencies:
            return None
        ordered: list[float] = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
        return ordered[rank]


# --- the parent side ---------------------------------------------------------


def run_plan(
    plan: Plan, on_start: Callable[[float], None] | None = None
) -> list[GroupResult]:
    """Run one scenario in `plan.processes` generator processes; merged results.

    `on_start(start)` is called once every VU is prepared, with the monotonic
    time the warm-up begins (the profiler starts from it).
    """
    ctx = multiprocessing.get_context("spawn")
    shares = _split(plan)
    pipes: list[multiprocessing.connection.Connection] = []
    procs: list[Any] = []
    try:
        for share in shares:
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_child_main, args=(child_end, share), daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)
        for pipe in pipes:
            message = _receive(pipe, READY_TIMEOUT, "prepare")
            if message[0] != "ready":
                raise LoadError(f"generator failed while preparing: {message[1]}")
        start = time.monotonic() + 0.05
        for pipe in pipes:
            pipe.send(("go", start))
        if on_start is not None:
            on_start(start)
        budget = plan.warmup + plan.duration + plan.timeout + 30
        merged: dict[str, GroupResult] = {}
        windows: dict[str, list[tuple[int, float]]] = {}
        for pipe in pipes:
            message = _receive(pipe, budget, "run")
            if message[0] != "result":
                raise LoadError(f"generator failed: {message[1]}")
            for result in message[1]:
                windows.setdefault(result.label, []).append(
                    (result.completed, result.window)
                )
                if result.label in merged:
                    merged[result.label].merge(result)
                else:
                    merged[result.label] = result
        for label, result in merged.items():
            # Each process may have stopped at its own cap: the rate is the sum
            # of the processes' rates, expressed as one window.
            rate = sum(n / w for n, w in windows[label] if w > 0)
            result.window = result.completed / rate if rate else plan.duration
        return [merged[g.label] for g in plan.groups]
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _receive(
    pipe: multiprocessing.connection.Connection, timeout: float, phase: str
) -> tuple[str, Any]:
    if not pipe.poll(timeout):
        raise LoadError(f"generator timed out in the {phase} phase")
    try:
        message: tuple[str, Any] = pipe.recv()
    except EOFError:
        raise LoadError(f"generator died in the {phase} phase") from None
    return message


def _split(plan: Plan) -> list["Share"]:
    """Deal each group's VUs round-robin over the processes."""
    count = max(1, min(plan.processes, sum(g.vus for g in plan.groups)))
    shares = []
    for index in range(count):
        parts = []
        for group in plan.groups:
            vu_ids = tuple(range(index, group.vus, count))
            if vu_ids:
                parts.append((group, vu_ids))
        shares.append(
            Share(
                endpoint=plan.endpoint,
                parts=tuple(parts),
                warmup=plan.warmup,
                duration=plan.duration,
                max_requests=max(1, plan.max_requests // count),
                timeout=plan.timeout,
                client=plan.client,
            )
        )
    return shares


# --- the child side ----------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """What one generator process runs: some VUs of each group."""

    endpoint: Endpoint
    parts: tuple[tuple[Group, tuple[int, ...]], ...]
    warmup: float
    duration: float
    max_requests: int
    timeout: float
    client: str


def _child_main(pipe: multiprocessing.connection.Connection, share: Share) -> None:
    import uvloop

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_Generator(pipe, share).run())
    except BaseException as exc:  # report anything, then die
        try:
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        raise


class _Sender(Protocol):
    def prepare(self, method: str, path: str, body: bytes) -> Any: ...

    async def send(self, prepared: Any) -> Response: ...

    def abort_stale(self, now: float, timeout: float) -> None: ...

    async def close(self) -> None: ...


class _RawSender:
    """One Connection per VU; requests are pre-built bytes."""

    def __init__(self, endpoint: Endpoint, auth: str) -> None:
        self.endpoint = endpoint
        self.connection = Connection(endpoint.host, endpoint.port)
        self.auth = auth

    def prepare(self, method: str, path: str, body: bytes) -> bytes:
        headers = {}
        if method == "POST":
            headers = {"Content-Type": FORM, "Authorization": self.auth}
        return build_request(
            method, path, self.endpoint.authority, body=body, headers=headers
        )

    async def send(self, prepared: bytes) -> Response:
        return await self.connection.request(prepared)

    def abort_stale(self, now: float, timeout: float) -> None:
        sent_at = self.connection.sent_at
        if sent_at is not None and now - sent_at > timeout:
            self.connection.abort(f"timeout after {timeout:g} s")

    async def close(self) -> None:
        self.connection.close()


class _Httpx2Sender:
    """httpx2 for comparison: same requests through a general-purpose client."""

    def __init__(self, client: Any, auth: str) -> None:
        self.client = client
        self.auth = auth

    def prepare(self, method: str, path: str, body: bytes) -> tuple[str, str, bytes]:
        return (method, path, body)

    async def send(self, prepared: tuple[str, str, bytes]) -> Response:
        import httpx2

        method, path, body = prepared
        headers = {"Content-Type": FORM, "Authorization": self.auth}
        try:
            answer = await self.client.request(
                method, path, content=body or None, headers=headers if body else None
            )
        except httpx2.HTTPError as exc:
            raise HTTPClientError(f"{type(exc).__name__}: {exc}") from None
        return Response(answer.status_code, answer.content)

    def abort_stale(self, now: float, timeout: float) -> None:
        pass  # httpx2 enforces its own timeout

    async def close(self) -> None:
        pass


class _Generator:
    def __init__(self, pipe: multiprocessing.connection.Connection, share: Share):
        self.pipe = pipe
        self.share = share
        self.endpoint = share.endpoint
        self.auth = share.endpoint.basic_auth
        self.results = {
            g.label: GroupResult(g.label, len(ids)) for g, ids in share.parts
        }
        self.senders: list[_Sender] = []
        self.window_start = self.window_end = float("inf")
        self.stopped_at: float | None = None
        self.total = 0
        self.stop = asyncio.Event()
        self.httpx2_client: Any = None

    async def run(self) -> None:
        vus = [
            _VirtualUser(self, group, vu_id, self._sender())
            for group, ids in self.share.parts
            for vu_id in ids
        ]
        await asyncio.gather(*(vu.prepare() for vu in vus))
        self.pipe.send(("ready", None))
        command, start = self.pipe.recv()
        assert command == "go"
        self.window_start = start + self.share.warmup
        self.window_end = self.window_start + self.share.duration
        watchdog = asyncio.create_task(self._watchdog())
        tasks = [asyncio.create_task(vu.run(start)) for vu in vus]
        try:
            delay = max(0.0, self.window_end - time.monotonic())
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
            except TimeoutError:
                pass
        finally:
            for task in (*tasks, watchdog):
                task.cancel()
            await asyncio.gather(*tasks, watchdog, return_exceptions=True)
            for sender in self.senders:
                await sender.close()
            if self.httpx2_client is not None:
                await self.httpx2_client.aclose()
        end = self.stopped_at if self.stopped_at is not None else self.window_end
        for result in self.results.values():
            result.window = max(0.0, end - self.window_start)
        self.pipe.send(("result", list(self.results.values())))

    def _sender(self) -> _Sender:
        sender: _Sender
        if self.share.client == "httpx2":
            if self.httpx2_client is None:
                import httpx2

                total = sum(len(ids) for _, ids in self.share.parts)
                self.httpx2_client = httpx2.AsyncClient(
                    base_url=f"http://{self.endpoint.authority}",
                    limits=httpx2.Limits(
                        max_connections=total, max_keepalive_connections=total
                    ),
                    timeout=self.share.timeout,
                )
            sender = _Httpx2Sender(self.httpx2_client, self.auth)
        else:
            sender = _RawSender(self.endpoint, self.auth)
        self.senders.append(sender)
        return sender

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for sender in self.senders:
                sender.abort_stale(now, self.share.timeout)

    def record(self, label: str, sent: float, done: float) -> None:
        if self.window_start <= done < self.window_end and self.stopped_at is None:
            result = self.results[label]
            result.completed += 1
            result.latencies.append(done - sent)
            self.total += 1
            if self.total >= self.share.max_requests:
                self.stopped_at = done
                self.stop.set()

    def fail(self, label: str, reason: str) -> None:
        if self.stopped_at is not None or time.monotonic() >= self.window_end:
            return  # cut off by the end of the run, not a failure of the server
        result = self.results[label]
        result.errors += 1
        if len(result.error_samples) < MAX_ERROR_SAMPLES or reason in (
            result.error_samples
        ):
            result.error_samples[reason] += 1


class _VirtualUser:
    def __init__(
        self, gen: _Generator, group: Group, vu_id: int, sender: _Sender
    ) -> None:
        self.gen = gen
        self.group = group
        self.vu_id = vu_id
        self.sender = sender
        endpoint = gen.endpoint
        users = endpoint.users or (("", ""),)
        self.username, self.password = users[vu_id % len(users)]
        self.prepared: Any = None
        self.refresh_token: str | None = None

    # -- requests -------------------------------------------------------------

    def _login_request(self) -> Any:
        body = urlencode(
            {
                "grant_type": "password",
                "username": self.username,
                "password": self.password,
            }
        ).encode()
        return self.sender.prepare("POST", self.gen.endpoint.token_path, body)

    def _refresh_request(self) -> Any:
        assert self.refresh_token is not None
        body = urlencode(
            {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        ).encode()
        return self.sender.prepare("POST", self.gen.endpoint.token_path, body)

    async def _login(self) -> dict[str, Any] | None:
        """A password grant outside the measurement (for refresh/introspection)."""
        try:
            answer = await self.sender.send(self._login_request())
        except HTTPClientError as exc:
            self.gen.fail(self.group.label, f"login: {exc}")
            return None
        tokens = _json_object(answer)
        if answer.status != 200 or tokens is None or "access_token" not in tokens:
            self.gen.fail(self.group.label, f"login: {_describe(answer)}")
            return None
        return tokens

    async def prepare(self) -> None:
        group, endpoint = self.group, self.gen.endpoint
        match group.action:
            case "get":
                self.prepared = self.sender.prepare("GET", group.path, b"")
            case "post":
                self.prepared = self.sender.prepare("POST", group.path, group.body)
            case "password":
                self.prepared = self._login_request()
            case "client_credentials":
                body = b"grant_type=client_credentials"
                self.prepared = self.sender.prepare("POST", endpoint.token_path, body)
            case "refresh":
                tokens = await self._login()
                if tokens is not None:
                    self.refresh_token = tokens.get("refresh_token")
            case "introspect":
                assert endpoint.introspection_path is not None
                tokens = await self._login()
                if tokens is not None:
                    body = urlencode(
                        {
                            "token": tokens["access_token"],
                            "token_type_hint": "access_token",
                        }
                    ).encode()
                    self.prepared = self.sender.prepare(
                        "POST", endpoint.introspection_path, body
                    )
            case _:
                raise LoadError(f"unknown action {group.action!r}")

    # -- the loop -------------------------------------------------------------

    async def run(self, start: float) -> None:
        group = self.group
        if group.rate:
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            await self._run_paced(group.rate / group.vus)
            return
        # Closed-loop VUs start one after another over the warm-up. Started all
        # at once, slow requests that share the CPU fairly (bcrypt) would all
        # finish together, round after round, and a window would count whole
        # rounds: a rate quantised by the concurrency.
        ramp = self.gen.share.warmup * self.vu_id / group.vus
        await asyncio.sleep(max(0.0, start + ramp - time.monotonic()))
        while True:
            await self._one(time.monotonic())

    async def _run_paced(self, rate: float) -> None:
        # Latency counts from the moment the request was due, not sent, so a
        # stalled server shows as latency instead of as fewer requests
        # (coordinated omission).
        interval = 1.0 / rate
        due = time.monotonic() + random.uniform(0, interval)
        while True:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._one(due)
            due += interval

    async def _one(self, due: float) -> None:
        group, gen = self.group, self.gen
        if group.action == "refresh" and self.refresh_token is None:
            tokens = await self._login()  # a broken chain starts over
            if tokens is None:
                await asyncio.sleep(0.1)  # do not spin on a failing server
                return
            self.refresh_token = tokens.get("refresh_token")
            return
        if self.prepared is None and group.action != "refresh":
            await asyncio.sleep(0.1)  # preparation failed (already counted)
            if group.action == "introspect":
                await self.prepare()
            return
        request = (
            self._refresh_request() if group.action == "refresh" else self.prepared
        )
        try:
            answer = await self.sender.send(request)
        except HTTPClientError as exc:
            if group.action == "refresh":
                self.refresh_token = None  # the answer is lost; so is the chain
            gen.fail(group.label, str(exc))
            return
        done = time.monotonic()
        problem = self._check(answer)
        if problem is None:
            gen.record(group.label, due, done)
        else:
            gen.fail(group.label, problem)

    def _check(self, answer: Response) -> str | None:
        """None when the answer is what this request must get, else why not."""
        if answer.status != 200:
            if self.group.action == "refresh":
                self.refresh_token = None
            return _describe(answer)
        match self.group.action:
            case "get" | "post":
                if self.group.expect and self.group.expect not in answer.body:
                    return f"200 without {self.group.expect.decode()!r}"
            case "password" | "client_credentials":
                if b'"access_token"' not in answer.body:
                    return "200 without access_token"
            case "refresh":
                tokens = _json_object(answer)
                new = tokens.get("refresh_token") if tokens else None
                if not isinstance(new, str) or "access_token" not in (tokens or {}):
                    self.refresh_token = None
                    return "200 without access_token and refresh_token"
                self.refresh_token = new
            case "introspect":
                claims = _json_object(answer)
                if not claims or claims.get("active") is not True:
                    return f"token not active: {answer.body[:80]!r}"
        return None


def _json_object(answer: Response) -> dict[str, Any] | None:
    try:
        value = json.loads(answer.body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _describe(answer: Response) -> str:
    """A short, stable description of a bad answer (for grouping samples)."""
    data = _json_object(answer)
    if data and "error" in data:
        return f"{answer.status} {data['error']}"
    return f"{answer.status} {answer.body[:60]!r}"


def _form_quote(value: str) -> str:
    return urlencode({"": value})[1:]
