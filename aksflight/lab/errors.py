"""The lab's exception tree.

Every failure the lab reports is a `LabError` with a one-line message; the CLI prints it and
exits 2. Errors from `ip`, `nft`, `dnsmasq`, the file system and trustme are translated at the
boundary (``raise ... from exc``), so callers catch one type::

    LabError
    ├── LabSpecError         the spec is wrong (bad host name, behaviour for an unknown host)
    ├── LabEnvironmentError  the machine cannot run a lab (not root, a binary is missing)
    ├── LabCommandError      a command the lab ran failed (the message quotes its stderr)
    └── LabStateError        no state for that lab, or the state file is unreadable
"""

from __future__ import annotations


class LabError(Exception):
    """Base class: anything that stops the lab from being built, used or torn down."""


class LabSpecError(LabError, ValueError):
    """The lab spec (or CLI input that builds one) is invalid."""


class LabEnvironmentError(LabError):
    """This machine cannot host the lab: not root, or `ip`/`nft`/`dnsmasq` is missing."""


class LabCommandError(LabError):
    """A command run for the lab failed; the message names the command and its error."""


class LabStateError(LabError):
    """The lab's state file is missing or cannot be read."""
