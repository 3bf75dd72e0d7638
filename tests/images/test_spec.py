"""The environment hash, requirement normalisation, environment files, references, and
reproducible tarballs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from deployer.errors import DeployConfigError
from deployer.images import (
    ImageConfigError,
    ImageEnvironment,
    ImageReference,
    RegistryLocation,
    ResolvedEnvironment,
    load_environment_file,
)
from deployer.images.build import pip_platforms
from deployer.images.spec import from_inference_environment, normalise_requirement
from deployer.images.tarball import LayerWriter
from deployer.inference import Environment

BASE = ImageReference.parse("myacr.azurecr.io/base/python:3.11")
DIGEST = "sha256:" + "ab" * 32


def resolved(*requirements: str, **fields: object) -> ResolvedEnvironment:
    env = ImageEnvironment(BASE, requirements, **fields)  # type: ignore[arg-type]
    return ResolvedEnvironment(env, DIGEST, "3.11")


def test_the_hash_is_the_documented_canonical_json():
    found = resolved("numpy==1.26.4", "Scikit_Learn>=1.4")
    expected = json.dumps(
        {
            "base": DIGEST,
            "glibc": "2.28",
            "layout": 1,
            "model_server": "azureml-inference-server-http==1.5.1",
            "platform": "linux/amd64",
            "python": "3.11",
            "requirements": ["numpy==1.26.4", "scikit-learn>=1.4"],
            "schema": "aksflight-environment-image",
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert found.canonical_json == expected
    assert found.hash == hashlib.sha256(expected.encode()).hexdigest()[:32]
    assert found.tag == f"env-{found.hash}"


def test_spelling_order_and_duplicates_do_not_change_the_hash():
    one = resolved("Flask[Async,dotenv] >=3.0, <4", "numpy", "numpy")
    two = resolved("numpy", "flask[dotenv,async]<4,>=3.0")
    assert one.hash == two.hash


@pytest.mark.parametrize(
    "change",
    [
        {"requirements": ("numpy==1.26.5",)},
        {"model_server": "azureml-inference-server-http==1.5.0"},
        {"platform": "linux/arm64"},
        {"glibc": "2.31"},
    ],
)
def test_each_input_changes_the_hash(change):
    baseline = resolved("numpy==1.26.4")
    requirements = change.pop("requirements", ("numpy==1.26.4",))
    assert resolved(*requirements, **change).hash != baseline.hash


def test_base_digest_and_python_change_the_hash():
    env = ImageEnvironment(BASE, ("six",))
    assert (
        ResolvedEnvironment(env, DIGEST, "3.11").hash
        != ResolvedEnvironment(env, "sha256:" + "cd" * 32, "3.11").hash
    )
    assert (
        ResolvedEnvironment(env, DIGEST, "3.11").hash
        != ResolvedEnvironment(env, DIGEST, "3.12").hash
    )


def test_the_name_is_not_part_of_the_hash():
    assert resolved("six", name="a").hash == resolved("six", name="b").hash


def test_a_model_server_pin_in_the_requirements_is_the_model_server():
    env = ImageEnvironment(BASE, ("azureml-inference-server-http==1.4.0", "six"))
    assert env.model_server == "azureml-inference-server-http==1.4.0"
    assert env.pip_requirements == ("six",)
    assert env.install_requirements == ("six", "azureml-inference-server-http==1.4.0")
    assert ImageEnvironment(BASE, ("six",), model_server="bundled").install_requirements == ("six",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--index-url x", "pip options"),
        ("not a requirement!", "is not a requirement"),
        ("pkg @ file:///x.whl", "local files"),
    ],
)
def test_bad_requirements_are_refused(line, message):
    with pytest.raises(ImageConfigError, match=message):
        normalise_requirement(line)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"platform": "windows/amd64"}, "platform"),
        ({"python": "3"}, "python"),
        ({"glibc": "2.5"}, "glibc"),
        ({"model_server": "flask"}, "model_server"),
    ],
)
def test_bad_fields_name_the_field(fields, message):
    with pytest.raises(ImageConfigError, match=f"^{message}: "):
        ImageEnvironment(BASE, **fields)


def test_environment_file(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pinned\nsix==1.17.0\nidna  # any\n")
    path = tmp_path / "env.yaml"
    path.write_text(
        "name: iris\nbase_image: myacr.azurecr.io/base/python:3.11\n"
        "requirements_file: requirements.txt\npython: '3.11'\nmodel_server: bundled\n"
    )
    env = load_environment_file(path)
    assert env.pip_requirements == ("idna", "six==1.17.0")
    assert (env.name, env.python, env.model_server) == ("iris", "3.11", "bundled")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base_image: 3\n", "base_image: must be a string"),
        ("pip_requirements: [six]\n", "base_image: required"),
        ("base_image: a.io/b\ncolour: red\n", "colour: unknown field"),
        ("base_image: nohost\n", "name the registry host"),
        ("base_image: a.io/b\npip_requirements: [six]\nrequirements_file: r.txt\n", "not both"),
        ("base_image: a.io/b\nrequirements_file: missing.txt\n", "requirements file not found"),
        ("base_image: a.io/b\npip_requirements: ['-r other.txt']\n", "nested requirement files"),
        ("base_image: a.io/b\npython: 3.11\n", "python: must be a string"),
    ],
)
def test_bad_environment_files_are_one_line_config_errors(tmp_path, text, message):
    path = tmp_path / "env.yaml"
    path.write_text(text)
    with pytest.raises(ImageConfigError, match=message) as caught:
        load_environment_file(path)
    assert isinstance(caught.value, DeployConfigError)
    assert "\n" not in str(caught.value)


def test_from_the_deployers_inference_environment():
    env = from_inference_environment(
        Environment(name="e", image=str(BASE), pip_requirements=("six",))
    )
    assert (env.base_image, env.pip_requirements, env.name) == (BASE, ("six",), "e")
    with pytest.raises(ImageConfigError, match="needs a base image"):
        from_inference_environment(Environment())


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("myacr.azurecr.io/a/b:1", ("myacr.azurecr.io", "a/b", "1", None)),
        ("127.0.0.1:5000/x", ("127.0.0.1:5000", "x", "latest", None)),
        (f"localhost/x@{DIGEST}", ("localhost", "x", None, DIGEST)),
        (f"r.io/x:t@{DIGEST}", ("r.io", "x", "t", DIGEST)),
    ],
)
def test_image_references(text, parts):
    ref = ImageReference.parse(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == parts


@pytest.mark.parametrize("text", ["ubuntu", "r.io/UPPER", "r.io/x:", "r.io/x@sha256:12"])
def test_bad_image_references(text):
    with pytest.raises(ImageConfigError):
        ImageReference.parse(text)


def test_registry_locations():
    assert str(RegistryLocation.parse("r.io/envs/")) == "r.io/envs"
    with pytest.raises(ImageConfigError, match="HOST/REPOSITORY"):
        RegistryLocation.parse("r.io")


def test_pip_platforms_cover_older_manylinux_tags():
    tags = pip_platforms("linux/amd64", "2.28")
    assert tags[0] == "manylinux_2_28_x86_64" and "manylinux_2_17_x86_64" in tags
    assert tags[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    assert pip_platforms("linux/arm64", "2.17") == [
        "manylinux_2_17_aarch64",
        "manylinux2014_aarch64",
    ]


# --- reproducible tarballs --------------------------------------------------------------


def make_tree(root, mtime: int, mode_extra: int = 0) -> None:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("b = 2\n")
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "tool").write_text("#!/bin/sh\n")
    (root / "pkg" / "sub" / "tool").chmod(0o700)
    (root / "pkg" / "link").symlink_to("a.py")
    for path in [*root.rglob("*"), root]:
        if not path.is_symlink():
            os.utime(path, (mtime, mtime))
            if path.is_file() and path.name != "tool":
                path.chmod(0o600 | mode_extra)


def test_the_same_files_give_the_same_layer(tmp_path):
    layers = []
    for name, mtime, extra in (("one", 1_000_000, 0), ("two", 2_000_000, 0o044)):
        root = tmp_path / name
        root.mkdir()
        make_tree(root, mtime, extra)
        writer = LayerWriter()
        writer.add_tree(root, "/opt/x")
        writer.add_bytes("/opt/bin/start", b"#!/bin/sh\n", executable=True)
        layers.append(writer.write(tmp_path / f"{name}.tar.gz"))
    assert layers[0].digest == layers[1].digest
    data = layers[0].path.read_bytes()
    assert layers[0].digest == "sha256:" + hashlib.sha256(data).hexdigest()
    plain = gzip.decompress(data)
    assert layers[0].diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:3] == ["opt", "opt/bin", "opt/bin/start"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    modes = {m.name: m.mode for m in members}
    assert modes["opt/x/pkg/a.py"] == 0o644
    assert modes["opt/x/pkg/sub/tool"] == 0o755
    assert modes["opt/x/pkg"] == 0o755
    link = next(m for m in members if m.name == "opt/x/pkg/link")
    assert link.issym() and link.linkname == "a.py"
