"""Per-cloud name suffixes and regions, read from `catalogue/clouds.yaml` (data, not code)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from rules.errors import CatalogueError
from rules.yamlfiles import read_package_yaml

SUFFIX_KEYS = (
    "aks_api",
    "aks_private",
    "mcr",
    "mcr_data",
    "acr",
    "storage",
    "azureml_api",
    "kusto",
    "cloudapp",
    "management",
    "login",
)


@dataclass(frozen=True, slots=True)
class CloudProfile:
    """One cloud's suffixes; None marks a name the documentation does not give."""

    name: str
    suffixes: dict[str, str | None]
    regions: frozenset[str]


@cache
def cloud_profiles() -> dict[str, CloudProfile]:
    data = read_package_yaml("clouds.yaml")
    profiles = {}
    for name, entry in data.items():
        missing = [k for k in (*SUFFIX_KEYS, "regions") if k not in entry]
        if missing:
            raise CatalogueError(f"clouds.yaml: {name}: missing {', '.join(missing)}")
        suffixes = {k: entry[k] for k in SUFFIX_KEYS}
        profiles[name] = CloudProfile(name, suffixes, frozenset(entry["regions"]))
    return profiles


def cloud_profile(name: str) -> CloudProfile:
    try:
        return cloud_profiles()[name]
    except KeyError:
        raise CatalogueError(f"unknown cloud {name!r}") from None
