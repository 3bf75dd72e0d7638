"""What defines an environment image, and its content hash (the image's tag).

The hash is the SHA-256 of this canonical JSON (keys sorted, no spaces, ASCII), so any
machine computes the same tag for the same definition (see docs/images.md):

    {"base": "<the base image's platform manifest digest>",
     "glibc": "2.28", "layout": 1, "model_server": "<requirement line or 'bundled'>",
     "platform": "linux/amd64", "python": "3.11",
     "requirements": ["<normalised requirement>", ...],     # sorted, no duplicates
     "schema": "aksflight-environment-image"}

Normalised requirements: names canonical (PEP 503), extras and specifiers sorted, markers
as `packaging` prints them. The entry script and the model are not part of it: they are
fetched when the container starts, as in v1. The environment's name is not either (two
environments with the same content share one image). Unpinned requirements hash as written:
pin them when the image must not change with the package index.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from deployer._files import read_yaml_mapping
from deployer.errors import DeployConfigError
from deployer.images.errors import ImageConfigError
from deployer.images.reference import ImageReference
from deployer.inference import parse_requirements

SCHEMA = "aksflight-environment-image"
LAYOUT_VERSION = 1  # bump when the start-up files or the directory layout change
MODEL_SERVER_PACKAGE = "azureml-inference-server-http"
DEFAULT_MODEL_SERVER = f"{MODEL_SERVER_PACKAGE}==1.5.1"
BUNDLED = "bundled"
PLATFORMS = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
HASH_LENGTH = 32
_PYTHON = re.compile(r"^3\.[0-9]{1,2}$")
_GLIBC = re.compile(r"^2\.([0-9]{1,2})$")
_FIELDS = frozenset(
    {
        "name",
        "base_image",
        "pip_requirements",
        "requirements_file",
        "model_server",
        "python",
        "platform",
        "glibc",
    }
)


def normalise_requirement(line: str, field_name: str = "pip_requirements") -> str:
    """One requirement in its canonical spelling; options, paths and editables refused."""
    text = line.strip()
    if text.startswith("-"):
        raise ImageConfigError(field_name, f"{text!r}: pip options are not part of an image")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise ImageConfigError(field_name, f"{text!r} is not a requirement ({exc})") from None
    if requirement.url and requirement.url.startswith("file:"):
        raise ImageConfigError(field_name, f"{text!r}: local files differ between machines")
    out: str = canonicalize_name(requirement.name)
    if requirement.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in requirement.extras)) + "]"
    if requirement.url:
        out += f" @ {requirement.url}"
    elif requirement.specifier:
        out += ",".join(sorted(str(s) for s in requirement.specifier))
    if requirement.marker is not None:
        out += f"; {requirement.marker}"
    return out


def _requirement_package(line: str) -> str:
    return canonicalize_name(Requirement(line).name)


@dataclass(frozen=True)
class ImageEnvironment:
    """An environment to build an image for: a base image and what is installed on it."""

    base_image: ImageReference
    pip_requirements: tuple[str, ...] = ()
    model_server: str = DEFAULT_MODEL_SERVER
    python: str | None = None  # major.minor; None: read from the base image's PYTHON_VERSION
    platform: str = "linux/amd64"
    glibc: str = "2.28"
    name: str = "aksflight-environment"

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ImageConfigError("platform", f"{self.platform!r}: one of {sorted(PLATFORMS)}")
        if self.python is not None and not _PYTHON.fullmatch(self.python):
            raise ImageConfigError("python", f"{self.python!r}: give major.minor, e.g. 3.11")
        if not _GLIBC.fullmatch(self.glibc) or int(self.glibc.split(".")[1]) < 17:
            raise ImageConfigError("glibc", f"{self.glibc!r}: give 2.17 or later, e.g. 2.28")
        requirements = {normalise_requirement(line) for line in self.pip_requirements}
        server = self.model_server.strip()
        for line in sorted(requirements):
            if _requirement_package(line) == MODEL_SERVER_PACKAGE:
                server = line  # a pin in the requirements is the model server's version
                requirements.discard(line)
        if server != BUNDLED:
            server = normalise_requirement(server, "model_server")
            if _requirement_package(server) != MODEL_SERVER_PACKAGE:
                raise ImageConfigError(
                    "model_server", f"{server!r}: a {MODEL_SERVER_PACKAGE} requirement or 'bundled'"
                )
        object.__setattr__(self, "pip_requirements", tuple(sorted(requirements)))
        object.__setattr__(self, "model_server", server)

    @property
    def install_requirements(self) -> tuple[str, ...]:
        """What pip installs into the image: the requirements plus the model server."""
        if self.model_server == BUNDLED:
            return self.pip_requirements
        return (*self.pip_requirements, self.model_server)

    def with_python(self, python: str) -> ImageEnvironment:
        return replace(self, python=python)


@dataclass(frozen=True)
class ResolvedEnvironment:
    """An environment whose base image is pinned (platform manifest digest) and Python known."""

    environment: ImageEnvironment
    base_digest: str
    python: str
    definition: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        env = self.environment
        object.__setattr__(
            self,
            "definition",
            {
                "schema": SCHEMA,
                "layout": LAYOUT_VERSION,
                "base": self.base_digest,
                "platform": env.platform,
                "glibc": env.glibc,
                "python": self.python,
                "model_server": env.model_server,
                "requirements": list(env.pip_requirements),
            },
        )

    @property
    def canonical_json(self) -> str:
        return json.dumps(self.definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json.encode()).hexdigest()[:HASH_LENGTH]

    @property
    def tag(self) -> str:
        return f"env-{self.hash}"


def load_environment_file(path: Path) -> ImageEnvironment:
    """An environment YAML file (fields in docs/images.md; paths relative to the file)."""
    try:
        data = read_yaml_mapping(path, "environment file")
    except DeployConfigError as exc:
        raise ImageConfigError(exc.field, exc.problem) from None
    where = str(path)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ImageConfigError(f"{where}: {unknown[0]}", "unknown field")
    for key in ("name", "base_image", "model_server", "python", "platform", "glibc"):
        if key in data and not isinstance(data[key], str):
            raise ImageConfigError(f"{where}: {key}", "must be a string (quote numbers)")
    if not isinstance(data.get("base_image"), str):
        raise ImageConfigError(f"{where}: base_image", "required (an image reference)")
    if "pip_requirements" in data and "requirements_file" in data:
        raise ImageConfigError(where, "give pip_requirements or requirements_file, not both")
    lines: tuple[str, ...] = ()
    try:
        if "pip_requirements" in data:
            listed = data["pip_requirements"]
            if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
                raise ImageConfigError(f"{where}: pip_requirements", "a list of strings")
            lines = parse_requirements("\n".join(listed), f"{where}: pip_requirements")
        elif "requirements_file" in data:
            if not isinstance(data["requirements_file"], str):
                raise ImageConfigError(f"{where}: requirements_file", "must be a path")
            target = path.parent / data["requirements_file"]
            text = _read_text(target)
            lines = parse_requirements(text, str(target))
    except DeployConfigError as exc:
        if isinstance(exc, ImageConfigError):
            raise
        raise ImageConfigError(exc.field, exc.problem) from None
    try:
        return ImageEnvironment(
            base_image=ImageReference.parse(data["base_image"], f"{where}: base_image"),
            pip_requirements=lines,
            model_server=data.get("model_server", DEFAULT_MODEL_SERVER),
            python=data.get("python"),
            platform=data.get("platform", "linux/amd64"),
            glibc=data.get("glibc", "2.28"),
            name=data.get("name", "aksflight-environment"),
        )
    except ImageConfigError as exc:
        if exc.field.startswith(where):
            raise
        raise ImageConfigError(f"{where}: {exc.field}", exc.problem) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImageConfigError(str(path), "requirements file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageConfigError(str(path), f"cannot read it ({exc})") from None


def from_inference_environment(environment: Any, **overrides: Any) -> ImageEnvironment:
    """The deployer's `inference.Environment` (its `image` is the base) as an image environment."""
    if getattr(environment, "image", None) is None and "base_image" not in overrides:
        raise ImageConfigError("environment.image", "the Kubernetes target needs a base image")
    base = overrides.pop("base_image", None) or environment.image
    return ImageEnvironment(
        base_image=base if isinstance(base, ImageReference) else ImageReference.parse(base),
        pip_requirements=tuple(environment.pip_requirements),
        name=environment.name,
        **overrides,
    )
