"""Request bodies streamed to a replica, counted against the size limit as they pass.

The router never reads a whole large body to check its size: it counts bytes while
forwarding them and stops at the limit. The first `replay_limit` bytes are kept so that a
request can be sent again to another replica if the first one died before answering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from router.errors import BodyTooLarge, ReplicaFailed
from router.messages import BodyReader


class StreamedBody:
    """A client's request body, forwarded chunk by chunk; replayable while it was small."""

    def __init__(self, content: BodyReader, limit: int, replay_limit: int) -> None:
        self._content = content
        self._limit = limit
        self._replay_limit = replay_limit
        self._recorded: list[bytes] | None = []
        self.consumed = 0
        self.too_large = False
        self.complete = False

    @property
    def replayable(self) -> bool:
        return self._recorded is not None or self.consumed == 0

    def recorded(self) -> bytes | None:
        """The whole body when it was kept (for data collection), else None."""
        if self._recorded is None or not self.complete:
            return None
        return b"".join(self._recorded)

    async def chunks(self) -> AsyncIterator[bytes]:
        """A fresh pass over the body: what was kept first, then the rest from the client."""
        if self._recorded is None:
            if self.consumed:
                raise ReplicaFailed("the body was partly sent and is too large to send again")
        else:
            for chunk in list(self._recorded):
                yield chunk
        while not self.complete:
            chunk = await self._content.read()
            if not chunk:
                self.complete = True
                return
            self.consumed += len(chunk)
            if self.consumed > self._limit:
                self.too_large = True
                raise BodyTooLarge(f"request body exceeds {self._limit} bytes")
            if self._recorded is not None:
                if self.consumed <= self._replay_limit:
                    self._recorded.append(chunk)
                else:
                    self._recorded = None
            yield chunk
