"""Packaging what a service runs: the source directory (honouring `.amlignore`, else
`.gitignore`, as v1's snapshots did) and the models, with one content digest over all of it.

The digest is what makes re-deploys cheap and interrupted deploys converge: the same
inputs give the same digest, so an unchanged service is left alone and a half-finished
release is simply written again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from deployer.errors import DeployConfigError
from deployer.inference import MODEL_ROOT, InferenceConfig, Model

MAX_SNAPSHOT_BYTES = 300 * 1024 * 1024  # v1's snapshot limits
MAX_SNAPSHOT_FILES = 2000
IGNORE_FILES = (".amlignore", ".gitignore")
ALWAYS_EXCLUDED = (".git",)
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PackagedFile:
    """One file of a release: where it goes (posix, relative) and where it comes from."""

    target: str
    source: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Package:
    """The files of one release (app root and models) and their digest."""

    app_files: tuple[PackagedFile, ...]
    model_files: tuple[PackagedFile, ...]
    entry_script: str
    digest: str

    @property
    def size(self) -> int:
        return sum(f.size for f in (*self.app_files, *self.model_files))

    def write(self, app_root: Path, model_parent: Path) -> None:
        """Copy the app under `app_root`, the models under `model_parent/azureml-models`."""
        for packaged in self.app_files:
            _copy(packaged, app_root / packaged.target)
        for packaged in self.model_files:
            _copy(packaged, model_parent / packaged.target)


def _copy(packaged: PackagedFile, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(packaged.source, destination)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _ignore_spec(directory: Path) -> GitIgnoreSpec | None:
    for name in IGNORE_FILES:
        candidate = directory / name
        if candidate.is_file():
            try:
                lines = candidate.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise DeployConfigError(str(candidate), f"cannot read ({exc})") from None
            return GitIgnoreSpec.from_lines(lines)
    return None


def snapshot(source_directory: Path) -> list[tuple[str, Path]]:
    """Every file of the directory that the ignore files keep, as (relative posix, path).

    Each directory's own `.amlignore` (or, without one, `.gitignore`) applies to what is
    below it, as git applies nested ignore files."""
    root = source_directory.resolve()
    specs: list[tuple[str, GitIgnoreSpec]] = []
    kept: list[tuple[str, Path]] = []
    for current, dirs, files in os.walk(root, followlinks=False):
        here = Path(current)
        relative_dir = here.relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        spec = _ignore_spec(here)
        if spec is not None:
            specs.append((prefix, spec))

        def ignored(relative: str, is_dir: bool) -> bool:
            for base, rules in specs:
                if relative.startswith(base):
                    inner = relative[len(base) :] + ("/" if is_dir else "")
                    if rules.match_file(inner):
                        return True
            return False

        dirs[:] = sorted(
            d for d in dirs if d not in ALWAYS_EXCLUDED and not ignored(prefix + d, True)
        )
        for name in sorted(files):
            relative = prefix + name
            path = here / name
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise DeployConfigError(
                    "source_directory", f"{relative} links outside the source directory"
                )
            if not ignored(relative, False) and path.is_file():
                kept.append((relative, path))
    return sorted(kept)


def _packaged(target: str, path: Path) -> PackagedFile:
    return PackagedFile(target, path, path.stat().st_size, _sha256(path))


def _model_files(model: Model) -> list[PackagedFile]:
    if model.path is None:
        return []
    base = f"{MODEL_ROOT}/{model.relative_dir}"
    if model.path.is_file():
        return [_packaged(f"{base}/{model.path.name}", model.path)]
    return [
        _packaged(f"{base}/{model.path.name}/{relative}", path)
        for relative, path in snapshot(model.path)
    ]


def package(inference: InferenceConfig, models: tuple[Model, ...], extra: str = "") -> Package:
    """Collect and hash everything a release needs; `extra` (e.g. the environment and
    configuration) joins the digest so that any change makes a new release."""
    if inference.source_directory is not None:
        entries = snapshot(inference.source_directory)
        if inference.entry_name not in {relative for relative, _ in entries}:
            raise DeployConfigError(
                "entry_script", f"{inference.entry_name} is excluded by an ignore file"
            )
    else:
        entries = [(inference.entry_name, Path(inference.entry_script))]
    if len(entries) > MAX_SNAPSHOT_FILES:
        raise DeployConfigError(
            "source_directory", f"{len(entries)} files; at most {MAX_SNAPSHOT_FILES} allowed"
        )
    app_files = tuple(_packaged(relative, path) for relative, path in entries)
    total = sum(f.size for f in app_files)
    if total > MAX_SNAPSHOT_BYTES:
        raise DeployConfigError(
            "source_directory", f"{total} bytes; at most {MAX_SNAPSHOT_BYTES} allowed"
        )
    model_files = tuple(f for model in models for f in _model_files(model))
    digest = hashlib.sha256()
    for packaged in (*app_files, *model_files):
        digest.update(f"{packaged.target}\0{packaged.sha256}\n".encode())
    for model in models:
        digest.update(f"model\0{model.relative_dir}\0{model.uri or ''}\n".encode())
    digest.update(f"entry\0{inference.entry_name}\n{extra}".encode())
    return Package(app_files, model_files, inference.entry_name, digest.hexdigest()[:16])
