"""Results: rows, the ratios between rows of one round, targets, Markdown, JSON."""

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OURS = "authserver"
CEILING = "ceiling"
NOP = "oidc-provider"
NOP_PG = "oidc-provider-pg"
NOP_CLUSTER = "oidc-provider-pg cluster"
DOT = "django-oauth-toolkit"


@dataclass
class Row:
    scenario: str  # a scenario, or "mixed: jwks" / "mixed: password"
    server: str  # a server's name, or CEILING
    round: int
    connections: str
    requests_per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    requests: int = 0
    # CPU of the server's processes and its PostgreSQL backends per answer
    cpu_ms: float | None = None
    # Of the server's worker processes (when it has several), the busiest one's
    # share of their CPU: near 1/workers when the load is spread, near 1 when
    # one worker got every connection and the others idled.
    busiest_worker_share: float | None = None
    status: str = "ok"  # or why there is no figure
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_sample: str = ""


@dataclass(frozen=True)
class Target:
    label: str
    scenario: str
    against: tuple[str, ...]  # the best of these is the reference
    ratio: float  # ours / reference must be at least this

    def ratios(self, rows: list[Row]) -> list[float]:
        """One ratio per round in which both sides were measured."""
        found = []
        for number in sorted({r.round for r in rows}):
            ours = _rps(rows, self.scenario, OURS, number)
            theirs = [
                _rps(rows, self.scenario, s, number)
                for s in self.against
                if not _failing(rows, self.scenario, s, number)
            ]
            best = max((x for x in theirs if x), default=None)
            if ours is not None and best:
                found.append(ours / best)
        return found

    def left_out(self, rows: list[Row]) -> list[Row]:
        """The references' rows that failed too many answers to count."""
        return [
            r
            for r in rows
            if r.scenario == self.scenario
            and r.server in self.against
            and _failing(rows, self.scenario, r.server, r.round)
        ]

    def cpu(self, rows: list[Row]) -> float | None:
        """The reference's CPU per request ÷ ours (median over rounds): what the
        ratio would be if each server had the cores to itself."""
        found = []
        for number in sorted({r.round for r in rows}):
            cost = {
                r.server: r.cpu_ms
                for r in rows
                if (r.scenario, r.round) == (self.scenario, number) and r.cpu_ms
            }
            theirs = [
                cost[s]
                for s in self.against
                if s in cost and not _failing(rows, self.scenario, s, number)
            ]
            if OURS in cost and theirs:
                found.append(min(theirs) / cost[OURS])
        return statistics.median(found) if found else None


TARGETS = (
    Target(
        "refresh >= 1.5x oidc-provider-pg (best mode)",
        "refresh",
        (NOP_PG, NOP_CLUSTER),
        1.5,
    ),
    Target("refresh >= 5x django-oauth-toolkit", "refresh", (DOT,), 5.0),
    Target(
        "client credentials >= 1.2x oidc-provider-pg (best mode)",
        "client_credentials",
        (NOP_PG, NOP_CLUSTER),
        1.2,
    ),
    Target("JWKS >= 1.0x oidc-provider-pg cluster", "jwks", (NOP_CLUSTER,), 1.0),
    Target("password >= 0.9 of the bcrypt ceiling", "password", (CEILING,), 0.9),
)
MIXED_P99_MS = 20.0


# A reference row in which more than this share of the answers were errors
# did not do the work it is compared on (a fast error is no refresh): it is
# left out of the targets, and the verdict names it.
MAX_ERROR_SHARE = 0.01


def _failing(rows: list[Row], scenario: str, server: str, number: int) -> bool:
    for row in rows:
        if (row.scenario, row.server, row.round) == (scenario, server, number):
            return row.errors > MAX_ERROR_SHARE * max(row.requests, 1)
    return False


def _rps(rows: list[Row], scenario: str, server: str, number: int) -> float | None:
    for row in rows:
        if (row.scenario, row.server, row.round) == (scenario, server, number):
            return row.requests_per_second if row.status == "ok" else None
    return None


@dataclass
class Report:
    meta: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    race: dict[str, dict[str, Any]] = field(default_factory=dict)

    def targets(self) -> list[dict[str, Any]]:
        def verdict(label: str, value: Any, met: bool | None, detail: str) -> Any:
            return {"target": label, "value": value, "met": met, "detail": detail}

        verdicts = []
        for target in TARGETS:
            ratios = target.ratios(self.rows)
            value = statistics.median(ratios) if ratios else None
            met = None if value is None else value >= target.ratio
            detail = "-" if value is None else f"{value:.2f}x"
            for row in target.left_out(self.rows):
                detail += (
                    f" ({row.server} left out: {row.errors:,} errors"
                    f" in {row.requests:,} answers)"
                )
            verdicts.append(verdict(target.label, value, met, detail))
            verdicts[-1] |= {"ratios": ratios, "cpu_ratio": target.cpu(self.rows)}
        worst = max(
            (
                r.p99_ms or 0
                for r in self.rows
                if r.scenario == "mixed: jwks" and r.server == OURS and r.status == "ok"
            ),
            default=None,
        )
        label = f"JWKS p99 < {MIXED_P99_MS:g} ms while logins saturate the CPU"
        met = None if worst is None else worst < MIXED_P99_MS
        detail = "-" if worst is None else f"{worst:.1f} ms"
        verdicts.append(verdict(label, worst, met, detail))
        race = self.race.get(OURS, {})
        label = "refresh race (20 parallel): one new pair, or one shared"
        passed = race.get("passed")
        verdicts.append(verdict(label, passed, passed, race.get("summary", "-")))
        errors = sum(r.errors for r in self.rows if r.server == OURS)
        label = "no errors from authserver"
        verdicts.append(verdict(label, errors, errors == 0, str(errors)))
        return verdicts

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "results": [asdict(r) for r in self.rows],
            "race": self.race,
            "targets": self.targets(),
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def markdown(self) -> str:
        out = [
            "| scenario | server | connections | requests/s | p50 ms | p99 ms "
            "| errors | CPU ms/req | authserver ÷ this |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in self.rows:
            ours = _rps(self.rows, row.scenario, OURS, row.round)
            ratio = "-"
            if row.server != OURS and ours and row.requests_per_second:
                ratio = f"{ours / row.requests_per_second:.2f}x"
            if row.status != "ok":
                figures = [row.status, "-", "-"]
            else:
                figures = [
                    _num(row.requests_per_second),
                    _num(row.p50_ms),
                    _num(row.p99_ms),
                ]
            out.append(
                f"| {row.scenario} | {row.server} | {row.connections} | "
                + " | ".join(figures)
                + f" | {row.errors} | {_num(row.cpu_ms)} | {ratio} |"
            )
        out += [
            "",
            "| race: 20 parallel refreshes of one token | result |",
            "| --- | --- |",
        ]
        out += [f"| {name} | {race['summary']} |" for name, race in self.race.items()]
        out += ["", "| target | measured | met | by CPU per request |"]
        out.append("| --- | --- | --- | ---: |")
        for verdict in self.targets():
            met = {True: "yes", False: "**no**", None: "not measured"}[verdict["met"]]
            cpu = verdict.get("cpu_ratio")
            cpu_text = "-" if cpu is None else f"{cpu:.2f}x"
            out.append(
                f"| {verdict['target']} | {verdict['detail']} | {met} | {cpu_text} |"
            )
        return "\n".join(out)


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"
