"""Log lines as production writes them: through the console handler's filter and the JSON
formatter (kangaroo/logs.py), captured from the root logger at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from kangaroo.logs import ContextFilter, JsonFormatter


class CapturedLines:
    def __init__(self, stream: io.StringIO):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def of(self, logger: str) -> list[dict]:
        return [line for line in self.lines() if line["logger"] == logger]

    def access(self) -> list[dict]:
        return self.of("kangaroo.access")


@contextmanager
def json_lines(level: int = logging.DEBUG) -> Iterator[CapturedLines]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield CapturedLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
