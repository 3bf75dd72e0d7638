"""Writing a rendered report: to stdout, or to a file atomically (never half-written)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from aksflight.errors import UsageError


def console_options(path: Path | None) -> Any:
    """Width and colour for console renderers: the terminal's when writing to one."""
    from reports import Options

    if path is None and sys.stdout.isatty():
        width = max(60, min(shutil.get_terminal_size().columns, 200))
        return Options(width=width, color="NO_COLOR" not in os.environ)
    columns = os.environ.get("COLUMNS", "")
    if path is None and columns.isdigit():
        return Options(width=max(60, min(int(columns), 200)))
    return Options()


def write_output(text: str, path: Path | None, stdout: TextIO) -> None:
    if path is None:
        stdout.write(text if text.endswith("\n") else text + "\n")
        return
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{path}: directory {directory} does not exist")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None
