"""The OCI distribution API: manifests, blobs, uploads (monolithic, chunked, resumed), mounts.

An upload that is interrupted is resumed where the registry says it stands (`GET` on the
upload session gives the `Range` it holds); a session the registry has forgotten is
restarted from zero in a new one. A blob is only ever committed with its digest, so the
registry verifies it: nothing half-written is ever visible under a digest or a tag.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urljoin

import httpx

from deployer.images.errors import ImageNotFound, RegistryError, UploadFailed
from deployer.images.progress import NULL_PROGRESS, ProgressSink
from deployer.images.reference import ImageReference, RegistryLocation
from deployer.images.transport import (
    TEMPORARY_STATUSES,
    RegistryTransport,
    error_code,
    fail,
    scope_for,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
CHUNK_SIZE = 8 * 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry stored it (its exact bytes define the digest)."""

    raw: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        data = json.loads(self.raw)
        if not isinstance(data, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class BlobSource(Protocol):
    """Bytes of one blob that can be read again from any offset (for resuming)."""

    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...

    def chunks(self, offset: int, chunk_size: int) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class FileBlob:
    path: Path
    digest: str
    size: int

    def chunks(self, offset: int, chunk_size: int) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while block := handle.read(chunk_size):
                yield block


@dataclass(frozen=True)
class BytesBlob:
    data: bytes
    digest: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", self.digest or sha256_digest(self.data))
        object.__setattr__(self, "size", len(self.data))

    def chunks(self, offset: int, chunk_size: int) -> Iterator[bytes]:
        for start in range(offset, self.size, chunk_size):
            yield self.data[start : start + chunk_size]


@dataclass
class TransferStats:
    """What a push did, blob by blob: the bytes actually sent are `uploaded_bytes`."""

    uploaded_bytes: int = 0
    uploaded: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    resumed: int = 0
    restarted: int = 0
    manifests_put: int = 0


class Registry:
    """Manifest and blob operations over a `RegistryTransport`."""

    def __init__(
        self,
        transport: RegistryTransport,
        *,
        chunk_size: int = CHUNK_SIZE,
        progress: ProgressSink = NULL_PROGRESS,
        stats: TransferStats | None = None,
    ) -> None:
        self.transport = transport
        self.chunk_size = chunk_size
        self.progress = progress
        self.stats = stats or TransferStats()

    # --- manifests -------------------------------------------------------------------------

    def _manifest_request(self, method: str, ref: ImageReference) -> httpx.Response:
        return self.transport.request(
            method,
            ref.host,
            f"/v2/{ref.repository}/manifests/{ref.manifest_key}",
            scopes=[scope_for(ref.repository, "pull")],
            headers={"Accept": ACCEPT},
        )

    def head_manifest(self, ref: ImageReference) -> str | None:
        """The digest `ref` points to, or None when there is no such manifest."""
        response = self._manifest_request("HEAD", ref)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            fail(response, f"{ref}: manifest look-up")
        digest = response.headers.get("docker-content-digest")
        if digest:
            return str(digest)
        return self.get_manifest(ref).digest

    def get_manifest(self, ref: ImageReference) -> Manifest:
        response = self._manifest_request("GET", ref)
        if response.status_code == 404:
            raise ImageNotFound(f"{ref}: no such image", status=404, code=_code(response))
        if response.status_code != 200:
            fail(response, f"{ref}: manifest")
        raw = response.content
        if len(raw) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{ref}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        digest = sha256_digest(raw)
        if ref.digest and digest != ref.digest:
            raise RegistryError(f"{ref}: the registry sent a manifest with digest {digest}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            media_type = str(json.loads(raw).get("mediaType", media_type))
        return Manifest(raw, media_type, digest)

    def put_manifest(self, ref: ImageReference, manifest: Manifest) -> str:
        """Store `manifest` under `ref`'s tag (or digest); returns the digest."""
        path = f"/v2/{ref.repository}/manifests/{ref.tag or manifest.digest}"
        response = self.transport.request(
            "PUT",
            ref.host,
            path,
            scopes=[scope_for(ref.repository, "pull", "push")],
            headers={"Content-Type": manifest.media_type},
            content=manifest.raw,
        )
        if response.status_code not in (200, 201):
            fail(response, f"{ref}: manifest upload")
        stored = response.headers.get("docker-content-digest", manifest.digest)
        if stored != manifest.digest:
            raise RegistryError(
                f"{ref}: the registry stored digest {stored}, not {manifest.digest}"
            )
        self.stats.manifests_put += 1
        return manifest.digest

    # --- blobs -----------------------------------------------------------------------------

    def has_blob(self, location: RegistryLocation, digest: str) -> bool:
        response = self.transport.request(
            "HEAD",
            location.host,
            f"/v2/{location.repository}/blobs/{digest}",
            scopes=[scope_for(location.repository, "pull")],
        )
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            fail(response, f"{location}: blob {digest[:19]} look-up")
        return True

    def get_blob(self, location: RegistryLocation, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob (a config) in memory, verified against its digest."""
        data = b"".join(RemoteBlob(self, location, digest, 0).chunks(0, self.chunk_size, limit))
        if sha256_digest(data) != digest:
            raise RegistryError(f"{location}: blob {digest} does not match its digest")
        return data

    def open_blob(self, location: RegistryLocation, digest: str, offset: int = 0) -> httpx.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self.transport.request(
            "GET",
            location.host,
            f"/v2/{location.repository}/blobs/{digest}",
            scopes=[scope_for(location.repository, "pull")],
            headers=headers,
            stream=True,
        )
        if response.status_code == 404:
            response.close()
            raise ImageNotFound(f"{location}: blob {digest} not found", status=404)
        if response.status_code not in (200, 206):
            fail(response, f"{location}: blob {digest[:19]}")
        return response

    def push_blob(
        self,
        target: RegistryLocation,
        blob: BlobSource,
        *,
        mount_from: str | None = None,
        label: str = "",
    ) -> str:
        """Make `blob` exist in `target`: already there, mounted from `mount_from` (a repository
        on the same registry), or uploaded. Returns "present", "mounted" or "uploaded"."""
        if self.has_blob(target, blob.digest):
            self.stats.present.append(blob.digest)
            return "present"
        location = self._start_upload(target, blob.digest, mount_from)
        if location is None:
            self.stats.mounted.append(blob.digest)
            return "mounted"
        task = self.progress.task(label or blob.digest[7:19], blob.size)
        try:
            self._upload(target, blob, location, task.advance)
        finally:
            task.finish()
        self.stats.uploaded.append(blob.digest)
        return "uploaded"

    def _start_upload(
        self, target: RegistryLocation, digest: str, mount_from: str | None
    ) -> str | None:
        """A new upload session's URL; None when the mount made the blob exist."""
        path = f"/v2/{target.repository}/blobs/uploads/"
        scopes = [scope_for(target.repository, "pull", "push")]
        if mount_from and mount_from != target.repository:
            path += f"?mount={quote(digest)}&from={quote(mount_from, safe='')}"
            scopes.append(scope_for(mount_from, "pull"))
        response = self.transport.request("POST", target.host, path, scopes=scopes)
        if response.status_code == 201 and mount_from:
            return None
        if response.status_code != 202 or "location" not in response.headers:
            fail(response, f"{target}: upload start")
        return urljoin(self.transport.url(target.host, path), response.headers["location"])

    def _upload(
        self,
        target: RegistryLocation,
        blob: BlobSource,
        location: str,
        advance: Callable[[int], None],
    ) -> None:
        """Monolithic for one chunk's worth, else chunked PATCHes; resumes or restarts."""
        scopes = [scope_for(target.repository, "pull", "push")]
        failures = 0
        offset = 0
        while True:
            try:
                if blob.size <= self.chunk_size and offset == 0:
                    body = b"".join(blob.chunks(0, self.chunk_size))
                    self._commit(target, location, blob.digest, body, scopes)
                    self.stats.uploaded_bytes += len(body)
                    advance(len(body))
                    return
                for chunk in blob.chunks(offset, self.chunk_size):
                    location = self._patch(target, location, offset, chunk, scopes)
                    offset += len(chunk)
                    self.stats.uploaded_bytes += len(chunk)
                    advance(len(chunk))
                self._commit(target, location, blob.digest, b"", scopes)
                return
            except RegistryError as exc:
                failures += 1
                if not exc.temporary or failures >= self.transport.retry.attempts:
                    raise UploadFailed(
                        f"{target}: upload of {blob.digest[:19]} failed after {failures} "
                        f"attempt(s): {exc}",
                        status=exc.status,
                        code=exc.code,
                    ) from exc
                self.transport.sleep(self.transport.retry.delay(failures - 1))
                location, offset = self._recover(target, blob, location, scopes)

    def _recover(
        self, target: RegistryLocation, blob: BlobSource, location: str, scopes: list[str]
    ) -> tuple[str, int]:
        """Where to go on after a failed request: the session's own offset, else a new one."""
        response = self.transport.request("GET", target.host, location, scopes=scopes)
        if response.status_code == 204 and blob.size > self.chunk_size:
            held = _held_bytes(response.headers.get("range", ""))
            if 0 < held <= blob.size:
                self.stats.resumed += 1
                return _next_location(location, response), held
        self.stats.restarted += 1
        fresh = self._start_upload(target, blob.digest, None)
        assert fresh is not None
        return fresh, 0

    def _patch(
        self,
        target: RegistryLocation,
        location: str,
        offset: int,
        chunk: bytes,
        scopes: list[str],
    ) -> str:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
        }
        response = self.transport.request(
            "PATCH",
            target.host,
            location,
            scopes=scopes,
            headers=headers,
            content=chunk,
            retry=False,
        )
        if response.status_code != 202:
            _upload_failure(response, f"{target}: upload chunk")
        return _next_location(location, response)

    def _commit(
        self,
        target: RegistryLocation,
        location: str,
        digest: str,
        body: bytes,
        scopes: list[str],
    ) -> None:
        separator = "&" if "?" in location else "?"
        url = f"{location}{separator}digest={quote(digest)}"
        headers = {"Content-Type": "application/octet-stream"}
        response = self.transport.request(
            "PUT", target.host, url, scopes=scopes, headers=headers, content=body, retry=False
        )
        if response.status_code != 201:
            _upload_failure(response, f"{target}: upload commit of {digest[:19]}")


def _next_location(current: str, response: httpx.Response) -> str:
    new = response.headers.get("location")
    return urljoin(current, new) if new else current


def _upload_failure(response: httpx.Response, what: str) -> None:
    """A lost session (404), a range the registry refuses (416) or bytes that do not match
    the digest (400 DIGEST_INVALID) are worth a clean restart; other answers are final."""
    response.read()
    code = _code(response)
    restartable = response.status_code in (404, 416) or code == "DIGEST_INVALID"
    if restartable or response.status_code in TEMPORARY_STATUSES:
        suffix = f" {code}" if code else ""
        raise RegistryError(
            f"{what}: HTTP {response.status_code}{suffix}",
            status=response.status_code,
            code=code,
            temporary=True,
        )
    fail(response, what)


def _held_bytes(header: str) -> int:
    """Bytes an upload session holds, from its `Range: 0-<last>` ("0-0" is taken as none:
    the registry writes it for an empty session too, and restarting is always safe)."""
    _, _, last = header.removeprefix("bytes=").partition("-")
    return int(last) + 1 if last.isdigit() and int(last) > 0 else 0


def _code(response: httpx.Response) -> str:
    return error_code(response)


@dataclass(frozen=True)
class RemoteBlob:
    """A blob in another repository or registry, streamed (for copies between registries)."""

    registry: Registry
    location: RegistryLocation
    digest: str
    size: int

    def chunks(self, offset: int, chunk_size: int, limit: int | None = None) -> Iterator[bytes]:
        """Blocks of exactly `chunk_size` (the last shorter) from `offset` on."""
        response = self.registry.open_blob(self.location, self.digest, offset)
        try:
            skip = offset if response.status_code == 200 else 0  # Range not honoured
            buffer = bytearray()
            total = 0
            try:
                for piece in response.iter_bytes():
                    total += len(piece)
                    if limit is not None and total > limit:
                        raise RegistryError(f"{self.location}: blob larger than {limit} bytes")
                    cut = min(skip, len(piece))
                    skip -= cut
                    buffer += piece[cut:]
                    while len(buffer) >= chunk_size:
                        yield bytes(buffer[:chunk_size])
                        del buffer[:chunk_size]
            except httpx.HTTPError as exc:
                raise RegistryError(
                    f"{self.location}: download of {self.digest[:19]} broke off", temporary=True
                ) from exc
            if buffer:
                yield bytes(buffer)
        finally:
            response.close()
