"""Inference configuration, models and packaging (ignore files, limits, digests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import DeployConfigError
from deployer.inference import (
    MAX_MODELS,
    Environment,
    InferenceConfig,
    Model,
    check_models,
    load_inference_config,
    model_dir_env,
    model_from_argument,
    parse_requirements,
)
from deployer.package import package, snapshot


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_amlignore_wins_over_gitignore(tmp_path: Path) -> None:
    src = _tree(
        tmp_path / "src",
        {
            "score.py": "def init(): pass\n",
            "util/helpers.py": "",
            "data/big.csv": "x",
            "notes.log": "",
            "keep.log": "",
            ".amlignore": "data/\n*.log\n!keep.log\n",
            ".gitignore": "util/\n",
            ".git/config": "",
        },
    )
    kept = [relative for relative, _ in snapshot(src)]
    assert kept == [".amlignore", ".gitignore", "keep.log", "score.py", "util/helpers.py"]


def test_gitignore_when_no_amlignore_and_nested_ignore_files(tmp_path: Path) -> None:
    src = _tree(
        tmp_path / "src",
        {
            "score.py": "",
            ".gitignore": "*.tmp\n",
            "a.tmp": "",
            "pkg/mod.py": "",
            "pkg/cache.bin": "",
            "pkg/.gitignore": "*.bin\n",
            "pkg/deep/x.tmp": "",
        },
    )
    kept = [relative for relative, _ in snapshot(src)]
    assert kept == [".gitignore", "pkg/.gitignore", "pkg/mod.py", "score.py"]


def test_entry_script_must_exist_and_stay_inside(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"score.py": ""})
    with pytest.raises(DeployConfigError, match=r"entry_script: missing\.py not found in"):
        InferenceConfig("missing.py", src)
    (tmp_path / "outside.py").write_text("")
    with pytest.raises(DeployConfigError, match="outside the source directory"):
        InferenceConfig("../outside.py", src)
    with pytest.raises(DeployConfigError, match=r"is not a \.py file"):
        (src / "score.txt").write_text("")
        InferenceConfig("score.txt", src)


def test_ignored_entry_script_is_refused(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"score.py": "", ".amlignore": "score.py\n"})
    inference = InferenceConfig("score.py", src)
    model = tmp_path / "model.bin"
    model.write_bytes(b"m")
    with pytest.raises(DeployConfigError, match="excluded by an ignore file"):
        package(inference, (Model(path=model),))


def test_package_layout_and_digest(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"score.py": "print(1)\n", "lib/x.py": ""})
    model_file = tmp_path / "model.joblib"
    model_file.write_bytes(b"weights")
    model_dir = _tree(tmp_path / "encoder", {"vocab.txt": "a", "sub/w.bin": "b"})
    models = check_models([Model(path=model_file), Model(path=model_dir, name="enc", version=2)])
    inference = InferenceConfig("score.py", src)
    first = package(inference, models)
    targets = [f.target for f in (*first.app_files, *first.model_files)]
    assert targets == [
        "lib/x.py",
        "score.py",
        "azureml-models/model/1/model.joblib",
        "azureml-models/enc/2/encoder/sub/w.bin",
        "azureml-models/enc/2/encoder/vocab.txt",
    ]
    assert package(inference, models).digest == first.digest
    model_file.write_bytes(b"new weights")
    assert package(inference, models).digest != first.digest
    assert package(inference, models, extra="config-b").digest != package(inference, models).digest
    out = tmp_path / "out"
    first.write(out / "app", out)
    assert (out / "app" / "score.py").read_text() == "print(1)\n"
    assert (out / "azureml-models" / "enc" / "2" / "encoder" / "sub" / "w.bin").read_text() == "b"


def test_entry_script_alone_without_source_directory(tmp_path: Path) -> None:
    script = tmp_path / "somewhere" / "score.py"
    script.parent.mkdir()
    script.write_text("")
    model = tmp_path / "m.pkl"
    model.write_bytes(b"1")
    built = package(InferenceConfig(str(script)), (Model(path=model),))
    assert [f.target for f in built.app_files] == ["score.py"]
    assert built.entry_script == "score.py"


def test_model_arguments(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"")
    assert model_from_argument(str(path)) == Model(path=path, name="model", version=1)
    assert model_from_argument(f"iris:3={path}") == Model(path=path, name="iris", version=3)
    remote = model_from_argument("https://acct.blob.core.windows.net/models/iris.joblib?sv=1")
    assert (remote.name, remote.file_name) == ("iris", "iris.joblib")
    with pytest.raises(DeployConfigError, match="does not exist"):
        model_from_argument(str(tmp_path / "nope"))
    with pytest.raises(DeployConfigError, match="the version must be a number"):
        model_from_argument(f"iris:x={path}")


def test_model_limits_and_dir_env(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"")
    with pytest.raises(DeployConfigError, match="give at least one model"):
        check_models([])
    with pytest.raises(DeployConfigError, match="two models named m version 1"):
        check_models([Model(path=path), Model(path=path)])
    many = [Model(path=path, name=f"m{i}") for i in range(MAX_MODELS + 1)]
    with pytest.raises(DeployConfigError, match=f"{MAX_MODELS + 1} models; at most {MAX_MODELS}"):
        check_models(many)
    assert len(check_models(many[:MAX_MODELS])) == MAX_MODELS
    one = (Model(path=path, name="iris", version=2),)
    assert model_dir_env(one, "/var/app") == "/var/app/azureml-models/iris/2"
    assert model_dir_env((*one, Model(path=path)), "/var/app") == "/var/app/azureml-models"


def test_requirements_and_environment_hash() -> None:
    assert parse_requirements("# c\nscikit-learn>=1.4  # why\n\njoblib\n", "r.txt") == (
        "scikit-learn>=1.4",
        "joblib",
    )
    with pytest.raises(DeployConfigError, match=r"r.txt:2: nested requirement files"):
        parse_requirements("a\n-r other.txt\n", "r.txt")
    plain = Environment()
    assert plain.local_requirements() == ("azureml-inference-server-http",)
    pinned = Environment(pip_requirements=("azureml_inference_server_http==1.5.1", "joblib"))
    assert pinned.local_requirements() == ("azureml_inference_server_http==1.5.1", "joblib")
    same = Environment(
        name="other", pip_requirements=("joblib", "azureml_inference_server_http==1.5.1")
    )
    assert same.local_hash() == pinned.local_hash()
    assert Environment(pip_requirements=("joblib",)).local_hash() != plain.local_hash()
    with pytest.raises(DeployConfigError, match="image: 'Bad Image' is not a container image"):
        Environment(image="Bad Image")
    Environment(image="myacr.azurecr.io/models/iris:1.0")


def test_inference_config_file(tmp_path: Path) -> None:
    _tree(tmp_path / "src", {"score.py": ""})
    (tmp_path / "req.txt").write_text("joblib\n")
    path = tmp_path / "inference.yaml"
    path.write_text(
        "entry_script: score.py\nsource_directory: src\n"
        "environment: {image: 'myacr.azurecr.io/iris:1', requirements_file: req.txt}\n"
    )
    loaded = load_inference_config(path)
    assert loaded.source_directory == tmp_path / "src"
    assert loaded.environment.image == "myacr.azurecr.io/iris:1"
    assert loaded.environment.pip_requirements == ("joblib",)
    path.write_text("entry_script: score.py\nsource_dir: src\n")
    with pytest.raises(DeployConfigError, match="source_dir: unknown parameter"):
        load_inference_config(path)
