"""Reading config and catalogue files: size-limited, alias-free YAML, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from aksflight.errors import UsageError
from rules.catalogue import Catalogue, parse_catalogue
from rules.config import EnvironmentConfig, parse_config
from rules.errors import RulesError
from rules.yamlfiles import SAFE_LOADER

MAX_FILE_BYTES = 32 * 1024 * 1024


def _reject_aliases(data: Any) -> None:
    """Refuse YAML aliases of mappings or lists: a few lines must not expand into millions.

    The fast C loader shares aliased nodes instead of copying them, so a container met
    twice while walking is an alias; walking stays linear in the file's real size.
    """
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                raise UsageError("YAML aliases (*name) of mappings or lists are not allowed")
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)


def read_yaml(path: Path, what: str) -> Any:
    """Parse one YAML document from `path`; every failure is a one-line UsageError."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UsageError(f"{path}: {what} is {size} bytes; at most {MAX_FILE_BYTES} allowed")
        text = path.read_text(encoding="utf-8")
    except UsageError:
        raise
    except FileNotFoundError:
        raise UsageError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: {what} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what} ({exc.strerror})") from None
    if text.lstrip().startswith("{"):
        # JSON is YAML: generated configs (thousands of dependencies) take the fast parser,
        # and JSON has no aliases to refuse.
        try:
            return json.loads(text)
        except RecursionError:
            raise UsageError(f"{path}: {what} is nested too deeply") from None
        except ValueError:
            pass  # not JSON after all: the YAML parser says what is wrong
    try:
        documents = list(yaml.load_all(text, Loader=SAFE_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}: not valid YAML{where}: {problem}") from None
    if not documents or documents == [None]:
        raise UsageError(f"{path}: {what} is empty")
    if len(documents) > 1:
        raise UsageError(f"{path}: {what} must be one YAML document, found {len(documents)}")
    try:
        _reject_aliases(documents[0])
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return documents[0]


def load_config(path: Path) -> EnvironmentConfig:
    data = read_yaml(path, "config")
    try:
        return parse_config(data)
    except RulesError as exc:
        raise UsageError(f"{path}: {exc}") from None


def load_catalogue(path: Path) -> Catalogue:
    data = read_yaml(path, "catalogue")
    try:
        return parse_catalogue(data, str(path))
    except RulesError as exc:
        raise UsageError(str(exc)) from None
