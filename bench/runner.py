"""`python -m bench`: options, the order of the run, and the results."""

import argparse
import asyncio
import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from authserver.services.passwords import usable_cores
from bench import servers
from bench.ceilings import measure_bcrypt
from bench.loadgen import Endpoint, LoadError, Plan, run_plan
from bench.report import CEILING_APP, OURS, Memory, Report, Row
from bench.scenarios import CEILINGS, LOGIN_SCENARIOS, SCENARIOS, Discovery, Scenario

PEER_NAME = "oidc-provider"
TARGET_CLIENT_SECRET_ENV = "BENCH_TARGET_CLIENT_SECRET"
TARGET_PASSWORD_ENV = "BENCH_TARGET_PASSWORD"
PEER_CLIENT = ("bench-client", "bench-secret")  # the peer's defaults (README)
PEER_USER = ("alice", "wonderland")
# The stock in-memory adapter is an LRU of 1000 entries that drops live state
# under load (shared/peers/oidc-provider/README.md); a large LRU keeps it all.
PEER_MEMORY_STORE_MAX = "1000000"
DEFAULT = " (default: %(default)s)"
RSS_LIMIT_MB = 150.0
MIXED_P99_LIMIT_MS = 50.0
VERSIONED = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "joserfc",
    "libpass",
    "bcrypt",
    "authserver",
)

# Not a terminal (CI, a pipe, a file): rich would wrap the table at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 180)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the token server against same-run ceilings and a "
        "peer server. Every figure in one table comes from the same run.",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of: " + ", ".join(SCENARIOS) + " (default: all)",
    )
    run.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="measured seconds per scenario (default: %(default)s)",
    )
    run.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds first (default: %(default)s)",
    )
    run.add_argument(
        "--concurrency",
        default="",
        help="VUs (connections) for every scenario, e.g. 32, or per scenario, "
        "e.g. jwks=64,password=8; defaults: "
        + ", ".join(
            f"{s.name}={s.default_concurrency}"
            for s in SCENARIOS.values()
            if s.default_concurrency
        ),
    )
    run.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each scenario that has a target this many times, each "
        "right after its ceiling; a target is judged on the median ratio "
        "(this shared machine drifts by tens of percent from minute to minute)"
        + DEFAULT,
    )
    run.add_argument(
        "--max-requests",
        type=int,
        default=1_000_000,
        help="stop a scenario's measurement after this many answers" + DEFAULT,
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds before a request fails (default: %(default)s)",
    )
    run.add_argument(
        "--mixed-jwks-rate",
        type=float,
        default=100.0,
        help="JWKS requests/s sent on a schedule during the mixed scenario" + DEFAULT,
    )
    run.add_argument(
        "--mixed-jwks-vus",
        type=int,
        default=4,
        help="connections sending the mixed scenario's JWKS requests" + DEFAULT,
    )
    run.add_argument(
        "--generators",
        type=int,
        default=1,
        help="load generator processes (each runs its share of the VUs)" + DEFAULT,
    )
    run.add_argument(
        "--client",
        choices=("raw", "httpx2"),
        default="raw",
        help="HTTP client of the load generator (raw: asyncio + httptools)" + DEFAULT,
    )
    run.add_argument(
        "--ceilings",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the ceilings that bound the chosen scenarios",
    )
    run.add_argument("--json-out", type=Path, help="also write the results here")
    run.add_argument(
        "--keep", action="store_true", help="keep the temp dir and databases"
    )

    server = parser.add_argument_group("our server")
    server.add_argument(
        "--database-url",
        action="append",
        help="sqlite (a fresh file), postgres (a fresh database on "
        "127.0.0.1:5432), or an async SQLAlchemy URL; a PostgreSQL URL names "
        "the server: a fresh database is created beside it and dropped after. "
        "Repeat to run several. Default: sqlite",
    )
    server.add_argument(
        "--workers",
        default="2",
        help="uvicorn worker counts, comma-separated (default: %(default)s)",
    )
    server.add_argument(
        "--bcrypt-rounds",
        type=int,
        default=12,
        help="bcrypt cost (server and peer) (default: %(default)s)",
    )
    server.add_argument(
        "--access-log",
        action="store_true",
        help="keep uvicorn's access log on (off by default, for both apps)",
    )

    peer = parser.add_argument_group("peer")
    peer.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the same scenarios against oidc-provider (default: when node "
        "is installed)",
    )
    peer.add_argument(
        "--peer-dir",
        type=Path,
        default=servers.PEER_SOURCE,
        help="the peer's source (copied to a writable cache before npm ci)" + DEFAULT,
    )
    peer.add_argument(
        "--peer-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "authserver-bench-peer",
        help="where the peer copy and its node_modules live between runs" + DEFAULT,
    )

    target = parser.add_argument_group(
        "another server (replaces ours; ceilings still run)"
    )
    target.add_argument("--target-url", help="base URL, e.g. http://127.0.0.1:9000")
    target.add_argument(
        "--target-name",
        default="target",
        help="its name in tables (default: %(default)s)",
    )
    target.add_argument("--token-url", help="default: from discovery")
    target.add_argument("--jwks-url", help="default: from discovery")
    target.add_argument("--introspection-url", help="default: from discovery")
    # Secrets never go on a command line (other users see argv in ps): the
    # client secret and the password come from the environment.
    target.add_argument(
        "--client-id", help=f"its client secret: ${TARGET_CLIENT_SECRET_ENV}"
    )
    target.add_argument("--username", help=f"its password: ${TARGET_PASSWORD_ENV}")

    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile refresh-grant requests instead (see python -m bench.profile)",
    )
    args = parser.parse_args(argv)
    try:
        args.scenario_list = _scenario_list(args.scenarios, args.ceilings)
        args.workers_list = [int(w) for w in args.workers.split(",") if w.strip()]
        args.concurrency_map = _concurrency_map(args.concurrency)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.workers_list or min(args.workers_list) < 1:
        parser.error("--workers needs positive counts")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    if min(args.mixed_jwks_vus, args.generators, args.max_requests) < 1:
        parser.error("--mixed-jwks-vus, --generators, --max-requests must be >= 1")
    if args.mixed_jwks_rate <= 0 or args.timeout <= 0:
        parser.error("--mixed-jwks-rate and --timeout must be positive")
    args.database_urls = args.database_url or ["sqlite"]
    return args


