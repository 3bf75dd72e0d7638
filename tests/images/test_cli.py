"""`aksflight image build|lookup|push` end to end against real registries."""

from __future__ import annotations

import json

import httpx
import pytest

from aksflight.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lookup_build_lookup_push(registry, env_file, wheels, capsys):
    workspace = f"{registry.host}/envs"
    code, out, _ = run(
        capsys, "image", "lookup", "-e", str(env_file), "--registry", workspace, "-o", "json"
    )
    assert code == 1
    missing = json.loads(out)
    assert missing["found_in"] is None and missing["tag"].startswith("env-")

    code, out, err = run(
        capsys,
        "image",
        "build",
        "-e",
        str(env_file),
        "--registry",
        workspace,
        "--pip-arg=--no-index",
        f"--pip-arg=--find-links={wheels}",
        "-o",
        "json",
    )
    assert code == 0, err
    built = json.loads(out)
    assert built["source"] == "built" and built["uploaded_bytes"] > 0
    assert built["tag"] == missing["tag"]

    code, out, _ = run(capsys, "image", "lookup", "-e", str(env_file), "--registry", workspace)
    assert code == 0
    assert out.strip() == f"{built['image']} (workspace registry)"

    code, out, err = run(
        capsys,
        "image",
        "build",
        "-e",
        str(env_file),
        "--registry",
        workspace,
        "--pip-arg=--no-index",
    )
    assert code == 0, err
    assert out.strip() == f"{built['image']} (workspace, 0 bytes uploaded)"

    source = f"{workspace}:{built['tag']}"
    code, out, err = run(
        capsys,
        "image",
        "push",
        source,
        f"{registry.host}/promoted/envs",
        "--no-progress",
        "-o",
        "json",
    )
    assert code == 0, err
    pushed = json.loads(out)
    assert pushed["image"].endswith(built["image"].split("@")[1])
    assert pushed["mounted_blobs"] == 4 and pushed["uploaded_bytes"] == 0
    tags = httpx.get(f"http://{registry.host}/v2/promoted/envs/tags/list").json()["tags"]
    assert tags == [built["tag"]]


def test_build_shows_upload_progress(registry, env_file, wheels, capsys):
    code, _, err = run(
        capsys,
        "image",
        "build",
        "-e",
        str(env_file),
        "--registry",
        f"{registry.host}/envs",
        "--pip-arg=--no-index",
        f"--pip-arg=--find-links={wheels}",
    )
    assert code == 0
    assert "building" in err and "upload packages.tar.gz" in err


def test_a_missing_base_is_exit_1_in_one_line(registry, tmp_path, capsys):
    path = tmp_path / "env.yaml"
    path.write_text(f"base_image: {registry.host}/nothing:1\nmodel_server: bundled\n")
    code, _, err = run(
        capsys,
        "image",
        "build",
        "-e",
        str(path),
        "--registry",
        f"{registry.host}/envs",
        "--no-progress",
    )
    assert code == 1
    assert err.strip() == (
        f"aksflight: image build: base image {registry.host}/nothing:1 not found "
        "(no such repository or tag)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["image"], "give an action"),
        (["image", "build", "-e", "missing.yaml", "--registry", "r.io/envs"], "not found"),
        (["image", "lookup", "-e", "ENV", "--registry", "nohost"], "HOST/REPOSITORY"),
        (["image", "push", "r.io/a:1", "r.io/b@sha256:" + "0" * 64], "not a digest"),
    ],
)
def test_bad_input_is_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ENV").write_text("base_image: r.io/base:1\n")
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
