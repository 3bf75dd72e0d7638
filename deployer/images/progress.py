"""Upload progress: a small sink the registry reports to; rich bars for the CLI.

The library reports to `NULL_PROGRESS` unless given a sink, so code that embeds the
builder (the deployer's Kubernetes target) decides whether anything is shown.
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)


class ProgressTask(Protocol):
    def advance(self, size: int) -> None: ...

    def finish(self) -> None: ...


class ProgressSink(Protocol):
    def task(self, label: str, total: int) -> ProgressTask: ...

    def note(self, message: str) -> None: ...


class _NullTask:
    def advance(self, size: int) -> None:
        pass

    def finish(self) -> None:
        pass


class NullProgress:
    """Shows nothing."""

    def task(self, label: str, total: int) -> ProgressTask:
        return _NullTask()

    def note(self, message: str) -> None:
        pass


NULL_PROGRESS = NullProgress()


class _RichTask:
    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, size: int) -> None:
        self._progress.advance(self._task_id, size)

    def finish(self) -> None:
        self._progress.stop_task(self._task_id)


class RichProgress:
    """One bar per uploaded blob (bytes, speed); notes are printed above the bars."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def task(self, label: str, total: int) -> ProgressTask:
        return _RichTask(self._progress, self._progress.add_task(f"upload {label}", total=total))

    def note(self, message: str) -> None:
        self._progress.console.print(message, highlight=False)
