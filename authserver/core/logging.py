"""Logging for the server and the CLI: JSON lines (or console text) with request ids.

One handler on the root logger writes every record, ours and the libraries',
as one JSON object per line: timestamp, level, logger, message, request_id and
the event's `extra` fields. The request id lives in the request context
(core.context), bound once per request or CLI invocation; a filter copies it
onto every record.
"""

import json
import logging
import sys
from datetime import UTC, date, datetime, time
from typing import Any, Literal, TextIO

from authserver.core.context import current_request_id
from authserver.core.redaction import redact, redact_mapping, scrub_text

LogFormat = Literal["auto", "json", "console"]

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# uvicorn repeats its message with terminal colour codes: noise in a log store.
_DROPPED_FIELDS = frozenset({"color_message"})
# Our own fields: an `extra` of the same name must not overwrite them.
_NOT_EXTRA = (
    _RECORD_ATTRS | _DROPPED_FIELDS | {"timestamp", "level", "logger", "request_id"}
)

# uvicorn's loggers: ours take them over so their lines are JSON too.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

# Library loggers capped whatever the root level: below these levels they print
# what we never log. aiosqlite writes every statement with its parameters at
# DEBUG (password hashes, secret hashes, sealed retry answers); SQLAlchemy's
# engine its statements at INFO and result rows at DEBUG; httpx and httpcore
# URLs (query strings) and headers; python-multipart form data; uvicorn's ASGI
# message trace the request headers, Authorization included.
LIBRARY_LOG_CAPS: dict[str, int] = {
    "aiosqlite": logging.WARNING,
    "asyncpg": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "httpx2": logging.WARNING,
    "httpcore2": logging.WARNING,
    "python_multipart": logging.WARNING,
    "multipart": logging.WARNING,
    "uvicorn.asgi": logging.INFO,
}
# AUTH_LOG_SQL: statements at INFO, never their parameters (the engine's
# hide_parameters) and never result rows (DEBUG).
SQL_LOGGER = "sqlalchemy.engine"


class RequestIdFilter(logging.Filter):
    """Stamp the current request id on every record, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def _message(record: logging.LogRecord) -> str:
    """The record's message; for a bad format call, the template without its
    arguments (logging's own error report would print them, secrets and all)."""
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg} [log arguments dropped: they do not fit the message]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, request_id,
    then the record's `extra` fields and any traceback, all of it scrubbed.

    Written here rather than taken from python-json-logger: the access line is
    on every request's path, and one pass over a flat record is cheaper than
    the library's general one plus our scrub (figures in docs/benchmarks.md).
    """

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _NOT_EXTRA:
                fields[key] = value
        if record.exc_info:
            fields["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc_info"] = record.exc_text
        if record.stack_info:
            fields["stack_info"] = self.formatStack(record.stack_info)
        # The timestamp is ours and holds no secret: it skips the scrub.
        timestamp = datetime.fromtimestamp(record.created, UTC).isoformat()
        return json.dumps(
            {"timestamp": timestamp, **redact_mapping(fields)}, default=_json_default
        )


def _json_default(value: object) -> str:
    """Values json cannot encode: dates in ISO 8601, anything else as str()."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


class ConsoleFormatter(logging.Formatter):
    """One readable line per record for development: extras as key=value."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = None
        try:
            record.getMessage()
        except (TypeError, ValueError):  # a bad format call: disarm it
            record.msg, record.args = _message(record), None
        line = super().format(record)
        extras = {
            k: v
            for k, v in vars(record).items()
            if k not in _RECORD_ATTRS and k not in _DROPPED_FIELDS
        }
        extras.pop("request_id", None)
        if extras:
            line += " " + " ".join(f"{k}={v!r}" for k, v in redact(extras).items())
        return scrub_text(line)


def build_handler(stream: TextIO, fmt: LogFormat = "json") -> logging.Handler:
    """A stream handler with the request-id and redaction filters and a formatter.

    `auto` is console text on a terminal (someone reads it) and JSON lines
    otherwise (a log shipper does).
    """
    if fmt == "auto":
        fmt = "console" if _is_terminal(stream) else "json"
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    # No RedactionFilter here: both formatters scrub the whole line themselves,
    # and a second pass would double the cost of every log line.
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    return handler


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def cap_library_loggers(*, log_sql: bool = False) -> None:
    """Hold the libraries' loggers at LIBRARY_LOG_CAPS, whatever the root level.

    `log_sql` lets SQLAlchemy's engine log statements (INFO): the engines are
    made with hide_parameters, so their bound values never appear.
    """
    for name, level in LIBRARY_LOG_CAPS.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger(SQL_LOGGER).setLevel(logging.INFO if log_sql else logging.NOTSET)


def configure_logging(
    level: str = "INFO",
    fmt: LogFormat = "json",
    stream: TextIO | None = None,
    *,
    log_sql: bool = False,
) -> None:
    """Route every logger through one handler on the root logger (stdout)."""
    root = logging.getLogger()
    root.handlers[:] = [build_handler(stream or sys.stdout, fmt)]
    root.setLevel(level.upper())
    # No line we write names the caller's source line, thread or process:
    # do not collect them for every record (the logging HOWTO's advice under
    # "Optimization": it is paid on every request's access line).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # Our middleware writes the access line (without the query string, which
    # may carry a token); uvicorn's own would duplicate it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Alembic logs "Context impl ..." whenever a migration context is made
    # (several per start) and a line per step; whoever migrates logs one line
    # saying what changed instead. At DEBUG, all of it.
    logging.getLogger("alembic").setLevel(
        logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    )
    cap_library_loggers(log_sql=log_sql)
    logging.captureWarnings(True)
