"""Reading and writing the deployer's files: size-limited, alias-free YAML; atomic writes.

Atomic writes (temp file + rename) are what make an interrupted deploy harmless: a file is
either the old version or the new one, never half of each.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import DeployConfigError
from rules.yamlfiles import SAFE_LOADER

MAX_FILE_BYTES = 4 * 1024 * 1024


def _reject_aliases(data: Any, where: str) -> None:
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                raise DeployConfigError(where, "YAML aliases of mappings or lists are not allowed")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """One YAML mapping from `path`; every failure is a one-line DeployConfigError."""
    where = str(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DeployConfigError(where, f"{what} is larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeployConfigError(where, f"{what} not found") from None
    except IsADirectoryError:
        raise DeployConfigError(where, f"{what} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise DeployConfigError(where, f"{what} is not UTF-8 text") from None
    except OSError as exc:
        raise DeployConfigError(where, f"cannot read {what} ({exc.strerror})") from None
    try:
        documents = list(yaml.load_all(text, Loader=SAFE_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DeployConfigError(where, f"not valid YAML{at}: {problem}") from None
    if len(documents) != 1 or documents[0] is None:
        raise DeployConfigError(where, f"{what} must be exactly one YAML document")
    data = documents[0]
    if not isinstance(data, dict):
        raise DeployConfigError(where, f"{what} must be a mapping of parameter names to values")
    _reject_aliases(data, where)
    return data


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` with `data` in one rename; readers see the old file or the new one."""
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, value: Any, mode: int = 0o644) -> None:
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n", mode)


def read_json(path: Path) -> Any:
    """The parsed file, or None when it does not exist or is not JSON (a crash mid-write
    cannot leave one, but a hand edit can)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
