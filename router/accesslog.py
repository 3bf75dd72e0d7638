"""Structured access logs: one JSON object a line, written by the logging machinery."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

ACCESS_LOGGER = "router.access"


class AccessLog:
    """Writes one JSON line per request; a disabled log costs one attribute check."""

    def __init__(self, enabled: bool, path: Path | None) -> None:
        self.enabled = enabled
        self._logger = logging.getLogger(f"{ACCESS_LOGGER}.{id(self)}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        self._handler: logging.Handler | None = None
        if enabled:
            handler: logging.Handler = (
                logging.FileHandler(path, encoding="utf-8")
                if path
                else logging.StreamHandler(sys.stdout)
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)
            self._handler = handler

    def write(self, **fields: Any) -> None:
        if self.enabled:
            self._logger.info(json.dumps(fields, separators=(",", ":")))

    def close(self) -> None:
        if self._handler is not None:
            self._logger.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
