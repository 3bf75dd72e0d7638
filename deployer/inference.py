"""The inference configuration: entry script, source directory, environment and models.

As v1's `InferenceConfig(entry_script=..., source_directory=..., environment=...)` and the
models passed to `Model.deploy`. The model server finds the models through
`AZUREML_MODEL_DIR`: with one model it is `azureml-models/<name>/<version>`, with several
it is `azureml-models` and each model is in `<name>/<version>/` below it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer._files import read_yaml_mapping
from deployer.errors import DeployConfigError

MAX_MODELS = 1000  # v1: at most 1,000 models per deployment
MODEL_SERVER_REQUIREMENT = "azureml-inference-server-http"
MODEL_ROOT = "azureml-models"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_URI = re.compile(r"^(https?)://[^\s]+$")
_INCLUDE_OPTIONS = ("-r", "-c", "--requirement", "--constraint")
_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9._-]+)*(?::[A-Za-z0-9_.-]{1,128})?(?:@sha256:[a-f0-9]{64})?$"
)


@dataclass(frozen=True)
class Model:
    """A model file or directory on this machine, or a URI an init container downloads."""

    path: Path | None = None
    name: str = ""
    version: int = 1
    uri: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.uri is None):
            raise DeployConfigError("model", "give exactly one of a path or a URI")
        if self.uri is not None and not _URI.fullmatch(self.uri):
            raise DeployConfigError("model", f"{self.uri!r} is not an http(s) URI")
        if self.path is not None and not self.path.exists():
            raise DeployConfigError("model", f"{self.path} does not exist")
        name = self.name or _default_name(self)
        if not _MODEL_NAME.fullmatch(name):
            raise DeployConfigError(
                "model", f"name {name!r}: letters, digits, '.', '_' and '-', at most 255"
            )
        object.__setattr__(self, "name", name)
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise DeployConfigError("model", f"{name}: version must be a whole number >= 1")

    @property
    def relative_dir(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def file_name(self) -> str:
        """The name the model keeps inside its directory (a file model is one file)."""
        if self.path is not None:
            return self.path.name
        assert self.uri is not None
        tail = self.uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return tail or "model"


def _default_name(model: Model) -> str:
    if model.path is not None:
        stem = model.path.name.split(".", 1)[0] if model.path.is_file() else model.path.name
    else:
        assert model.uri is not None
        stem = model.uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-._")
    return cleaned or "model"


def model_from_argument(text: str) -> Model:
    """`--model PATH`, `--model NAME=PATH`, `--model NAME:VERSION=PATH` or an http(s) URI."""
    name, version, target = "", 1, text
    head, sep, tail = text.partition("=")
    if sep and "/" not in head and "://" not in head:
        target = tail
        name, colon, number = head.partition(":")
        if colon:
            if not number.isdigit():
                raise DeployConfigError("--model", f"{text!r}: the version must be a number")
            version = int(number)
    if _URI.fullmatch(target):
        return Model(uri=target, name=name, version=version)
    return Model(path=Path(target), name=name, version=version)


def check_models(models: list[Model] | tuple[Model, ...]) -> tuple[Model, ...]:
    if not models:
        raise DeployConfigError("models", "give at least one model")
    if len(models) > MAX_MODELS:
        raise DeployConfigError("models", f"{len(models)} models; at most {MAX_MODELS} allowed")
    seen: set[str] = set()
    for model in models:
        if model.relative_dir in seen:
            raise DeployConfigError(
                "models", f"two models named {model.name} version {model.version}"
            )
        seen.add(model.relative_dir)
    return tuple(models)


def model_dir_env(models: tuple[Model, ...], root: str) -> str:
    """What `AZUREML_MODEL_DIR` is for these models when they are unpacked under `root`."""
    if len(models) == 1:
        return f"{root}/{MODEL_ROOT}/{models[0].relative_dir}"
    return f"{root}/{MODEL_ROOT}"


def parse_requirements(text: str, source: str) -> tuple[str, ...]:
    """Requirement lines without comments; includes (-r/-c) are refused so the hash is
    the whole definition."""
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.split()[0] in _INCLUDE_OPTIONS:
            raise DeployConfigError(
                f"{source}:{number}", "nested requirement files are not supported; inline them"
            )
        lines.append(" ".join(line.split()))
    return tuple(lines)


def read_requirements(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeployConfigError(str(path), "requirements file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployConfigError(str(path), f"cannot read the requirements file ({exc})") from None
    return parse_requirements(text, str(path))


def _requirement_name(line: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else ""


@dataclass(frozen=True)
class Environment:
    """Where the entry script runs: a container image (Kubernetes) and pip requirements
    (the local target builds a virtualenv from them, cached by their content hash)."""

    name: str = "aksflight-default"
    image: str | None = None
    pip_requirements: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.image is not None and (len(self.image) > 255 or not _IMAGE.fullmatch(self.image)):
            raise DeployConfigError("image", f"{self.image!r} is not a container image reference")
        if not self.name or not self.name.isprintable():
            raise DeployConfigError("environment", "the name must be printable and not empty")

    def local_requirements(self) -> tuple[str, ...]:
        """The requirements plus the model server itself, sorted and without duplicates."""
        lines = set(self.pip_requirements)
        names = {_requirement_name(line) for line in lines}
        if MODEL_SERVER_REQUIREMENT not in names:
            lines.add(MODEL_SERVER_REQUIREMENT)
        return tuple(sorted(lines))

    def local_definition(self) -> dict[str, Any]:
        """What a local environment is made of; its hash names the cached virtualenv."""
        return {
            "kind": "virtualenv",
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "requirements": list(self.local_requirements()),
        }

    def local_hash(self) -> str:
        text = json.dumps(self.local_definition(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class InferenceConfig:
    """v1's `InferenceConfig`: the entry script (relative to `source_directory` when given)."""

    entry_script: str
    source_directory: Path | None = None
    environment: Environment = field(default_factory=Environment)

    def __post_init__(self) -> None:
        script = Path(self.entry_script)
        if not self.entry_script or (script.is_absolute() and self.source_directory is not None):
            raise DeployConfigError("entry_script", "give a path relative to the source directory")
        if self.source_directory is not None:
            if not self.source_directory.is_dir():
                raise DeployConfigError(
                    "source_directory", f"{self.source_directory} is not a directory"
                )
            root = self.source_directory.resolve()
            resolved = (root / script).resolve()
            if not resolved.is_relative_to(root):
                raise DeployConfigError(
                    "entry_script", f"{self.entry_script} is outside the source directory"
                )
            if not resolved.is_file():
                raise DeployConfigError(
                    "entry_script", f"{self.entry_script} not found in {self.source_directory}"
                )
        elif not script.is_file():
            raise DeployConfigError("entry_script", f"{self.entry_script} not found")
        if script.suffix != ".py":
            raise DeployConfigError("entry_script", f"{self.entry_script} is not a .py file")

    @property
    def entry_name(self) -> str:
        """The entry script's path inside the packaged app root."""
        if self.source_directory is None:
            return Path(self.entry_script).name
        return Path(self.entry_script).as_posix()


