"""Look an environment image up, copy it, or build it: the v1 deployment process, step 3.

`ensure_image` computes the environment's hash (its tag), then:

1. the workspace registry has `<repository>:env-<hash>` → its digest, nothing moves;
2. the shared registry has it → copied into the workspace registry blob by blob (a blob
   already there is skipped; on the same registry a cross-repository mount; else a streamed
   copy), then the manifest's exact bytes are put, so the digest stays the same;
3. neither → built (see `build`) and pushed to the workspace registry; the manifest is put
   last, so a tag never points at an image with a missing blob.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.images.build import BaseImage, BuiltImage, build_image
from deployer.images.errors import ImageConfigError, ImageNotFound, RegistryError
from deployer.images.progress import NULL_PROGRESS, ProgressSink
from deployer.images.reference import ImageReference, RegistryLocation
from deployer.images.registry import (
    CHUNK_SIZE,
    BytesBlob,
    FileBlob,
    Manifest,
    Registry,
    RemoteBlob,
    TransferStats,
)
from deployer.images.spec import (
    ImageEnvironment,
    ResolvedEnvironment,
    from_inference_environment,
    load_environment_file,
)
from deployer.images.transport import RegistryTransport


@dataclass(frozen=True)
class EnsureResult:
    """The image to run (`reference` has the tag and the digest) and how it was obtained."""

    reference: ImageReference
    source: str  # "workspace", "shared" or "built"
    resolved: ResolvedEnvironment
    stats: TransferStats

    @property
    def pinned(self) -> str:
        return self.reference.pinned()

    def __str__(self) -> str:
        return self.pinned


@dataclass(frozen=True)
class LookupResult:
    resolved: ResolvedEnvironment
    where: str | None  # "workspace", "shared" or None
    reference: ImageReference | None


def _platform_matches(entry: dict[str, Any], platform: str) -> bool:
    wanted_os, wanted_arch = platform.split("/")
    found = entry.get("platform") or {}
    return bool(found.get("os") == wanted_os and found.get("architecture") == wanted_arch)


def _platform_of(entry: dict[str, Any]) -> str:
    found = entry.get("platform") or {}
    return f"{found.get('os')}/{found.get('architecture')}"


def resolve_base(registry: Registry, environment: ImageEnvironment) -> BaseImage:
    """The base image's manifest for the environment's platform, and its config."""
    ref = environment.base_image
    try:
        manifest = registry.get_manifest(ref)
    except ImageNotFound as exc:
        raise ImageNotFound(
            f"base image {ref} not found (no such repository or tag)", status=exc.status
        ) from exc
    if manifest.is_index:
        entries = manifest.json().get("manifests") or []
        chosen = next((e for e in entries if _platform_matches(e, environment.platform)), None)
        if chosen is None:
            have = sorted(_platform_of(e) for e in entries)
            raise ImageConfigError(
                "platform", f"base image {ref} has no {environment.platform} image (has {have})"
            )
        manifest = registry.get_manifest(ref.with_digest(str(chosen["digest"])))
    body = manifest.json()
    config_digest = str((body.get("config") or {}).get("digest", ""))
    if not config_digest:
        raise RegistryError(f"base image {ref}: the manifest has no config")
    try:
        config = _json_object(registry.get_blob(ref.location, config_digest))
    except ImageNotFound as exc:
        raise ImageNotFound(f"base image {ref}: its config blob is missing") from exc
    found = f"{config.get('os', '?')}/{config.get('architecture', '?')}"
    if found != environment.platform:
        raise ImageConfigError(
            "platform", f"base image {ref} is {found}, the environment says {environment.platform}"
        )
    return BaseImage(str(ref), ref.location, manifest, config)


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise RegistryError("an image config is not JSON") from exc
    if not isinstance(value, dict):
        raise RegistryError("an image config is not a JSON object")
    return value


def python_of(environment: ImageEnvironment, base: BaseImage) -> str:
    """The environment's Python, else the base image's `PYTHON_VERSION` (major.minor)."""
    if environment.python:
        return environment.python
    for item in (base.config.get("config") or {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        if key == "PYTHON_VERSION" and value.count(".") >= 1:
            return ".".join(value.split(".")[:2])
    raise ImageConfigError(
        "python", f"give the Python version of {base.name} (e.g. '3.11'); the image does not say"
    )


def resolve(
    registry: Registry, environment: ImageEnvironment
) -> tuple[ResolvedEnvironment, BaseImage]:
    base = resolve_base(registry, environment)
    return ResolvedEnvironment(
        environment, base.manifest.digest, python_of(environment, base)
    ), base


def copy_image(registry: Registry, source: ImageReference, target: ImageReference) -> str:
    """Copy `source` (manifest or index) to `target`; the digest is kept. Returns it."""
    manifest = registry.get_manifest(source)
    if manifest.is_index:
        for entry in manifest.json().get("manifests") or []:
            child = source.location.image(digest=str(entry["digest"]))
            _copy_one(registry, child, target.location.image(digest=str(entry["digest"])))
    else:
        _copy_blobs(registry, source.location, target.location, manifest)
    if registry.head_manifest(target) != manifest.digest:
        registry.put_manifest(target, manifest)
    return manifest.digest


def _copy_one(registry: Registry, source: ImageReference, target: ImageReference) -> None:
    manifest = registry.get_manifest(source)
    _copy_blobs(registry, source.location, target.location, manifest)
    if registry.head_manifest(target) != manifest.digest:
        registry.put_manifest(target, manifest)


def _copy_blobs(
    registry: Registry, source: RegistryLocation, target: RegistryLocation, manifest: Manifest
) -> None:
    body = manifest.json()
    mount = source.repository if source.host == target.host else None
    for descriptor in [body.get("config") or {}, *(body.get("layers") or [])]:
        digest, size = str(descriptor["digest"]), int(descriptor.get("size", 0))
        registry.push_blob(
            target, RemoteBlob(registry, source, digest, size), mount_from=mount, label=digest[7:19]
        )


def push_built(
    registry: Registry, built: BuiltImage, base: BaseImage, target: ImageReference
) -> str:
    """Upload what the workspace registry lacks, then put the manifest (last)."""
    location = target.location
    mount = base.location.repository if base.location.host == location.host else None
    for descriptor in base.manifest.json().get("layers") or []:
        digest, size = str(descriptor["digest"]), int(descriptor.get("size", 0))
        registry.push_blob(
            location,
            RemoteBlob(registry, base.location, digest, size),
            mount_from=mount,
            label=f"base {digest[7:19]}",
        )
    for layer in built.layers:
        registry.push_blob(
            location, FileBlob(layer.path, layer.digest, layer.size), label=layer.path.name
        )
    registry.push_blob(location, BytesBlob(built.config), label="config")
    if registry.head_manifest(target) != built.manifest.digest:
        registry.put_manifest(target, built.manifest)
    return built.manifest.digest


def lookup(
    registry: Registry,
    resolved: ResolvedEnvironment,
    workspace: RegistryLocation,
    shared: RegistryLocation | None,
) -> LookupResult:
    for where, location in (("workspace", workspace), ("shared", shared)):
        if location is None:
            continue
        ref = location.image(tag=resolved.tag)
        digest = registry.head_manifest(ref)
        if digest is not None:
            return LookupResult(resolved, where, ref.with_digest(digest))
    return LookupResult(resolved, None, None)


def make_registry(
    transport: RegistryTransport | None, progress: ProgressSink, chunk_size: int
) -> Registry:
    return Registry(transport or RegistryTransport(), chunk_size=chunk_size, progress=progress)


def as_environment(environment: ImageEnvironment | Path | Any) -> ImageEnvironment:
    """An `ImageEnvironment`, an environment file, or the deployer's `inference.Environment`."""
    if isinstance(environment, ImageEnvironment):
        return environment
    if isinstance(environment, Path):
        return load_environment_file(environment)
    if hasattr(environment, "pip_requirements") and hasattr(environment, "image"):
        return from_inference_environment(environment)
    raise ImageConfigError("environment", f"not an environment: {type(environment).__name__}")


