"""Capture everything logged, as the server would write it (our JSON handler)."""

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authserver.core.logging import build_handler, configure_logging


@dataclass
class CapturedLogs:
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def named(self, message: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["message"] == message]


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[CapturedLogs]:
    """Every record of every logger at `level` and above, as JSON lines."""
    captured = CapturedLogs()
    handler = build_handler(captured.stream, "json")
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@contextmanager
def server_logging(
    level: str = "DEBUG", *, log_sql: bool = False
) -> Iterator[CapturedLogs]:
    """Logging set up exactly as the server sets it up at `level` (JSON lines,
    library caps), written to a buffer; the test run's own set-up comes back
    afterwards."""
    captured = CapturedLogs()
    loggers = [logging.getLogger()] + [
        lg
        for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    configure_logging(level, "json", stream=captured.stream, log_sql=log_sql)
    try:
        yield captured
    finally:
        for lg, handlers, saved_level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(saved_level)
            lg.propagate = propagate
        logging.captureWarnings(False)
