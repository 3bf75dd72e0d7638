"""Fixtures: real registries (one open, one behind token auth), a base image, cached wheels."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deployer.images import Credential, Credentials, RegistryTransport, RetryPolicy
from deployer.images.build import pip_download_command
from tests.images.registries import (
    REGISTRY_BINARY,
    BaseImageBlobs,
    RegistryProcess,
    TokenServer,
    make_base_image,
    push_base,
    start_registry,
)

pytestmark = pytest.mark.skipif(REGISTRY_BINARY is None, reason="needs Debian's docker-registry")

WHEEL_REQUIREMENTS = ("six==1.17.0", "idna")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    """An open registry (the workspace registry in most tests)."""
    if REGISTRY_BINARY is None:
        pytest.skip("needs Debian's docker-registry")
    handle = start_registry(tmp_path / "open-registry")
    yield handle
    handle.stop()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def auth_registry(tmp_path: Path, token_server: TokenServer) -> Iterator[RegistryProcess]:
    """A registry that answers 401 with a Bearer challenge pointing at `token_server`."""
    if REGISTRY_BINARY is None:
        pytest.skip("needs Debian's docker-registry")
    handle = start_registry(tmp_path / "auth-registry", token_server)
    yield handle
    handle.stop()


@dataclass
class Base:
    reference: str
    image: BaseImageBlobs
    digest: str


@pytest.fixture
def base(registry: RegistryProcess) -> Base:
    """A tiny OCI base image pushed to the open registry as `base/tiny:1`."""
    image = make_base_image()
    with httpx.Client() as client:
        digest = push_base(client, registry.url(""), "base/tiny", "1", image)
    return Base(f"{registry.host}/base/tiny:1", image, digest)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels for the test requirements, fetched once; builds then use `--no-index`."""
    folder = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        pip_download_command(folder, WHEEL_REQUIREMENTS),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"no wheels for {WHEEL_REQUIREMENTS}: {done.stderr.strip()[-200:]}")
    return folder


@pytest.fixture
def pip_args(wheels: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheels)]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_transport(sleeps: Sleeps) -> Iterator[Callable[..., RegistryTransport]]:
    """RegistryTransports that record their backoff sleeps instead of sleeping."""
    made: list[RegistryTransport] = []

    def make(
        *,
        credentials: Credentials | None = None,
        transport: httpx.BaseTransport | None = None,
        attempts: int = 5,
    ) -> RegistryTransport:
        handle = RegistryTransport(
            credentials or Credentials(use_docker_config=False),
            transport=transport,
            retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05),
            sleep=sleeps,
        )
        made.append(handle)
        return handle

    yield make
    for handle in made:
        handle.close()


ALICE = Credential("alice", "wonderland")


@pytest.fixture
def env_file(tmp_path: Path, base: Base) -> Path:
    """An environment file on the test base image with one small requirement."""
    path = tmp_path / "env.yaml"
    path.write_text(
        f"name: test\nbase_image: {base.reference}\nmodel_server: bundled\n"
        "pip_requirements: [six==1.17.0]\n"
    )
    return path