def as_location(value: RegistryLocation | str, field: str) -> RegistryLocation:
    return value if isinstance(value, RegistryLocation) else RegistryLocation.parse(value, field)


def ensure_image(
    environment: ImageEnvironment | Path | Any,
    workspace_registry: RegistryLocation | str,
    shared_registry: RegistryLocation | str | None = None,
    *,
    transport: RegistryTransport | None = None,
    progress: ProgressSink = NULL_PROGRESS,
    pip_args: Sequence[str] = (),
    workdir: Path | None = None,
    force_build: bool = False,
    chunk_size: int = CHUNK_SIZE,
) -> EnsureResult:
    """The environment's image in the workspace registry, pinned by digest (see module doc).

    `transport` carries credentials, retries and the HTTP seam; `pip_args` are extra pip
    options (an index, `--find-links`), not part of the hash; `force_build` skips look-up.
    """
    environment = as_environment(environment)
    workspace_registry = as_location(workspace_registry, "workspace registry")
    if shared_registry is not None:
        shared_registry = as_location(shared_registry, "shared registry")
    registry = make_registry(transport, progress, chunk_size)
    resolved, base = resolve(registry, environment)
    target = workspace_registry.image(tag=resolved.tag)
    if not force_build:
        found = lookup(registry, resolved, workspace_registry, shared_registry)
        if found.where == "workspace" and found.reference is not None:
            progress.note(f"found {found.reference} in the workspace registry")
            return EnsureResult(found.reference, "workspace", resolved, registry.stats)
        if found.where == "shared" and found.reference is not None:
            progress.note(f"found {found.reference} in the shared registry; copying")
            digest = copy_image(registry, found.reference, target)
            return EnsureResult(target.with_digest(digest), "shared", resolved, registry.stats)
    progress.note(f"building {target} on {base.name}")
    with tempfile.TemporaryDirectory(prefix="aksflight-image-", dir=workdir) as folder:
        built = build_image(resolved, base, Path(folder), pip_args=pip_args)
        digest = push_built(registry, built, base, target)
    return EnsureResult(target.with_digest(digest), "built", resolved, registry.stats)