def load_inference_config(path: Path) -> InferenceConfig:
    """An inference configuration file: entry_script, source_directory (relative to the
    file), environment: {name, image, pip_requirements: [...] or requirements_file}."""
    data = read_yaml_mapping(path, "inference configuration")
    base = path.parent
    known = {"entry_script", "source_directory", "environment"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DeployConfigError(f"{path}: {unknown[0]}", "unknown parameter")
    environment = _environment_from(data.get("environment") or {}, base, str(path))
    source = data.get("source_directory")
    entry = data.get("entry_script")
    if not isinstance(entry, str):
        raise DeployConfigError(f"{path}: entry_script", "required (a path)")
    if source is not None and not isinstance(source, str):
        raise DeployConfigError(f"{path}: source_directory", "must be a path")
    source_dir = base / source if source is not None else None
    script = entry if source_dir is not None else str(base / entry)
    return InferenceConfig(script, source_dir, environment)


def _environment_from(data: Any, base: Path, source: str) -> Environment:
    if not isinstance(data, dict):
        raise DeployConfigError(f"{source}: environment", "must be a mapping")
    unknown = sorted(set(data) - {"name", "image", "pip_requirements", "requirements_file"})
    if unknown:
        raise DeployConfigError(f"{source}: environment.{unknown[0]}", "unknown parameter")
    requirements: tuple[str, ...] = ()
    if "pip_requirements" in data and "requirements_file" in data:
        raise DeployConfigError(
            f"{source}: environment", "give pip_requirements or requirements_file, not both"
        )
    listed = data.get("pip_requirements")
    if listed is not None:
        if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
            raise DeployConfigError(f"{source}: environment.pip_requirements", "a list of lines")
        requirements = parse_requirements("\n".join(listed), f"{source}: pip_requirements")
    if isinstance(data.get("requirements_file"), str):
        requirements = read_requirements(base / data["requirements_file"])
    for key in ("name", "image"):
        if key in data and not isinstance(data[key], str):
            raise DeployConfigError(f"{source}: environment.{key}", "must be a string")
    return Environment(
        name=data.get("name", "aksflight-default"),
        image=data.get("image"),
        pip_requirements=requirements,
    )
