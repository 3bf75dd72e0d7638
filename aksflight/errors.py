"""The app layer's exceptions: bad input the CLI reports in one line with exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input: a flag, a file, a value. The message is one line and names what is wrong."""
