"""Uploads and look-ups against a real registry with failures injected between them:
interrupted chunks resume, forgotten sessions restart, 5xx is retried with backoff, and a
failure leaves no tag behind."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from deployer.images import (
    ImageEnvironment,
    ImageReference,
    Registry,
    RegistryError,
    RegistryLocation,
    UploadFailed,
    ensure_image,
)
from deployer.images.registry import BytesBlob
from tests.images.faults import Fault, FaultyTransport

CHUNK = 64 * 1024


def blob(size: int = 5 * CHUNK + 123) -> BytesBlob:
    return BytesBlob(os.urandom(size))


def stored(registry_handle, repository: str, digest: str) -> bytes:
    response = httpx.get(registry_handle.url(f"/v2/{repository}/blobs/{digest}"))
    assert response.status_code == 200
    return response.content


def test_monolithic_and_chunked_uploads_store_the_exact_bytes(registry, make_transport):
    reg = Registry(make_transport(), chunk_size=CHUNK)
    target = RegistryLocation(registry.host, "blobs/test")
    small, large = blob(1000), blob()
    assert reg.push_blob(target, small) == "uploaded"
    assert reg.push_blob(target, large) == "uploaded"
    assert stored(registry, "blobs/test", large.digest) == large.data
    assert stored(registry, "blobs/test", small.digest) == small.data
    assert reg.stats.uploaded_bytes == small.size + large.size
    assert reg.push_blob(target, large) == "present"
    assert reg.stats.uploaded_bytes == small.size + large.size


@pytest.mark.parametrize("action", ["drop-before", "503"])
def test_an_interrupted_chunk_is_resumed_where_the_registry_stands(
    registry, make_transport, sleeps, action
):
    faulty = FaultyTransport([Fault("PATCH", "/blobs/uploads/", action, skip=2)])
    reg = Registry(make_transport(transport=faulty), chunk_size=CHUNK)
    data = blob()
    assert reg.push_blob(RegistryLocation(registry.host, "blobs/test"), data) == "uploaded"
    assert stored(registry, "blobs/test", data.digest) == data.data
    assert reg.stats.resumed == 1 and reg.stats.restarted == 0
    assert reg.stats.uploaded_bytes == data.size  # no byte sent twice
    status_queries = [e for e in faulty.log if e[0] == "GET" and "/blobs/uploads/" in e[1]]
    assert len(status_queries) == 1  # asked the session where it stood
    assert sleeps  # backed off before resuming


def test_a_chunk_whose_answer_was_lost_restarts_the_upload_cleanly(registry, make_transport):
    """The registry took the chunk but the answer (with the session's new state) was lost:
    the old state no longer matches, so the registry refuses to resume and a new session
    starts from zero."""
    faulty = FaultyTransport([Fault("PATCH", "/blobs/uploads/", "drop-after", skip=2)])
    reg = Registry(make_transport(transport=faulty), chunk_size=CHUNK)
    data = blob()
    assert reg.push_blob(RegistryLocation(registry.host, "blobs/test"), data) == "uploaded"
    assert stored(registry, "blobs/test", data.digest) == data.data
    assert reg.stats.restarted == 1
    assert reg.stats.uploaded_bytes == data.size + 2 * CHUNK


def test_a_forgotten_upload_session_is_restarted_cleanly(registry, make_transport):
    faulty = FaultyTransport([Fault("PATCH", "/blobs/uploads/", "forget-session", skip=3)])
    reg = Registry(make_transport(transport=faulty), chunk_size=CHUNK)
    data = blob()
    assert reg.push_blob(RegistryLocation(registry.host, "blobs/test"), data) == "uploaded"
    assert reg.stats.restarted == 1
    assert stored(registry, "blobs/test", data.digest) == data.data
    assert reg.stats.uploaded_bytes == data.size + 3 * CHUNK  # three chunks sent twice


def test_5xx_is_retried_with_growing_backoff(registry, make_transport, sleeps):
    faulty = FaultyTransport(
        [Fault("HEAD", "/blobs/", "503", times=3), Fault("POST", "/blobs/uploads/", "500", times=1)]
    )
    reg = Registry(make_transport(transport=faulty), chunk_size=CHUNK)
    data = blob(100)
    assert reg.push_blob(RegistryLocation(registry.host, "blobs/test"), data) == "uploaded"
    assert sleeps[:3] == [0.01, 0.02, 0.04]
    assert len(sleeps) == 4
    assert stored(registry, "blobs/test", data.digest) == data.data


def test_persistent_5xx_is_a_clear_temporary_error(registry, make_transport, sleeps):
    faulty = FaultyTransport([Fault("HEAD", "/manifests/", "503", times=100)])
    reg = Registry(make_transport(transport=faulty, attempts=3))
    with pytest.raises(RegistryError, match=r"manifest look-up: HTTP 503 UNAVAILABLE") as caught:
        reg.head_manifest(ImageReference.parse(f"{registry.host}/envs:x"))
    assert caught.value.temporary and caught.value.status == 503
    assert len(sleeps) == 2


def test_an_upload_that_keeps_failing_leaves_no_tag(registry, base, pip_args, make_transport):
    faulty = FaultyTransport([Fault("PATCH", "/blobs/uploads/", "drop-before", times=1000)])
    env = ImageEnvironment(
        ImageReference.parse(base.reference), ("six==1.17.0", "idna"), model_server="bundled"
    )
    with pytest.raises(UploadFailed, match=r"upload of sha256:.* failed after 3 attempt") as caught:
        ensure_image(
            env,
            RegistryLocation(registry.host, "envs"),
            transport=make_transport(transport=faulty, attempts=3),
            pip_args=pip_args,
            chunk_size=16 * 1024,
        )
    assert "\n" not in str(caught.value)
    tags = httpx.get(registry.url("/v2/envs/tags/list"))
    assert tags.status_code == 404 or not tags.json().get("tags")
    # and the next, healthy run completes it
    result = ensure_image(
        env,
        RegistryLocation(registry.host, "envs"),
        transport=make_transport(),
        pip_args=pip_args,
        chunk_size=16 * 1024,
    )
    assert result.source == "built"


def test_a_mount_from_a_repository_without_the_blob_falls_back_to_upload(registry, make_transport):
    reg = Registry(make_transport(), chunk_size=CHUNK)
    data = blob(2000)
    outcome = reg.push_blob(
        RegistryLocation(registry.host, "blobs/a"), data, mount_from="blobs/empty"
    )
    assert outcome == "uploaded"
    assert (
        reg.push_blob(RegistryLocation(registry.host, "blobs/b"), data, mount_from="blobs/a")
        == "mounted"
    )
    assert hashlib.sha256(stored(registry, "blobs/b", data.digest)).hexdigest() == data.digest[7:]
