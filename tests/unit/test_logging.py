"""JSON and console log lines, the request-id context, redaction at the handler."""

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from authserver.core.context import (
    annotate_request,
    bind_request,
    current_request,
    current_request_id,
    reset_request,
)
from authserver.core.logging import (
    ConsoleFormatter,
    JsonFormatter,
    build_handler,
    configure_logging,
)

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture(autouse=True)
def outside_any_request() -> Iterator[None]:
    # A CLI test before this one may have bound its invocation's id.
    token = bind_request(None)
    yield
    reset_request(token)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("tests.logging")
    handler = build_handler(stream, "json")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_the_fields_in_order(captured):
    logger, stream = captured

    logger.info("token_issued", extra={"client_id": "app", "grant_type": "password"})

    (line,) = lines(stream)
    assert list(line)[:5] == ["timestamp", "level", "logger", "message", "request_id"]
    assert line["level"] == "INFO"
    assert line["logger"] == "tests.logging"
    assert line["message"] == "token_issued"
    assert line["request_id"] is None
    assert line["client_id"] == "app" and line["grant_type"] == "password"
    assert line["timestamp"].endswith("+00:00")


def test_one_object_per_line_even_with_newlines(captured):
    logger, stream = captured

    logger.warning("multi\nline", extra={"detail": "a\nb"})

    assert len(stream.getvalue().splitlines()) == 1


def test_request_id_from_the_context(captured):
    logger, stream = captured
    token = bind_request("req-123")
    try:
        logger.info("inside")
    finally:
        reset_request(token)
    logger.info("outside")

    inside, outside = lines(stream)
    assert inside["request_id"] == "req-123"
    assert outside["request_id"] is None


def test_library_records_get_the_request_id_too(captured):
    _, stream = captured
    library = logging.getLogger("tests.logging.somelibrary")  # propagates to ours
    token = bind_request("req-lib")
    try:
        library.debug("library_line")
    finally:
        reset_request(token)

    assert lines(stream)[0]["request_id"] == "req-lib"


def test_annotations_reach_the_shared_context():
    token = bind_request("req-ann")
    try:
        annotate_request(client_id="app")
        annotate_request(error="invalid_grant")
        context = current_request()
        assert context is not None
        assert (context.client_id, context.error) == ("app", "invalid_grant")
        assert current_request_id() == "req-ann"
    finally:
        reset_request(token)
    annotate_request(client_id="ignored")  # no request: a no-op, not an error
    assert current_request() is None


def test_secrets_are_masked_in_message_extras_and_tracebacks(captured):
    logger, stream = captured

    logger.info("presented %s", JWT, extra={"password": "hunter2", "jti": "j1"})
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        logger.exception("failed", extra={"headers": {"Authorization": "Basic eA=="}})

    output = stream.getvalue()
    assert JWT not in output and "hunter2" not in output and "eA==" not in output
    first, second = lines(stream)
    assert first["password"] == "[REDACTED]" and first["jti"] == "j1"
    assert "ValueError" in second["exc_info"]


def test_console_format_is_readable_and_masked():
    stream = io.StringIO()
    logger = logging.getLogger("tests.logging.console")
    handler = build_handler(stream, "console")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = bind_request("req-c")
        logger.warning("oauth_error", extra={"error": "invalid_grant", "token": JWT})
        reset_request(token)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    line = stream.getvalue()
    assert "WARNING" in line and "[req-c]" in line and "oauth_error" in line
    assert "error='invalid_grant'" in line
    assert JWT not in line


def test_configure_logging_routes_everything_through_one_json_handler():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved_access = (uvicorn_access.handlers[:], uvicorn_access.level)
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.NullHandler())  # as uvicorn's own config does
    uvicorn_error.propagate = False
    stream = io.StringIO()
    try:
        configure_logging("debug", "json", stream=stream)
        uvicorn_error.info(
            "Started server process", extra={"color_message": "\x1b[1mStarted"}
        )
        uvicorn_access.info('127.0.0.1 - "GET /?code=x HTTP/1.1" 200')
        logging.getLogger("sqlalchemy.engine.Engine").info("SELECT secret_hash")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        uvicorn_access.handlers[:] = saved_access[0]
        uvicorn_access.setLevel(saved_access[1])
        uvicorn_error.handlers.clear()
        logging.getLogger("sqlalchemy.engine").setLevel(logging.NOTSET)
        logging.captureWarnings(False)

    (line,) = lines(stream)
    assert line["message"] == "Started server process"
    assert "color_message" not in line


def test_extras_cannot_overwrite_the_leading_fields(captured):
    logger, stream = captured
    token = bind_request("req-own")
    try:
        logger.info(
            "event",
            extra={"timestamp": "forged", "level": "DEBUG", "logger": "x"},
        )
    finally:
        reset_request(token)

    (line,) = lines(stream)
    assert line["level"] == "INFO" and line["logger"] == "tests.logging"
    assert line["timestamp"] != "forged" and line["request_id"] == "req-own"


def test_values_json_cannot_encode_are_written_readably(captured):
    logger, stream = captured
    when = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    ident = uuid.UUID(int=7)

    logger.info("event", extra={"at": when, "id": ident, "ids": {"a", "b"}})

    (line,) = lines(stream)
    assert line["at"] == "2026-11-26T12:00:00+00:00"
    assert line["id"] == str(ident)
    assert sorted(line["ids"]) == ["a", "b"]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_bad_format_call_logs_its_template_but_never_its_arguments(fmt, capsys):
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.logging.bad.{fmt}")
    handler = build_handler(stream, fmt)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("presented %s and %s", "s3cr3t-value")  # one argument short
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    output = stream.getvalue()
    assert "presented %s and %s" in output and "arguments dropped" in output
    assert "s3cr3t-value" not in output
    # logging's own error report (which prints the arguments) never ran.
    assert "s3cr3t-value" not in capsys.readouterr().err


class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize(
    ("terminal", "formatter"),
    [(True, ConsoleFormatter), (False, JsonFormatter)],
    ids=["terminal-console", "pipe-json"],
)
def test_auto_log_format_follows_the_stream(
    terminal: bool, formatter: type[logging.Formatter]
) -> None:
    handler = build_handler(_Stream(terminal), "auto")
    assert type(handler.formatter) is formatter
