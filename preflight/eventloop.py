"""The event loop every preflight run uses: uvloop where it is installed, else asyncio's.

A run of 1,000 HTTPS endpoints spends most of its CPU in the loop's socket and TLS
callbacks; uvloop's libuv loop does that work in C (bench/preflight_runner.py measures
both in one run). Where uvloop has no wheel the standard loop gives the same results.
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
