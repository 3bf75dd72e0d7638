"""Building an environment image without a container engine, as crane, ko and Jib do.

Take the base image's manifest and config; `pip install --target` the requirements for
the image's platform and Python (wheels only, no byte-code, console-script shebangs made
portable); pack them and the start-up files as reproducible layers; write the new config
(Env, Entrypoint, WorkingDir, labels with the hash and the sources) and manifest. Nothing
runs inside the image, so the builder's machine can be of any architecture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.images import startup
from deployer.images.errors import ImageBuildError
from deployer.images.registry import DOCKER_MANIFEST, OCI_MANIFEST, Manifest, sha256_digest
from deployer.images.spec import BUNDLED, PLATFORMS, ResolvedEnvironment
from deployer.images.tarball import Layer, LayerWriter

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CREATED = "1970-01-01T00:00:00Z"
LABEL_HASH = "io.aksflight.environment.hash"
LABEL_DEFINITION = "io.aksflight.environment.definition"
LABEL_NAME = "io.aksflight.environment.name"
LABEL_MODEL_SERVER = "io.aksflight.model-server"
PIP_TIMEOUT_S = 1800
LARGE_DISTRIBUTION = 16 * 1024 * 1024


@dataclass(frozen=True)
class BaseImage:
    """The base image for one platform: where it is, its manifest and its config."""

    name: str  # the reference as given, for labels
    location: Any  # RegistryLocation
    manifest: Manifest
    config: dict[str, Any]


@dataclass(frozen=True)
class BuiltImage:
    manifest: Manifest
    config: bytes
    config_digest: str
    layers: tuple[Layer, ...]


def pip_platforms(platform: str, glibc: str) -> list[str]:
    """Every manylinux tag a glibc of that version runs, newest first (pip does not expand
    `manylinux_2_X` tags by itself)."""
    arch = PLATFORMS[platform]
    minor = int(glibc.split(".")[1])
    tags = [f"manylinux_2_{n}_{arch}" for n in range(minor, 16, -1)]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def _binary_flags(platform: str, glibc: str, python_version: str) -> list[str]:
    """pip flags that pick wheels for the image's platform and Python, never the host's."""
    flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for tag in pip_platforms(platform, glibc):
        flags += ["--platform", tag]
    return flags


def pip_command(
    resolved: ResolvedEnvironment, target: Path, pip_args: Sequence[str], python: str
) -> list[str]:
    env = resolved.environment
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        "--no-compile",
        *_binary_flags(env.platform, env.glibc, resolved.python),
        "--no-warn-script-location",
        "--no-warn-conflicts",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ]
    return [*command, *pip_args, *env.install_requirements]


def pip_download_command(
    folder: Path,
    requirements: Sequence[str],
    *,
    platform: str = "linux/amd64",
    glibc: str = "2.28",
    python_version: str = "3.11",
    python: str = sys.executable,
) -> list[str]:
    """pip fetching the wheels for an image's platform into `folder`, so builds can then
    run offline with `--no-index --find-links folder`."""
    return [
        python,
        "-m",
        "pip",
        "download",
        "-q",
        "--dest",
        str(folder),
        *_binary_flags(platform, glibc, python_version),
        *requirements,
    ]


def install_requirements(
    resolved: ResolvedEnvironment,
    target: Path,
    pip_args: Sequence[str] = (),
    python: str = sys.executable,
) -> None:
    """pip into `target` for the image's platform; a failure names pip's own last error."""
    command = pip_command(resolved, target, pip_args, python)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PIP_NO_INPUT": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageBuildError(f"pip could not run ({exc})") from exc
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        last = errors[-1] if errors else (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ImageBuildError(f"pip could not install the requirements: {last}", done.stderr)
    _make_portable(target)


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _make_portable(target: Path) -> None:
    """Drop byte-code; point console scripts at the image's `python3`, not the builder's
    interpreter (and keep each RECORD's hashes true to the rewritten scripts)."""
    for cache in sorted(target.rglob("__pycache__"), reverse=True):
        for item in cache.iterdir():
            item.unlink()
        cache.rmdir()
    scripts = target / "bin"
    rewritten: dict[str, bytes] = {}
    if scripts.is_dir():
        for script in sorted(scripts.iterdir()):
            if not script.is_file():
                continue
            data = script.read_bytes()
            first, newline, rest = data.partition(b"\n")
            if first.startswith(b"#!") and b"python" in first:
                data = startup.SCRIPT_SHEBANG + newline + rest
                script.write_bytes(data)
                rewritten[script.name] = data
    if not rewritten:
        return
    for record in sorted(target.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines()
        changed = []
        for line in lines:
            path, _, _ = line.partition(",")
            name = path.rsplit("/", 1)[-1]
            if "/bin/" in f"/{path}" and name in rewritten:
                data = rewritten[name]
                changed.append(f"{path},{_record_hash(data)},{len(data)}")
            else:
                changed.append(line)
        record.write_text("\n".join(changed) + "\n", encoding="utf-8")


def _distribution_roots(site: Path) -> dict[str, set[str]]:
    """Each top-level entry of `site` → the distributions whose RECORD lists files in it."""
    owners: dict[str, set[str]] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        distribution = record.parent.name.split("-", 1)[0].lower()
        owners.setdefault(record.parent.name, set()).add(distribution)
        for line in record.read_text(encoding="utf-8").splitlines():
            top = line.partition(",")[0].split("/", 1)[0]
            if top and top not in ("..", "bin"):
                owners.setdefault(top, set()).add(distribution)
    return owners


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def package_layers(site: Path) -> list[tuple[str, LayerWriter]]:
    """The installed packages as layers: each distribution of at least LARGE_DISTRIBUTION
    bytes on its own (sorted by name), the rest together. Layers depend only on the files,
    so a large dependency (numpy, scipy) is the same blob in every environment that has the
    same version, and is stored and uploaded once."""
    owners = _distribution_roots(site)
    groups: dict[str, list[Path]] = {}
    for entry in sorted(site.iterdir()):
        claimed = owners.get(entry.name, set())
        key = next(iter(claimed)) if len(claimed) == 1 else ""
        groups.setdefault(key, []).append(entry)
    rest = groups.pop("", [])
    writers: list[tuple[str, LayerWriter]] = []
    for distribution in sorted(groups):
        entries = groups[distribution]
        if sum(_tree_size(e) for e in entries) < LARGE_DISTRIBUTION:
            rest += entries
            continue
        writers.append((f"packages-{distribution}", _layer_of(entries)))
    if rest:
        writers.append(("packages", _layer_of(sorted(rest))))
    return writers


def _layer_of(entries: list[Path]) -> LayerWriter:
    writer = LayerWriter()
    writer.add_dir(startup.SITE_PACKAGES)
    for entry in entries:
        inside = f"{startup.SITE_PACKAGES}/{entry.name}"
        if entry.is_dir() and not entry.is_symlink():
            writer.add_tree(entry, inside)
        else:
            writer.add_path(entry, inside)
    return writer


def startup_layer() -> LayerWriter:
    writer = LayerWriter()
    writer.add_bytes(startup.ENTRYPOINT, startup.ENTRYPOINT_SCRIPT.encode(), executable=True)
    writer.add_dir(startup.MODEL_DIR)
    return writer


def build_image(
    resolved: ResolvedEnvironment,
    base: BaseImage,
    workdir: Path,
    *,
    pip_args: Sequence[str] = (),
    python: str = sys.executable,
) -> BuiltImage:
    """Install, pack and describe the image in `workdir`; uploads nothing."""
    env = resolved.environment
    writers: list[tuple[str, LayerWriter]] = []
    if env.install_requirements:
        site = workdir / "python"
        site.mkdir(parents=True, exist_ok=True)
        install_requirements(resolved, site, pip_args, python)
        writers += package_layers(site)
    writers.append(("startup", startup_layer()))
    # compression is the slow part and zlib releases the GIL: one thread per layer; the
    # number of threads changes nothing in the bytes
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = [pool.submit(w.write, workdir / f"{name}.tar.gz") for name, w in writers]
        layers = [future.result() for future in futures]
    docker = base.manifest.media_type == DOCKER_MANIFEST
    config = _image_config(resolved, base, layers)
    config_bytes = json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()
    config_digest = sha256_digest(config_bytes)
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    base_manifest = base.manifest.json()
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            *base_manifest.get("layers", []),
            *({"mediaType": layer_type, "digest": lay.digest, "size": lay.size} for lay in layers),
        ],
    }
    if not docker:
        manifest["annotations"] = {
            "org.opencontainers.image.base.name": base.name,
            "org.opencontainers.image.base.digest": base.manifest.digest,
            LABEL_HASH: resolved.hash,
        }
    raw = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
    return BuiltImage(
        Manifest(raw, manifest["mediaType"], sha256_digest(raw)),
        config_bytes,
        config_digest,
        tuple(layers),
    )


