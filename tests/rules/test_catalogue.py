"""The catalogue files: valid, documented, and the docs reference generated from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aksflight.catalogue_doc import render
from rules.catalogue import BUILTIN_SETS, builtin_catalogue, parse_catalogue, requirements_for
from rules.errors import CatalogueError
from rules.yamlfiles import read_package_yaml
from tests.conftest import REPO, example_config


def test_docs_catalogue_is_current() -> None:
    assert (REPO / "docs" / "catalogue.md").read_text() == render()


@pytest.mark.parametrize("name", BUILTIN_SETS)
def test_every_requirement_has_a_source(name: str) -> None:
    for template in builtin_catalogue(name).templates:
        assert template.spec.source.strip()
        assert template.spec.purpose.strip()


def _one(**fields: object) -> dict[str, object]:
    entry = {
        "id": "x",
        "host": "a.example.com",
        "port": 443,
        "phases": ["serving"],
        "purpose": "p",
        "source": "s",
    }
    entry.update(fields)
    return {"set": "mine", "title": "t", "requirements": [entry]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"when": "service.colour == 'red'"}, "unknown name 'service.colour'"),
        ({"when": "__import__('os')"}, "not allowed"),
        ({"when": "service.auth.__class__ == 1"}, "unknown name"),
        ({"when": "service.auth =="}, "not an expression"),
        ({"host": "{secret}.example.com"}, "unknown template variable"),
        ({"host": "a example.com"}, "characters a host cannot have"),
        ({"phases": ["launch"]}, "phases"),
        ({"port": 0}, "port"),
        ({"bogus": 1}, "bogus"),
        ({"source": ""}, "source"),
    ],
)
def test_bad_user_catalogue(fields: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_catalogue(_one(**fields), "mine.yaml")


def test_user_catalogue_conditions_and_templates() -> None:
    data = _one(host="{registry.name}.example.com", when="service.auth == 'key'")
    catalogue = parse_catalogue(data, "mine.yaml")
    config = example_config("key-auth-auto-domain.yaml")
    reqs = requirements_for(config, [catalogue])
    mine = [r for r in reqs if r.catalogue == "mine"]
    assert [(r.id, r.host) for r in mine] == [("mine/x", "contosoprodacr.example.com")]
    token = example_config("token-auth-private-endpoints.yaml")
    assert not [r for r in requirements_for(token, [catalogue]) if r.catalogue == "mine"]


def test_shipped_yaml_files_are_the_builtin_sets() -> None:
    folder = REPO / "rules" / "catalogue"
    names = {p.stem for p in folder.glob("*.yaml")} - {"clouds"}
    assert names == set(BUILTIN_SETS)
    for path in folder.glob("*.yaml"):
        assert yaml.safe_load(Path(path).read_text())


SHIPPED = REPO / "rules" / "catalogue"


@pytest.mark.parametrize("name", sorted(p.name for p in SHIPPED.glob("*.yaml")))
def test_the_fast_loader_reads_each_shipped_file_as_safe_load_does(name: str) -> None:
    text = (SHIPPED / name).read_text(encoding="utf-8")
    assert read_package_yaml(name) == yaml.safe_load(text)
