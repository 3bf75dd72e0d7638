"""The event loop every preflight run uses: uvloop where it is installed, else asyncio's.

The loop's own work (readiness, callbacks, timers) is a small part of a run: the TLS
handshakes, done by `ssl` on either loop, are most of it. uvloop did that small part for
less in an earlier run of bench/preflight_runner.py (1,000 HTTPS endpoints: 1.72 against
2.00 CPU-s, 1.93 against 2.20 × the chain); later runs, which alternate the two loops, put
them within noise of each other (1.25 against 1.33 s). Where uvloop has no wheel the
standard loop gives the same results; the probe tests run on this loop too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop has no wheel for this platform
    uvloop = None  # type: ignore[assignment]

USES_UVLOOP = uvloop is not None


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, on uvloop when it is available."""
    if uvloop is not None:
        return uvloop.run(main)
    return asyncio.run(main)