def _scenario_list(value: str, with_ceilings: bool) -> list[Scenario]:
    names = {n.strip() for n in value.split(",") if n.strip()}
    unknown = sorted(n for n in names if n not in SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}")
    if with_ceilings:
        names |= {b for n in names if (b := SCENARIOS[n].bound) is not None}
    else:
        names = {n for n in names if not SCENARIOS[n].ceiling}
    # Keep the table in a fixed order whatever order was asked for.
    return [s for s in SCENARIOS.values() if s.name in names]


def _concurrency_map(value: str) -> dict[str, int]:
    value = value.strip()
    if not value:
        return {}
    result = {}
    if value.isdigit():
        result = {name: int(value) for name in SCENARIOS}
    else:
        for part in value.split(","):
            name, _, number = part.partition("=")
            if name.strip() not in SCENARIOS or not number.strip().isdigit():
                raise ValueError(f"bad --concurrency item {part!r}")
            result[name.strip()] = int(number)
    if any(n < 1 for n in result.values()):
        raise ValueError("--concurrency must be at least 1")
    return result


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.report = Report(meta=_meta(args))
        self.selected = {s.name for s in args.scenario_list}

    def concurrency(self, scenario: Scenario) -> int:
        chosen: dict[str, int] = self.args.concurrency_map
        return chosen.get(scenario.name, scenario.default_concurrency)

    # --- the whole run -------------------------------------------------------

    def run(self) -> Report:
        started = time.monotonic()
        with_peer = self.run_peer()  # before anything: a missing node fails fast
        server_scenarios = any(not s.ceiling for s in self.args.scenario_list)
        # With our own server, each ceiling is measured right before the first
        # scenario it bounds (paired): on a shared machine the speed drifts
        # over minutes, and a ratio of figures taken seconds apart drifts less.
        paired = server_scenarios and not self.args.target_url
        if "bcrypt" in self.selected and not paired:
            self.bcrypt_ceiling()
        for workers in self.args.workers_list:
            if not paired:
                self.ceilings(workers)
                continue
            for spec in self.args.database_urls:
                asyncio.run(self.ours(workers, spec))
        if self.args.target_url:
            self.external()
        if with_peer:
            self.peer()
        self.report.meta["elapsed_s"] = round(time.monotonic() - started, 1)
        self.report.link(PEER_NAME)
        self.report.check_targets(RSS_LIMIT_MB, MIXED_P99_LIMIT_MS)
        return self.report

    def run_peer(self) -> bool:
        wanted = self.args.peer
        if wanted is False or self.args.target_url and wanted is None:
            return False
        has_node = servers.node_version() is not None
        if not has_node:
            message = "node is not installed: the peer was not run"
            if wanted:
                raise SystemExit(message)
            self.report.notes.append(message)
            return False
        return any(not s.ceiling for s in self.args.scenario_list)

    def bcrypt_ceiling(self, section: str | None = None) -> None:
        rounds = self.args.bcrypt_rounds
        console.print(f"[bold]bcrypt ceiling[/bold]: timing verifies at cost {rounds}")
        ceiling = measure_bcrypt(rounds)
        self.report.bcrypt = ceiling.as_dict()
        self.report.rows.append(
            Row(
                scenario="ceiling: bcrypt",
                server="(computed)",
                workers=None,
                database="-",
                concurrency=f"{ceiling.cores} cores",
                requests_per_second=ceiling.logins_per_second,
                p50_ms=ceiling.seconds_per_verify * 1000,
                requests=ceiling.verifies,
                section=section,
            )
        )

    def wants_ceilings(self) -> bool:
        return any(s.ceiling for s in self.args.scenario_list)

    def ceilings(self, workers: int) -> None:
        """Every selected served ceiling, one after another (unpaired runs)."""
        wanted = [s for s in CEILINGS if s.name in self.selected and s.name != "bcrypt"]
        if not wanted:
            return
        with self.ceiling_app(workers) as measure_ceiling:
            for scenario in wanted:
                measure_ceiling(scenario.name, None)

    @contextmanager
    def ceiling_app(self, workers: int) -> Iterator[Callable[[str, str | None], None]]:
        """The ceiling app, running; yields a function measuring one ceiling.

        When the app cannot start, its rows say why and measuring does nothing.
        """
        console.print(f"[bold]ceiling app[/bold], {workers} worker(s)")
        try:
            proc = servers.start_uvicorn(
                "ceilings",
                "bench.ceilings:app",
                workers=workers,
                env={},
                workdir=self.workdir,
                ready_path="/bytes",
                access_log=self.args.access_log,
            )
        except servers.ServerError as exc:
            self.server_failed(CEILING_APP, workers, "-", exc)
            yield lambda _name, _section: None
            return
        endpoint = Endpoint(
            host="127.0.0.1",
            port=_port(proc.base_url),
            token_path="/sign1",
            jwks_path="/bytes",
            discovery_path="/bytes",
            introspection_path=None,
            client_id="bench-client",
            client_secret="unused",
            users=(),
        )

        def measure_ceiling(name: str, section: str | None = None) -> None:
            """Measure one ceiling; `section`: the scenario it was paired with."""
            if name == "bcrypt":
                self.bcrypt_ceiling(section)
                return
            self.measure(
                SCENARIOS[name],
                endpoint,
                Discovery(None),
                server=CEILING_APP,
                workers=workers,
                database="-",
                label=f"ceiling: {name}",
                pids=servers.worker_pids(proc.pid),
                section=section,
            )

        try:
            yield measure_ceiling
        finally:
            proc.stop()

    async def ours(self, workers: int, spec: str) -> None:
        from bench import database as db_setup

        url = db_setup.resolve_database_url(spec)
        database = db_setup.database_label(url)
        console.print(f"[bold]{OURS}[/bold], {workers} worker(s), {database}")
        users = max(
            (self.concurrency(SCENARIOS[n]) for n in LOGIN_SCENARIOS), default=1
        )
        try:
            async with db_setup.fresh_database(url, self.workdir, self.args.keep) as db:
                port = servers.free_port()
                settings = db_setup.server_settings(
                    db,
                    self.workdir / f"keys-{workers}-{database}-{port}",
                    f"http://127.0.0.1:{port}",
                    self.args.bcrypt_rounds,
                )
                credentials = await db_setup.populate(settings, users)
                with ExitStack() as stack:
                    # The ceiling app runs beside the server, idle while the
                    # server is measured, so each ceiling can be paired.
                    measure_ceiling = (
                        stack.enter_context(self.ceiling_app(workers))
                        if self.wants_ceilings()
                        else None
                    )
                    proc = servers.start_uvicorn(
                        f"authserver-{workers}w-{database}",
                        "authserver.main:app",
                        workers=workers,
                        env=db_setup.server_env(settings),
                        workdir=self.workdir,
                        ready_path="/.well-known/jwks.json",
                        port=port,
                        access_log=self.args.access_log,
                    )
                    stack.callback(proc.stop)
                    self.against(
                        proc.base_url,
                        name=OURS,
                        workers=workers,
                        database=database,
                        client=(credentials.client_id, credentials.client_secret),
                        users=credentials.users,
                        pids=lambda: servers.worker_pids(proc.pid),
                        measure_ceiling=measure_ceiling,
                    )
        except (servers.ServerError, SQLAlchemyError, OSError) as exc:
            # A database or server that is not there: the other configurations
            # and the peer still run, and these rows say why they are empty.
            # After the rows exist (dropping the database failed, say), the
            # figures stand and the failure is only reported.
            if not any(
                r.server == OURS and r.workers == workers and r.database == database
                for r in self.report.rows
            ):
                self.server_failed(OURS, workers, database, exc)
            else:
                console.print(f"  [red]cleanup failed[/red]: {exc}", highlight=False)

    def external(self) -> None:
        args = self.args
        console.print(f"[bold]{args.target_name}[/bold] at {args.target_url}")
        users: tuple[tuple[str, str], ...] = ()
        password = os.environ.get(TARGET_PASSWORD_ENV)
        if args.username and password:
            users = ((args.username, password),)
        client_secret = os.environ.get(TARGET_CLIENT_SECRET_ENV, "")
        self.against(
            args.target_url.rstrip("/"),
            name=args.target_name,
            workers=None,
            database="-",
            client=(args.client_id or "", client_secret),
            users=users,
            pids=None,
            overrides={
                "token_endpoint": args.token_url,
                "jwks_uri": args.jwks_url,
                "introspection_endpoint": args.introspection_url,
            },
        )

    def peer(self) -> None:
        args = self.args
        console.print(f"[bold]{PEER_NAME}[/bold] (peer): npm ci if needed, start")
        store_max = os.environ.get("MEMORY_STORE_MAX") or PEER_MEMORY_STORE_MAX
        try:
            directory = servers.install_peer(args.peer_dir, args.peer_cache)
            proc = servers.start_peer(
                directory,
                bcrypt_rounds=args.bcrypt_rounds,
                workdir=self.workdir,
                env={"MEMORY_STORE_MAX": store_max},
            )
        except (servers.ServerError, OSError) as exc:
            self.server_failed(PEER_NAME, 1, "memory", exc)
            return
        self.report.meta["peer"] = proc.meta
        try:
            self.against(
                proc.base_url,
                name=PEER_NAME,
                workers=1,
                database="memory",
                client=PEER_CLIENT,
                users=(PEER_USER,),
                pids=lambda: [proc.pid],
            )
        finally:
            proc.stop()
        self.report.notes.append(
            f"{PEER_NAME} keeps grants and refresh tokens in memory "
            f"(MEMORY_STORE_MAX={store_max}); {OURS} persists them to its "
            "database. Both sign one RS256 JWT per refresh (the access token); "
            "its refresh tokens are opaque, ours carry an HS256 MAC. It is one "
            "Node.js process (bcrypt and signing run on libuv's thread pool)."
        )

    def server_failed(
        self, name: str, workers: int | None, database: str, exc: BaseException
    ) -> None:
        """A server that did not start: say why, mark its rows, go on."""
        console.print(f"  [red]{name} failed[/red]: {exc}", highlight=False)
        reason = (
            f"failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        )
        ceiling = name == CEILING_APP
        for scenario in self.args.scenario_list:
            if scenario.ceiling != ceiling or scenario.name == "bcrypt":
                continue
            self.report.rows.append(
                Row(
                    scenario=f"ceiling: {scenario.name}" if ceiling else scenario.name,
                    server=name,
                    workers=workers,
                    database=database,
                    concurrency=str(self.concurrency(scenario)),
                    status=reason,
                )
            )

    # --- one server ----------------------------------------------------------

    def against(
        self,
        base_url: str,
        *,
        name: str,
        workers: int | None,
        database: str,
        client: tuple[str, str],
        users: tuple[tuple[str, str], ...],
        pids: Callable[[], list[int]] | None,
        overrides: dict[str, str | None] | None = None,
        measure_ceiling: Callable[[str, str | None], None] | None = None,
    ) -> None:
        document = _discover(base_url)
        if document is not None:
            document = {**document}
        for key, value in (overrides or {}).items():
            if value:
                document = {**(document or {}), key: value}
        discovery = Discovery(document)
        endpoint = _endpoint(base_url, document or {}, client, users)
        measured = False
        paired: set[str] = set()
        for scenario in self.args.scenario_list:
            if scenario.ceiling:
                continue
            bound = scenario.bound
            pair = measure_ceiling if bound in self.selected else None
            rounds = self.args.repeat if pair and scenario.target else 1
            for _ in range(rounds):
                if pair is not None and bound and (rounds > 1 or bound not in paired):
                    paired.add(bound)  # right before the scenario it bounds
                    pair(bound, scenario.name)
                self.measure(
                    scenario,
                    endpoint,
                    discovery,
                    server=name,
                    workers=workers,
                    database=database,
                    pids=pids() if pids else None,
                )
            measured = True
        if pids is not None and measured:
            self.report.memory.append(
                Memory(
                    name,
                    workers,
                    database,
                    [round((servers.rss_bytes(pid) or 0) / 2**20, 1) for pid in pids()],
                )
            )

    def measure(
        self,
        scenario: Scenario,
        endpoint: Endpoint,
        discovery: Discovery,
        *,
        server: str,
        workers: int | None,
        database: str,
        label: str | None = None,
        pids: list[int] | None = None,
        section: str | None = None,
    ) -> None:
        concurrency = self.concurrency(scenario)
        mixed = (self.args.mixed_jwks_vus, self.args.mixed_jwks_rate)
        groups = scenario.groups(endpoint, concurrency, mixed)
        bound = scenario.bound if server in (OURS, self.args.target_name) else None

        def row(group_label: str, vus: str, **fields: Any) -> Row:
            return Row(
                scenario=label or group_label,
                server=server,
                workers=workers,
                database=database,
                concurrency=vus,
                bound=bound,
                target=scenario.target if bound else None,
                section=section,
                **fields,
            )

        def vus_of(group: Any) -> str:
            return f"{group.vus} @ {group.rate:g}/s" if group.rate else str(group.vus)

        reason = scenario.unsupported(discovery, endpoint)
        if reason is not None:
            console.print(f"  {scenario.name}: {reason}")
            for group in groups:
                self.report.rows.append(row(group.label, vus_of(group), status=reason))
            return
        console.print(f"  {label or scenario.name}: {concurrency} VUs ...", end="")
        if pids:
            servers.wait_idle(pids)
        plan = Plan(
            endpoint=endpoint,
            groups=groups,
            warmup=self.args.warmup,
            duration=self.args.duration,
            max_requests=self.args.max_requests,
            timeout=self.args.timeout,
            processes=self.args.generators,
            client=self.args.client,
        )
        try:
            results = run_plan(plan)
        except LoadError as exc:
            console.print(f" [red]failed[/red]: {exc}")
            for group in groups:
                self.report.rows.append(
                    row(group.label, vus_of(group), status=f"failed: {exc}")
                )
            return
        summary = []
        for group, result in zip(groups, results, strict=True):
            new = Row.from_result(
                result,
                scenario=label or group.label,
                server=server,
                workers=workers,
                database=database,
                concurrency=vus_of(group),
            )
            new.bound = bound
            new.section = section
            if result.completed == 0 and result.errors == 0:
                # Nothing answered and nothing failed in time: requests hung.
                new.status = "failed: no answer in the window (longer --duration?)"
            new.target = scenario.target if bound else None
            self.report.rows.append(new)
            summary.append(
                f"{result.requests_per_second:,.1f}/s"
                + (f" [red]{result.errors} errors[/red]" if result.errors else "")
            )
        console.print(" " + ", ".join(summary))


def _discover(base_url: str) -> dict[str, Any] | None:
    import json

    for path in (
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ):
        try:
            status, body = servers.http_get(base_url + path)
        except OSError:
            continue
        if status == 200:
            try:
                document = json.loads(body)
            except ValueError:
                continue
            if isinstance(document, dict):
                return document
    return None


def _endpoint(
    base_url: str,
    document: dict[str, Any],
    client: tuple[str, str],
    users: tuple[tuple[str, str], ...],
) -> Endpoint:
    base = urlsplit(base_url)
    if base.scheme != "http" or not base.hostname:
        raise SystemExit(f"only plain http targets are supported: {base_url}")

    def path_of(url: str | None, default: str | None) -> str | None:
        if not url:
            return default
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != base.netloc:
            raise SystemExit(f"{url} is not on {base.netloc}: one host per target")
        return parts.path + (f"?{parts.query}" if parts.query else "")

    token = path_of(document.get("token_endpoint"), "/oauth2/token")
    jwks = path_of(document.get("jwks_uri"), "/.well-known/jwks.json")
    assert token is not None and jwks is not None
    return Endpoint(
        host=base.hostname,
        port=base.port or 80,
        token_path=token,
        jwks_path=jwks,
        discovery_path="/.well-known/openid-configuration",
        introspection_path=path_of(document.get("introspection_endpoint"), None),
        client_id=client[0],
        client_secret=client[1],
        users=users,
    )


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in VERSIONED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "load_average_at_start": list(os.getloadavg()),
        "node": servers.node_version(),
        "versions": versions,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "bcrypt_rounds": args.bcrypt_rounds,
            "repeat": args.repeat,
            "workers": args.workers_list,
            "databases": args.database_urls,
            "concurrency": {
                s.name: args.concurrency_map.get(s.name, s.default_concurrency)
                for s in args.scenario_list
                if s.default_concurrency
            },
            "mixed_jwks": {"vus": args.mixed_jwks_vus, "rate": args.mixed_jwks_rate},
            "generators": args.generators,
            "client": args.client,
            "max_requests": args.max_requests,
            "access_log": args.access_log,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        from bench import profile

        return profile.main(
            [
                "--bcrypt-rounds",
                str(args.bcrypt_rounds),
                "--duration",
                str(args.duration),
            ]
            + [f"--database-url={url}" for url in args.database_urls[:1]]
        )
    workdir = Path(tempfile.mkdtemp(prefix="authbench-"))
    try:
        report = Bench(args, workdir).run()
        report.print(console, PEER_NAME)
        if args.json_out:
            report.write_json(args.json_out)
            console.print(f"JSON written to {args.json_out}")
        failed = [r for r in report.rows if r.status.startswith("failed")]
        return 1 if failed else 0
    finally:
        if args.keep:
            console.print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
