"""Reproducible layer tarballs: the same files give the same bytes, hence the same digest.

Every entry has mtime 0, owner 0:0 with no user or group names, mode 0755 (directories,
executables) or 0644, and entries are written in sorted path order with their parent
directories; gzip gets mtime 0 and no file name. Both digests are computed while writing:
`digest` (the compressed blob, what the manifest lists) and `diff_id` (the uncompressed
tar, what the config's rootfs lists).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from deployer.images.errors import ImageBuildError

FIXED_MTIME = 0
GZIP_LEVEL = 6


@dataclass(frozen=True)
class Layer:
    path: Path
    digest: str
    diff_id: str
    size: int


@dataclass(frozen=True)
class _Entry:
    kind: str  # "dir", "file", "symlink"
    source: Path | None = None
    data: bytes | None = None
    target: str = ""
    executable: bool = False


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what passes through on its way to `sink`."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        view = memoryview(data)
        self.sha.update(view)
        self.size += len(view)
        self.sink.write(view)
        return len(view)


class LayerWriter:
    """Collects files under image paths, then writes them as one reproducible layer."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def _add(self, image_path: str, entry: _Entry) -> None:
        path = PurePosixPath(image_path.lstrip("/"))
        if not path.parts or ".." in path.parts:
            raise ImageBuildError(f"bad path in a layer: {image_path!r}")
        for parent in list(path.parents)[:-1]:
            self._entries.setdefault(str(parent), _Entry("dir"))
        self._entries[str(path)] = entry

    def add_bytes(self, image_path: str, data: bytes, *, executable: bool = False) -> None:
        self._add(image_path, _Entry("file", data=data, executable=executable))

    def add_dir(self, image_path: str) -> None:
        self._add(image_path, _Entry("dir"))

    def add_path(self, source: Path, image_path: str) -> None:
        """One file or symlink from this machine."""
        info = source.lstat()
        if stat.S_ISLNK(info.st_mode):
            self._add(image_path, _Entry("symlink", target=os.readlink(source)))
        elif stat.S_ISREG(info.st_mode):
            self._add(
                image_path, _Entry("file", source=source, executable=bool(info.st_mode & 0o111))
            )
        else:
            raise ImageBuildError(f"{source}: not a file or symlink")

    def add_tree(self, source: Path, image_path: str) -> None:
        """`source`'s contents below `image_path` (symlinks kept, other special files refused)."""
        self.add_dir(image_path)
        for root, dirs, files in os.walk(source):
            dirs.sort()
            base = Path(root)
            relative = base.relative_to(source)
            for name in [*dirs, *sorted(files)]:
                full = base / name
                inside = str(PurePosixPath(image_path) / relative.as_posix() / name)
                info = full.lstat()
                if stat.S_ISLNK(info.st_mode):
                    self._add(inside, _Entry("symlink", target=os.readlink(full)))
                elif stat.S_ISDIR(info.st_mode):
                    self._add(inside, _Entry("dir"))
                elif stat.S_ISREG(info.st_mode):
                    executable = bool(info.st_mode & 0o111)
                    self._add(inside, _Entry("file", source=full, executable=executable))
                else:
                    raise ImageBuildError(f"{full}: not a file, directory or symlink")

    def write(self, destination: Path) -> Layer:
        """Write the gzip'd tar to `destination`; returns its digests and size."""
        try:
            with destination.open("wb") as raw:
                compressed = _HashingWriter(raw)
                with gzip.GzipFile(
                    filename="",
                    mode="wb",
                    fileobj=compressed,
                    mtime=FIXED_MTIME,
                    compresslevel=GZIP_LEVEL,
                ) as zipped:
                    plain = _HashingWriter(zipped)  # type: ignore[arg-type]
                    with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                        for name in sorted(self._entries):
                            self._write_entry(tar, name, self._entries[name])
        except OSError as exc:
            raise ImageBuildError(f"cannot write the layer {destination.name} ({exc})") from exc
        return Layer(
            destination,
            "sha256:" + compressed.sha.hexdigest(),
            "sha256:" + plain.sha.hexdigest(),
            compressed.size,
        )

    @staticmethod
    def _write_entry(tar: tarfile.TarFile, name: str, entry: _Entry) -> None:
        info = tarfile.TarInfo(name)
        info.mtime = FIXED_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if entry.kind == "dir":
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        elif entry.kind == "symlink":
            info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, entry.target
            tar.addfile(info)
        else:
            info.mode = 0o755 if entry.executable else 0o644
            if entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                assert entry.source is not None
                info.size = entry.source.stat().st_size
                with entry.source.open("rb") as handle:
                    tar.addfile(info, handle)
