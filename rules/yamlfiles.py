"""YAML reading shared by every layer: PyYAML's safe loader, in C where PyYAML has libyaml.

The catalogue is parsed on every run, and config files can hold thousands of entries; the
C loader builds the same objects as `yaml.safe_load` at a fraction of the cost.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_package_yaml(name: str) -> Any:
    """One of the YAML data files shipped in `rules/catalogue/`, parsed."""
    text = resources.files("rules").joinpath("catalogue", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 (a safe loader)
