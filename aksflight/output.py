"""Writing a rendered report: to stdout, or to a file atomically (never half-written)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TextIO

from aksflight.errors import UsageError


def write_output(text: str, path: Path | None, stdout: TextIO) -> None:
    if path is None:
        stdout.write(text if text.endswith("\n") else text + "\n")
        return
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(f"{path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None
