"""`aksflight deploy --environment FILE --target kubernetes`: the model image comes from the
environment's content-hashed image in the workspace registry, pinned by digest."""

from __future__ import annotations

import json

import pytest
import yaml

from aksflight.cli import main
from tests.deployer.kube_support import deploy_argv


def test_the_model_deployment_runs_the_environment_image(
    registry, env_file, wheels, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    workspace = f"{registry.host}/envs"
    assert (
        main(
            [
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
            ]
        )
        == 0
    )
    built = json.loads(capsys.readouterr().out)["image"]

    code = main(
        deploy_argv(
            tmp_path,
            "--environment",
            str(env_file),
            "--registry",
            workspace,
            "--no-progress",
            "--dry-run",
            "-o",
            "yaml",
        )
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    model = next(
        d
        for d in yaml.safe_load_all(out)
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "iris"
    )
    images = [c["image"] for c in model["spec"]["template"]["spec"]["containers"]]
    assert built in images and "@sha256:" in built


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "local"], "only for --target kubernetes"),
        (["--image", "x/y:1"], "give one of them"),
        ([], "--registry"),
    ],
)
def test_bad_environment_flags_are_exit_2(env_file, tmp_path, capsys, extra, message):
    argv = deploy_argv(tmp_path, "--environment", str(env_file), "--dry-run", *extra)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