def _image_config(
    resolved: ResolvedEnvironment, base: BaseImage, layers: list[Layer]
) -> dict[str, Any]:
    env = resolved.environment
    config: dict[str, Any] = json.loads(json.dumps(base.config))  # a deep copy
    runtime = dict(config.get("config") or {})
    has_packages = bool(env.install_requirements)
    runtime["Env"] = startup.image_env(list(runtime.get("Env") or []), has_packages)
    runtime["Entrypoint"] = [startup.ENTRYPOINT]
    runtime.pop("Cmd", None)
    runtime["WorkingDir"] = startup.APP_ROOT
    runtime["ExposedPorts"] = {
        **(runtime.get("ExposedPorts") or {}),
        f"{startup.SERVER_PORT}/tcp": {},
    }
    runtime["Labels"] = {
        **(runtime.get("Labels") or {}),
        LABEL_HASH: resolved.hash,
        LABEL_DEFINITION: resolved.canonical_json,
        LABEL_NAME: env.name,
        LABEL_MODEL_SERVER: env.model_server,
        "org.opencontainers.image.base.name": base.name,
        "org.opencontainers.image.base.digest": base.manifest.digest,
    }
    config["config"] = runtime
    config["created"] = CREATED
    rootfs = dict(config.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), *(lay.diff_id for lay in layers)]
    config["rootfs"] = rootfs
    steps = [f"the requirements (pip --target), {lay.path.name}" for lay in layers[:-1]]
    history = list(config.get("history") or [])
    for step in [*steps, "the model server start-up files"]:
        history.append({"created": CREATED, "created_by": f"aksflight image build: {step}"})
    config["history"] = history
    if env.model_server == BUNDLED:
        runtime["Labels"][LABEL_MODEL_SERVER] = BUNDLED
    return config
