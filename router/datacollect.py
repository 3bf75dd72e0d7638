"""Model data collection: scoring inputs and outputs appended as JSON lines, rotated by size.

The request path only puts a record on a bounded queue (never waits); a writer thread does
the file I/O through the standard library's size-rotating handler. When the queue is full
the record is dropped and counted, because scoring must never slow down for collection.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import threading
import time
from typing import Any

from router.config import DataCollectionConfig
from router.errors import ConfigError

_Record = tuple[float, str, int, bytes | None, bytes | None]


def _text(payload: bytes | None, limit: int) -> dict[str, Any]:
    if payload is None:
        return {"omitted": "body streamed and not kept"}
    if len(payload) > limit:
        return {"omitted": f"body of {len(payload)} bytes exceeds max_record_bytes"}
    try:
        return {"data": json.loads(payload)}
    except ValueError:
        return {"text": payload.decode("utf-8", "replace")}


class DataCollector:
    """Collects one service's inputs and outputs into `<directory>/<service>.jsonl`."""

    def __init__(self, service: str, config: DataCollectionConfig) -> None:
        assert config.directory is not None
        self.service = service
        self.dropped = 0
        self._limit = config.max_record_bytes
        self._queue: queue.Queue[_Record | None] = queue.Queue(maxsize=config.queue_size)
        try:
            config.directory.mkdir(parents=True, exist_ok=True)
            self._handler = logging.handlers.RotatingFileHandler(
                config.directory / f"{service}.jsonl",
                maxBytes=config.max_bytes,
                backupCount=config.backup_count,
                encoding="utf-8",
            )
        except OSError as exc:
            raise ConfigError(
                f"services.{service}.data_collection.directory: cannot write: {exc.strerror}"
            ) from exc
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._thread = threading.Thread(
            target=self._drain, name=f"datacollect-{service}", daemon=True
        )
        self._thread.start()

    def collect(
        self, request_id: str, status: int, request_body: bytes | None, response_body: bytes | None
    ) -> None:
        record: _Record = (time.time(), request_id, status, request_body, response_body)
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            stamp, request_id, status, request_body, response_body = item
            line = json.dumps(
                {
                    "time": stamp,
                    "service": self.service,
                    "request_id": request_id,
                    "status": status,
                    "input": _text(request_body, self._limit),
                    "output": _text(response_body, self._limit),
                },
                separators=(",", ":"),
            )
            self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._handler.close()