def lookup_environment(
    environment: ImageEnvironment | Path | Any,
    workspace_registry: RegistryLocation | str,
    shared_registry: RegistryLocation | str | None = None,
    *,
    transport: RegistryTransport | None = None,
) -> LookupResult:
    """Where the environment's image already is (workspace first), writing nothing."""
    environment = as_environment(environment)
    workspace = as_location(workspace_registry, "workspace registry")
    shared = as_location(shared_registry, "shared registry") if shared_registry else None
    registry = make_registry(transport, NULL_PROGRESS, CHUNK_SIZE)
    resolved, _ = resolve(registry, environment)
    return lookup(registry, resolved, workspace, shared)


def copy_reference(
    source: ImageReference | str,
    target: ImageReference | str,
    *,
    transport: RegistryTransport | None = None,
    progress: ProgressSink = NULL_PROGRESS,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[ImageReference, TransferStats]:
    """`image push`: copy one image (manifest or index) to another registry or repository."""
    src = source if isinstance(source, ImageReference) else ImageReference.parse(source, "source")
    dst = target if isinstance(target, ImageReference) else ImageReference.parse(target, "target")
    if dst.digest:
        raise ImageConfigError("target", "give a tag, not a digest (the digest is kept)")
    registry = make_registry(transport, progress, chunk_size)
    digest = copy_image(registry, src, dst)
    return dst.with_digest(digest), registry.stats
