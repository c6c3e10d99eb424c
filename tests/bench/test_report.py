"""Linking rows to their ceilings: the one measured closest before them."""

import json

from bench import markdown
from bench.report import CEILING_APP, OURS, Report, Row


def _row(scenario: str, rps: float, *, workers: int | None = 2, **fields) -> Row:
    server = CEILING_APP if scenario.startswith("ceiling: ") else OURS
    return Row(
        scenario=scenario,
        server=server,
        workers=workers,
        database=fields.pop("database", "-"),
        concurrency="32",
        requests_per_second=rps,
        **fields,
    )


def test_each_row_takes_the_ceiling_measured_right_before_it():
    report = Report(meta={})
    sqlite_refresh = _row("refresh", 500, bound="sign2", database="sqlite")
    pg_refresh = _row("refresh", 500, bound="sign2", database="postgresql")
    one_worker = _row("refresh", 300, workers=1, bound="sign2", database="sqlite")
    password = _row("password", 9, bound="bcrypt", database="postgresql")
    report.rows = [
        _row("ceiling: sign2", 1000),
        sqlite_refresh,
        _row("ceiling: sign2", 600, workers=1),
        _row("ceiling: sign2", 2000),  # the machine sped up meanwhile
        pg_refresh,
        one_worker,
        _row("ceiling: bcrypt", 10, workers=None),
        password,
    ]

    report.link(peer_name=None)

    assert sqlite_refresh.bound_rps == 1000 and sqlite_refresh.fraction_of_bound == 0.5
    assert pg_refresh.bound_rps == 2000 and pg_refresh.fraction_of_bound == 0.25
    assert one_worker.bound_rps == 600  # same worker count only
    assert password.bound_rps == 10 and password.fraction_of_bound == 0.9


def test_a_row_measured_before_any_ceiling_takes_the_last_one():
    # An external target's rows follow the ceilings; a row before every
    # ceiling of its kind (not something the runner does) still gets one.
    report = Report(meta={})
    early = _row("client_credentials", 600, bound="sign1")
    report.rows = [early, _row("ceiling: sign1", 1000), _row("ceiling: sign1", 1200)]

    report.link(peer_name=None)

    assert early.bound_rps == 1200


def test_a_failed_ceiling_bounds_nothing():
    report = Report(meta={})
    refresh = _row("refresh", 500, bound="sign2")
    report.rows = [_row("ceiling: sign2", 0, status="failed: no answer"), refresh]

    report.link(peer_name=None)

    assert refresh.bound_rps is None and refresh.fraction_of_bound is None


def test_repeated_pairs_are_judged_on_their_median():
    report = Report(meta={})
    ratios = [(1000, 350), (1000, 550), (1000, 450)]  # 35%, 55%, 45%
    for ceiling, rate in ratios:
        report.rows.append(_row("ceiling: sign2", ceiling, section="refresh"))
        report.rows.append(
            _row("refresh", rate, bound="sign2", target=0.4, database="postgresql")
        )

    report.link(peer_name=None)
    report.check_targets(rss_limit_mb=150, p99_limit_ms=50)

    [verdict] = [t for t in report.targets if t["target"].startswith("refresh")]
    assert verdict["met"] is True
    assert verdict["detail"] == "median 45% of 3 (35%, 55%, 45%), 0 errors"


def test_paired_ceilings_are_shown_with_their_scenario():
    report = Report(meta={})
    report.rows = [
        _row("ceiling: bytes", 30000, section="jwks"),
        _row("jwks", 20000, bound="bytes", database="postgresql"),
        _row("ceiling: sign2", 1500, section="refresh"),
        _row("refresh", 800, bound="sign2", database="postgresql"),
        _row("ceiling: sign1", 3000),  # unpaired: on top
    ]

    names = [row.scenario for row in report.ordered(peer_name=None)]

    assert names == [
        "ceiling: sign1",
        "ceiling: bytes",
        "jwks",
        "ceiling: sign2",
        "refresh",
    ]


def _linked_report() -> Report:
    report = Report(meta={"date": "2026-11-26"})
    report.rows = [
        _row("ceiling: sign1", 1000, section="client_credentials"),
        _row("client_credentials", 650, bound="sign1", target=0.6, errors=2),
        _row("introspection", 0, status="n/a (not supported)"),
    ]
    report.link(peer_name=None)
    return report


def test_a_report_survives_its_json():
    report = _linked_report()
    report.check_targets(rss_limit_mb=150, p99_limit_ms=50)

    again = Report.from_dict(json.loads(json.dumps(report.as_dict())))

    assert again == report


def test_markdown_has_one_line_per_row_with_every_column():
    report = _linked_report()

    table = report.markdown(peer_name=None).splitlines()

    header, rule, *rows = table
    assert header.startswith("| scenario | server |")
    assert len(rows) == len(report.rows)
    assert {line.count("|") for line in (header, rule, *rows)} == {13}
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert cells[1][0] == "client_credentials" and cells[1][8] == "2"
    assert cells[1][5] == "650" and cells[1][9:11] == ["1,000", "65%"]
    assert cells[2][0] == "introspection" and cells[2][5:8] == [
        "n/a (not supported)",
        "-",
        "-",
    ]


def test_markdown_command_refuses_a_file_that_is_not_a_run(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"meta": {}}')

    assert markdown.main([str(bad)]) == 2
    assert "cannot read" in capsys.readouterr().err
