"""Capture everything logged, as the server would write it (our JSON handler)."""

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from authserver.core.logging import build_handler


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
