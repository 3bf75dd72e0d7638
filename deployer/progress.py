"""A live progress display for long waits: a spinner with the latest step on a terminal,
plain timestamped lines elsewhere (CI logs), nothing when quiet."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO


class Progress:
    """Use as a context manager; call it with each step's message."""

    def __init__(self, show: bool = True, stream: TextIO | None = None) -> None:
        self.show = show
        self.stream = stream or sys.stderr
        self._started = time.monotonic()
        self._status: Any = None
        self._console: Any = None

    def __enter__(self) -> Progress:
        if self.show and self.stream.isatty():
            from rich.console import Console

            self._console = Console(file=self.stream)
            self._status = self._console.status("starting", spinner="dots")
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __call__(self, message: str) -> None:
        if not self.show:
            return
        elapsed = time.monotonic() - self._started
        line = f"[{elapsed:6.1f}s] {message}"
        if self._status is not None and self._console is not None:
            self._console.print(line, markup=False, highlight=False)
            self._status.update(message)
        else:
            print(line, file=self.stream, flush=True)
